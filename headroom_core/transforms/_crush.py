"""One lossy pass of SmartCrusher over one parsed JSON document.

Cuts, each counted in ``dropped`` and announced by a marker naming the ref under which
the whole original is stored:

- long arrays keep the items :func:`~._select.select` chooses, then end with
  ``{"__headroom_truncated": N, "of": M, "omitted": "3-250,252-990", "ref": ...}``;
  error items and query matches are kept verbatim (nothing inside them is cut);
- hypermedia link fields: an object with three or more ``*_url`` fields holding http(s)
  URLs (GitHub-style API links) loses them, except ``html_url`` and any field the query
  names; the document's top level then carries ``"__headroom_omitted": {"fields": [...],
  "count": N, "ref": ...}``;
- strings over ``max_string_chars`` keep their head and end with
  ``…[headroom: N chars cut; ref=...]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..relevance import Scorer
from ..relevance.bm25 import STOPWORDS, BM25Scorer, tokenize
from ._select import select

if TYPE_CHECKING:
    from ..config import SmartCrusherConfig

TRUNCATED = "__headroom_truncated"
OMITTED = "__headroom_omitted"
_KEEP_LINKS = frozenset({"html_url", "url"})
_MIN_LINKS = 3


def ranges(indices: list[int]) -> str:
    """Compact ranges: [0,1,2,5] -> "0-2,5"."""
    parts: list[str] = []
    start = prev = indices[0]
    for i in indices[1:]:
        if i != prev + 1:
            parts.append(f"{start}-{prev}" if prev > start else str(start))
            start = i
        prev = i
    parts.append(f"{start}-{prev}" if prev > start else str(start))
    return ",".join(parts)


def _is_link(key: str, value: Any) -> bool:
    return (
        key.endswith("_url")
        and key not in _KEEP_LINKS
        and isinstance(value, str)
        and value.startswith(("http://", "https://"))
    )


class Crush:
    def __init__(
        self,
        cfg: SmartCrusherConfig,
        query: str | None,
        max_items: int,
        ref: str,
        scorer: Scorer | None = None,
        spare: frozenset[str] = frozenset(),
    ) -> None:
        self.cfg, self.query, self.max_items, self.ref = cfg, query, max_items, ref
        self.dropped = 0
        self.links: dict[str, int] = {}
        self.scorer: Scorer = scorer or BM25Scorer()
        self.spare = spare  # fields learned as needed: never pruned, never cut inside
        self.query_terms = set(tokenize(query or ""))

    def run(self, data: Any) -> Any:
        out = self.walk(data)
        if self.links:
            marker = {
                "fields": sorted(self.links),
                "count": sum(self.links.values()),
                "ref": self.ref,
            }
            if isinstance(out, dict):
                out = {**out, OMITTED: marker}
            elif isinstance(out, list):
                out = [*out, {OMITTED: marker}]
        return out

    def walk(self, node: Any) -> Any:
        if isinstance(node, dict):
            return self.obj(node)
        if isinstance(node, list):
            return self.array(node)
        if isinstance(node, str) and len(node) > self.cfg.max_string_chars:
            keep = self.cfg.max_string_chars // 2
            self.dropped += 1
            return f"{node[:keep]}…[headroom: {len(node) - keep} chars cut; ref={self.ref}]"
        return node

    def obj(self, node: dict[str, Any]) -> dict[str, Any]:
        if self._is_collection(node):
            return self.records(node)
        links = [
            k
            for k, v in node.items()
            if _is_link(k, v) and k not in self.query_terms and k not in self.spare
        ]
        if len(links) < _MIN_LINKS:
            links = []
        for k in links:
            self.links[k] = self.links.get(k, 0) + 1
        self.dropped += len(links)
        skip = set(links)
        return {
            k: v if self._names(k) or k in self.spare else self.walk(v)
            for k, v in node.items()
            if k not in skip
        }

    def _is_collection(self, node: dict[str, Any]) -> bool:
        """Records keyed by id ({"id1": {...}, "id2": {...}}): as long as an array would be cut."""
        n = len(node)
        if n <= self.max_items or n < self.cfg.min_items_to_analyze:
            return False
        return sum(isinstance(v, dict) for v in node.values()) >= 0.9 * n

    def records(self, node: dict[str, Any]) -> dict[str, Any]:
        keys = list(node)
        values = [node[k] for k in keys]
        texts = [f"{k} {orjson.dumps(v).decode()}" for k, v in zip(keys, values, strict=True)]
        kept, verbatim = self._select(values, texts)
        verbatim |= {i for i, k in enumerate(keys) if self._names(k)}
        verbatim = {i for i in verbatim if not self._holds_long_collection(values[i])}
        kept = sorted(set(kept) | verbatim)
        out = {keys[i]: values[i] if i in verbatim else self.walk(values[i]) for i in kept}
        if len(kept) < len(keys):
            dropped = len(keys) - len(kept)
            self.dropped += dropped
            out[TRUNCATED] = {"count": dropped, "of": len(keys), "ref": self.ref}
        return out

    def _select(self, items: list[Any], texts: list[str]) -> tuple[list[int], set[int]]:
        return select(
            items,
            texts,
            query=self.query,
            max_items=self.max_items,
            keep_first=self.cfg.keep_first,
            keep_last=self.cfg.keep_last,
            preserve_errors=self.cfg.preserve_errors,
            anomaly_threshold=self.cfg.anomaly_std_threshold,
            relevance_threshold=self.cfg.relevance_threshold,
            scorer=self.scorer,
        )

    def _holds_long_collection(self, node: Any) -> bool:
        """Would a cut apply somewhere inside? Then walk into it rather than keep it whole:
        the cut inside keeps the part the query names."""
        stack = [node]
        while stack:
            value = stack.pop()
            if isinstance(value, list):
                if len(value) > self.max_items:
                    return True
                stack.extend(v for v in value if isinstance(v, (dict, list)))
            elif isinstance(value, dict):
                if self._is_collection(value):
                    return True
                stack.extend(v for v in value.values() if isinstance(v, (dict, list)))
        return False

    def _names(self, key: str) -> bool:
        """Does the query name this record key (an id-like key: it holds a digit)?"""
        return any(c.isdigit() for c in key) and key.lower() in self.query_terms

    def _matches(self, items: list[Any], texts: list[str]) -> set[int]:
        """Items the query points at (kept verbatim even in arrays that are not cut): those
        holding a query term few items hold, or whose own field equals a query term."""
        terms = self.query_terms - STOPWORDS
        if not terms:
            return set()
        term_sets = [set(tokenize(t)) for t in texts]
        limit = max(1, len(texts) // 3)
        rare = {q for q in terms if 0 < sum(q in ts for ts in term_sets) <= limit}
        found = {i for i, ts in enumerate(term_sets) if ts & rare}
        for i, item in enumerate(items):
            if isinstance(item, dict) and any(
                isinstance(v, (str, int)) and str(v).lower() in terms for v in item.values()
            ):
                found.add(i)
        return found

    def array(self, items: list[Any]) -> list[Any]:
        n = len(items)
        if n <= self.max_items or n < self.cfg.min_items_to_analyze:
            if not any(isinstance(v, (dict, list)) for v in items):
                return [self.walk(v) for v in items]
            keep = {
                i
                for i in self._matches(items, [orjson.dumps(v).decode() for v in items])
                if not self._holds_long_collection(items[i])
            }
            return [v if i in keep else self.walk(v) for i, v in enumerate(items)]
        texts = [orjson.dumps(v).decode() for v in items]
        kept, verbatim = self._select(items, texts)
        verbatim = {i for i in verbatim if not self._holds_long_collection(items[i])}
        out = [items[i] if i in verbatim else self.walk(items[i]) for i in kept]
        if len(kept) < n:
            kept_set = set(kept)
            omitted = [i for i in range(n) if i not in kept_set]
            self.dropped += len(omitted)
            out.append(
                {TRUNCATED: len(omitted), "of": n, "omitted": ranges(omitted), "ref": self.ref}
            )
        return out

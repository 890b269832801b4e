"""One lossy pass of SmartCrusher over one parsed JSON document.

Cuts, each counted in ``dropped`` and announced by a marker naming the ref under which
the whole original is stored:

- long arrays keep the items :func:`~._select.select` chooses and every row the
  question's conditions select (:mod:`._conditions`), then end with
  ``{"__headroom_truncated": N, "of": M, "omitted": "3-250,252-990", "ref": ...,
  "omitted_stats": {"points": {"count": N, "min": 0, "max": 9, "sum": 31}}}`` (count /
  min / max / sum of each numeric column over the omitted rows, so a count or a total is
  still answerable); error items and query matches are kept verbatim (nothing inside
  them is cut). An array is not cut at all when the question aggregates (``how many``,
  ``total``) or asks for an extreme it cannot place, and no condition narrows it;
- hypermedia link fields: an object with three or more ``*_url`` fields holding http(s)
  URLs (GitHub-style API links) loses them, except ``html_url`` and any field the query
  names; the document's top level then carries ``"__headroom_omitted": {"fields": [...],
  "count": N, "ref": ...}``;
- strings over ``max_string_chars`` keep their head and end with
  ``…[headroom: N chars cut; ref=...]``.

Under a hard budget (``limit``), each array keeps at most ``limit`` items, in this order
of priority: errors, rows the question selects (or its best matches), head and tail, the
rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import repeat
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from ..relevance import Scorer
from ..relevance.bm25 import STOPWORDS, BM25Scorer, tokenize
from . import json_codec
from ._conditions import Selection, Table, select_rows
from ._question import Question, parse_question
from ._select import column_stats, is_error_item, prepare, select

if TYPE_CHECKING:
    from ..config import SmartCrusherConfig

TRUNCATED = json_codec.TRUNCATED
OMITTED = json_codec.OMITTED
_KEEP_LINKS = frozenset({"html_url", "url"})
_UNCUT = frozenset({int, float, bool, type(None)})  # values a pass never changes
_MIN_LINKS = 3
T = TypeVar("T")


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


def value_texts(items: list[Any]) -> list[str]:
    """Each item as JSON without its own keys (a record's values; nested objects whole):
    every cell value of the item is written in it, and no column name that only its keys
    hold."""
    return [orjson.dumps(list(v.values()) if isinstance(v, dict) else v).decode() for v in items]


class Crush:
    def __init__(
        self,
        cfg: SmartCrusherConfig,
        query: str | None,
        max_items: int,
        ref: str,
        scorer: Scorer | None = None,
        spare: frozenset[str] = frozenset(),
        *,
        limit: int | None = None,
        max_string_chars: int | None = None,
        memo: dict[tuple[str, int], Any] | None = None,
    ) -> None:
        """``limit``: a hard cap on the items kept per array (a budget is being met).
        ``memo``: shared by the passes over one document (:meth:`_memo`)."""
        self.cfg, self.query, self.max_items, self.ref = cfg, query, max_items, ref
        self.limit = limit
        self.memo: dict[tuple[str, int], Any] = {} if memo is None else memo
        self.max_string = max_string_chars or cfg.max_string_chars
        self.question: Question | None = parse_question(query) if query else None
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
        if isinstance(node, str) and len(node) > self.max_string:
            keep = self.max_string // 2
            self.dropped += 1
            return f"{node[:keep]}…[headroom: {len(node) - keep} chars cut; ref={self.ref}]"
        return node

    def _plain(self, values: Iterable[tuple[str, Any]]) -> bool:
        """Only values a pass returns as they are (numbers, booleans, null, strings within
        the limit, short lists of those) under keys that cannot be links: the node itself
        can go out."""
        limit = self.max_string
        for k, v in values:
            kind = type(v)
            if kind in _UNCUT:
                continue
            if kind is list and len(v) <= self._cap() and self._plain(zip(repeat(""), v)):
                continue  # a short list of such values (tags): array() returns it as it is
            if kind is not str or len(v) > limit or k.endswith("_url"):
                return False
        return True

    def obj(self, node: dict[str, Any]) -> dict[str, Any]:
        if self._plain(node.items()):
            return node  # a flat record: nothing in it to cut (most rows of a table)
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
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k in skip:
                continue
            kind = type(v)
            if kind in _UNCUT or (kind is str and len(v) <= self.max_string):
                out[k] = v  # what walk() returns for it: nothing to cut
            else:
                out[k] = v if self._names(k) or k in self.spare else self.walk(v)
        return out

    def _is_collection(self, node: dict[str, Any]) -> bool:
        """Records keyed by id ({"id1": {...}, "id2": {...}}): as long as an array would be cut."""
        n = len(node)
        if n <= self._cap() or n < self.cfg.min_items_to_analyze:
            return False
        return sum(isinstance(v, dict) for v in node.values()) >= 0.9 * n

    def records(self, node: dict[str, Any]) -> dict[str, Any]:
        keys = list(node)
        values = [node[k] for k in keys]
        texts = [f"{k} {orjson.dumps(v).decode()}" for k, v in zip(keys, values, strict=True)]
        named = {i for i, k in enumerate(keys) if self._names(k)}
        table = self._table(values, node)
        plan = self._plan(values, texts, table, node, named)
        if plan is None:
            return {k: self.walk(v) for k, v in node.items()}
        kept, verbatim = plan
        verbatim = {i for i in verbatim if not self._holds_long_collection(values[i])}
        out = {keys[i]: values[i] if i in verbatim else self.walk(values[i]) for i in kept}
        if len(kept) < len(keys):
            kept_set = set(kept)
            omitted = [i for i in range(len(keys)) if i not in kept_set]
            self.dropped += len(omitted)
            marker: dict[str, Any] = {"count": len(omitted), "of": len(keys), "ref": self.ref}
            stats = column_stats(table, omitted)
            if stats:
                marker["omitted_stats"] = stats
            out[TRUNCATED] = marker
        return out

    def _select(
        self, items: list[Any], texts: list[str], owner: object
    ) -> tuple[list[int], set[int]]:
        prepared = self._memo(
            "select", owner, lambda: prepare(items, texts, self.query, self.scorer)
        )
        return select(
            items,
            texts,
            query=self.query,
            max_items=self._cap(),
            keep_first=self.cfg.keep_first,
            keep_last=self.cfg.keep_last,
            preserve_errors=self.cfg.preserve_errors,
            anomaly_threshold=self.cfg.anomaly_std_threshold,
            relevance_threshold=self.cfg.relevance_threshold,
            scorer=self.scorer,
            prepared=prepared,
        )

    def _holds_long_collection(self, node: Any) -> bool:
        """Would a cut apply somewhere inside? Then walk into it rather than keep it whole:
        the cut inside keeps the part the query names."""
        stack = [node]
        while stack:
            value = stack.pop()
            if isinstance(value, list):
                if len(value) > self._cap():
                    return True
                stack.extend(v for v in value if isinstance(v, (dict, list)))
            elif isinstance(value, dict):
                if self._is_collection(value):
                    return True
                stack.extend(v for v in value.values() if isinstance(v, (dict, list)))
        return False

    def _names(self, key: str) -> bool:
        """Does the query name this record key (an id-like key: it holds a digit)?"""
        return key.lower() in self.query_terms and any(c.isdigit() for c in key)

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
        if n <= self._cap() or n < self.cfg.min_items_to_analyze:
            if not any(isinstance(v, (dict, list)) for v in items):
                if self._plain(zip(repeat(""), items)):
                    return items  # short scalars: nothing to cut
                return [self.walk(v) for v in items]
            keep = {
                i
                for i in self._matches(items, [orjson.dumps(v).decode() for v in items])
                if not self._holds_long_collection(items[i])
            }
            return [v if i in keep else self.walk(v) for i, v in enumerate(items)]
        texts = self._memo("texts", items, lambda: [orjson.dumps(v).decode() for v in items])
        table = self._table(items, items)
        plan = self._plan(items, texts, table, items)
        if plan is None:
            return [self.walk(v) for v in items]
        kept, verbatim = plan
        verbatim = {i for i in verbatim if not self._holds_long_collection(items[i])}
        out = [items[i] if i in verbatim else self.walk(items[i]) for i in kept]
        if len(kept) < n:
            kept_set = set(kept)
            omitted = [i for i in range(n) if i not in kept_set]
            self.dropped += len(omitted)
            marker: dict[str, Any] = {
                TRUNCATED: len(omitted),
                "of": n,
                "omitted": ranges(omitted),
                "ref": self.ref,
            }
            stats = column_stats(table, omitted)
            if stats:
                marker["omitted_stats"] = stats
            out.append(marker)
        return out

    def _memo(self, what: str, owner: object, compute: Callable[[], T]) -> T:
        """``compute()`` once per pass-independent value of one array or collection
        (``owner``, a node of the document: every pass over the document shares
        :attr:`memo`, and the document outlives it, so its nodes' identities are stable)."""
        key = (what, id(owner))
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]  # type: ignore[no-any-return]

    def _table(self, items: list[Any], owner: object) -> Table:
        return self._memo("table", owner, lambda: Table(items))

    def _selection(
        self, question: Question, items: list[Any], table: Table, owner: object
    ) -> Selection:
        """The rows the question's conditions select. Candidate rows for named values are
        found in the JSON of their values alone: a question naming a column ("the total
        amount") then does not look at every row."""

        return self._memo(
            "selection", owner, lambda: select_rows(question, table, value_texts(items))
        )

    def _cap(self) -> int:
        return self.max_items if self.limit is None else min(self.max_items, self.limit)

    def _plan(
        self,
        items: list[Any],
        texts: list[str],
        table: Table,
        owner: object,
        named: set[int] | frozenset[int] = frozenset(),
    ) -> tuple[list[int], set[int]] | None:
        """(sorted indices kept, the subset kept verbatim), or None: keep every item (the
        question aggregates over all of them, or asks for an extreme it cannot place)."""
        n = len(items)
        question = self.question
        sel = (
            self._selection(question, items, table, owner)
            if question is not None
            else Selection(frozenset(), False, False)
        )
        needs_all = question is not None and (
            sel.unresolved or (question.aggregate and not sel.narrowed and not named)
        )
        if needs_all and self.limit is None:
            return None
        kept, verbatim = self._select(items, texts, owner)
        chosen = set(sel.rows) | set(named)
        if chosen:
            verbatim |= chosen
            if question is not None and question.aggregate:
                # every selected row, errors, head and tail: nothing else is needed
                ends = set(range(min(self.cfg.keep_first, n)))
                ends |= set(range(max(0, n - self.cfg.keep_last), n))
                errors = {i for i in verbatim if is_error_item(items[i], texts[i])}
                kept = sorted(chosen | ends | errors)
            else:
                kept = sorted(set(kept) | chosen)
        if self.limit is not None and len(kept) > self.limit:
            kept = self._prioritised(items, texts, kept, verbatim, chosen)
            verbatim &= set(kept)
        return kept, verbatim

    def _prioritised(
        self,
        items: list[Any],
        texts: list[str],
        kept: list[int],
        verbatim: set[int],
        chosen: set[int],
    ) -> list[int]:
        """At most ``limit`` of ``kept``: errors, then the question's rows, then head and
        tail, then the rest (each group in array order)."""
        n = len(items)
        limit = self.limit or 0
        errors = [i for i in kept if is_error_item(items[i], texts[i])]
        asked = [i for i in kept if i in chosen or i in verbatim]
        ends = [i for i in kept if i < self.cfg.keep_first or i >= n - self.cfg.keep_last]
        order = list(dict.fromkeys([*errors, *asked, *ends, *kept]))
        return sorted(order[:limit])

"""``HeadroomNodePostprocessor``: fit retrieved nodes into a token budget, most relevant first.

::

    query_engine = index.as_query_engine(
        node_postprocessors=[HeadroomNodePostprocessor(token_budget=2_000)]
    )

For the query of the call, in this order:

1. **Score** every node's LLM view (text and unexcluded metadata) against the query with the
   scorer (``bm25``, ``embedding``, ``hybrid``, ``auto`` or any object with ``score_items``).
   Rank: relevance, then the retriever's score, then retrieval order. Without a query the
   rank is the retriever's score, then retrieval order.
2. **Drop near-duplicates**: a node whose word 3-shingles have a Jaccard similarity of at
   least ``dedupe_threshold`` with a better-ranked node's is left out (deterministic).
3. **Compress by content type** (``compress_content``): each node's text goes through the
   core's router (JSON, search results, logs, code, prose). Prose is left alone unless it
   is very long (the core's threshold, 2,000 tokens), so the passages of a typical RAG
   answer pass through untouched.
4. **Fit** ``token_budget`` (tokens of what the LLM reads: each node's LLM view plus one
   token per separator, counted for ``model``): nodes are taken best-ranked first; a node
   that does not fit whole is cut to its sentences (lines for code, logs and JSON) most
   relevant to the query, kept in their original order, and ends with
   ``[headroom: N chars cut; ref=<ref>]``. When nodes are left out for the budget, the last
   node returned ends with ``[headroom: K nodes left out to fit the token budget;
   ref=<ref>]`` (in its metadata only when the budget cannot hold that marker next to any
   content). A budget too small for any one sentence returns no node. Without a budget,
   every node is kept.
5. **Order** the result: retrieval order (``order="original"``) or rank (``"score"``).

Nodes are copied, never changed: ids, relationships, embeddings and metadata survive on the
copies; the retriever's score is kept (a node without one gets its relevance). Each copy
carries, in metadata keys hidden from the LLM and embedding views:

- ``headroom_relevance``: its relevance to the query, in [0, 1] (only with a query);
- ``headroom_ref``: the ref of its original text, when its text was compressed or cut;
- ``headroom_compressor``: the core compressor that changed its text;
- ``headroom_duplicate_refs``: refs of the near-duplicates left out in its favour;
- ``headroom_dropped_ref``: on the node carrying the "left out" marker, the ref of the
  nodes left out for the budget (each as ``[node <id>]`` and its text).

Every original is kept in the CCR store (``store``, else the core's default store), so
``headroom_core.ccr.retrieve(ref)`` (what the ``headroom_retrieve`` tool answers) gives it
back.
``apostprocess_nodes`` runs the same work in a worker thread (LlamaIndex's default), off the
event loop.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from llama_index.core.bridge.pydantic import Field, PrivateAttr, field_serializer, field_validator
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle

from headroom_core.boundary import fail_open
from headroom_core.ccr import OriginalStore, get_default_store, open_original_store
from headroom_core.errors import ConfigError
from headroom_core.relevance import Scorer, create_scorer
from headroom_core.text import line_sentence_spans
from headroom_core.tokens import count_tokens_text
from headroom_core.transforms.router import compress_text

from ._nodes import (
    copy_node,
    editable_text,
    jaccard,
    llm_text,
    render_cut,
    shingles,
)

__all__ = ["HeadroomNodePostprocessor", "ScorerName"]

logger = logging.getLogger("headroom_integrations")

ScorerName = Literal["bm25", "embedding", "hybrid", "auto"]

SEPARATOR_TOKENS = 1  # "\n\n" between two nodes in a synthesizer's context
NEIGHBOUR_WEIGHT = 0.7  # a sentence scores at least this share of its neighbours' relevance
# Sizes markers before the ref is known: a ref is 32 hex characters, and this one costs a
# token per character, the most any ref can (a random ref costs far fewer).
_REF_PLACEHOLDER = "0a1b2c3d4e5f6a7b" * 2

RELEVANCE_KEY = "headroom_relevance"
REF_KEY = "headroom_ref"
COMPRESSOR_KEY = "headroom_compressor"
DUPLICATES_KEY = "headroom_duplicate_refs"
DROPPED_KEY = "headroom_dropped_ref"


@dataclass(slots=True)
class _Plan:
    """One node on its way through: its original, its current text and its new metadata."""

    index: int
    item: NodeWithScore
    original: str | None
    text: str | None
    meta: dict[str, Any] = field(default_factory=dict)
    out: NodeWithScore | None = None
    tokens: int = 0


class HeadroomNodePostprocessor(BaseNodePostprocessor):
    """Score, dedupe, compress and fit retrieved nodes into ``token_budget``; a real
    LlamaIndex node postprocessor (see the module docstring for what each step does)."""

    token_budget: int | None = Field(
        None, ge=1, description="Tokens the nodes may take in the LLM's context; None: no cap."
    )
    scorer: ScorerName | Scorer = Field(
        "auto",
        description="Relevance scorer: bm25, embedding, hybrid, auto (bm25: fast, no torch; "
        "embeddings only when named) or an object with score_items().",
    )
    order: Literal["original", "score"] = Field(
        "original", description="Order of the result: retrieval order or most relevant first."
    )
    dedupe_threshold: float | None = Field(
        0.9,
        gt=0,
        le=1,
        description="Word 3-shingle Jaccard similarity from which a node is a near-duplicate "
        "of a better-ranked one; None: no deduplication.",
    )
    model: str = Field("gpt-4o", description="Model whose tokenizer counts the budget.")
    compress_content: bool = Field(
        True, description="Compress each node's text by content type with the core's router."
    )
    store: OriginalStore | None = Field(
        None,
        exclude=True,
        description="Where originals are kept: a store, or its URL (memory://, sqlite:///, "
        "redis://, postgresql://); None: the core's default.",
    )

    @field_validator("store", mode="before")
    @classmethod
    def _open_store_url(cls, value: Any) -> Any:
        return open_original_store(value) if isinstance(value, str) else value

    _scorer: Scorer = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        # Built now so that a scorer that cannot work (embedding without the extra) fails
        # at construction with the install hint, not at the first query.
        if not isinstance(self.scorer, str):
            self._scorer = self.scorer
            return
        try:
            # auto: BM25, milliseconds per query (the MiniLM hybrid costs seconds on a CPU);
            # the embeddings only when named
            self._scorer = create_scorer("bm25" if self.scorer == "auto" else self.scorer)
        except ConfigError as exc:  # pydantic reports it as a ValidationError (a ValueError)
            raise ConfigError(f"scorer={self.scorer!r}: {exc}") from exc

    @field_serializer("scorer")
    def _serialize_scorer(self, scorer: ScorerName | Scorer) -> str:
        return scorer if isinstance(scorer, str) else type(scorer).__name__

    @classmethod
    def class_name(cls) -> str:
        return "HeadroomNodePostprocessor"

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        if not nodes:
            return []
        query = (query_bundle.query_str or "").strip() if query_bundle is not None else ""
        plans = [
            _Plan(i, item, editable_text(item.node), editable_text(item.node))
            for i, item in enumerate(nodes)
        ]
        ranked = self._rank(plans, query)
        store = self.store if self.store is not None else get_default_store()
        ranked = self._dedupe(ranked, store)
        if self.compress_content:
            for plan in ranked:
                self._compress(plan, query, store)
        for plan in ranked:
            self._render(plan, plan.text)
        kept = self._fit(ranked, query, store)
        if self.order == "original":
            kept.sort(key=lambda p: p.index)
        return [p.out for p in kept if p.out is not None]

    # ---- steps ---------------------------------------------------------------------------

    def _rank(self, plans: list[_Plan], query: str) -> list[_Plan]:
        """Best first: relevance (with a query), the retriever's score, retrieval order."""
        if query:
            scores = self._scorer.score_items([llm_text(p.item.node) for p in plans], query)
            for plan, score in zip(plans, scores, strict=True):
                plan.meta[RELEVANCE_KEY] = round(float(score), 6)

        def key(p: _Plan) -> tuple[float, float, int]:
            retriever = p.item.score if p.item.score is not None else -math.inf
            return (-p.meta.get(RELEVANCE_KEY, 0.0), -retriever, p.index)

        return sorted(plans, key=key)

    def _dedupe(self, ranked: list[_Plan], store: OriginalStore) -> list[_Plan]:
        """Drop each node that nearly repeats a better-ranked one; its survivor records the
        stored original's ref."""
        if self.dedupe_threshold is None:
            return ranked
        survivors: list[tuple[_Plan, frozenset[tuple[str, ...]]]] = []
        for plan in ranked:
            marks = shingles(plan.original if plan.original is not None else "")
            twin = next(
                (s for s, m in survivors if jaccard(marks, m) >= self.dedupe_threshold), None
            )
            if twin is None:
                survivors.append((plan, marks))
                continue
            ref = store.put(plan.original or "", kind="text", meta=_node_meta(plan))
            twin.meta.setdefault(DUPLICATES_KEY, []).append(ref)
        return [plan for plan, _ in survivors]

    def _compress(self, plan: _Plan, query: str, store: OriginalStore) -> None:
        """The core's compressor for the node's content type, if one changes it."""
        if not plan.original:
            return
        where = f"compressing node {plan.item.node_id}"
        with fail_open(where, log=logger, action="the node stays as it is") as outcome:
            done = compress_text(
                plan.original,
                query=query or None,
                store=store,
                model=self.model,
                scorer=self._scorer,
            )
        if outcome.failed or done is None:
            return
        plan.text = done.text
        plan.meta[COMPRESSOR_KEY] = done.compressor
        plan.meta[REF_KEY] = store.put(plan.original, kind="text", meta=_node_meta(plan))

    def _fit(self, ranked: list[_Plan], query: str, store: OriginalStore) -> list[_Plan]:
        """The plans that fit the budget, best first (cut ones included); a marker for the
        rest on the last node returned."""
        budget = self.token_budget
        if budget is None or self._count(_context(ranked)) <= budget:
            return list(ranked)
        # Each plan counts its tokens plus one separator (an upper bound of what it adds to
        # the joined context); the last node has no separator. Room is kept for the marker
        # of the nodes left out, unless there is no other node to carry it, or nothing but
        # the marker would fit: then the ref goes in metadata only.
        room = budget + SEPARATOR_TOKENS
        reserve = 0
        if len(ranked) > 1:
            reserve = self._count(_dropped_marker(len(ranked), _REF_PLACEHOLDER)) + 2
        kept, dropped = self._fill(ranked, room - reserve, query, store)
        if not kept and reserve:
            reserve = 0
            kept, dropped = self._fill(ranked, room, query, store)
        if dropped and kept:
            carrier = kept[-1] if self.order == "score" else max(kept, key=_index)
            self._mark_dropped(carrier, dropped, store, visible=reserve > 0)
        return kept

    def _fill(
        self, ranked: list[_Plan], room: int, query: str, store: OriginalStore
    ) -> tuple[list[_Plan], list[_Plan]]:
        """(kept, dropped): whole while they fit, else cut to fit, else left out."""
        kept: list[_Plan] = []
        dropped: list[_Plan] = []
        for plan in ranked:
            if plan.tokens <= room or self._cut(plan, room, query, store):
                kept.append(plan)
                room -= plan.tokens
            else:
                dropped.append(plan)
        return kept, dropped

    def _cut(self, plan: _Plan, room: int, query: str, store: OriginalStore) -> bool:
        """Cut ``plan`` to its most relevant sentences that fit ``room`` tokens, in their
        original order, with a marker; False when not even one sentence fits."""
        text = plan.text
        if not text or plan.original is None or room <= 0:
            return False
        spans = line_sentence_spans(text)
        if len(spans) < 2:
            return False
        marker = _cut_marker(len(plan.original), _REF_PLACEHOLDER)
        self._render(plan, "")
        fixed = plan.tokens + self._count(marker) + 2  # 2: the line breaks around the marker
        sizes = [self._count(text[s:e]) + 1 for s, e in spans]  # 1: the joint before it
        if min(sizes) > room - fixed:
            self._render(plan, text)
            return False
        priority = self._sentence_priority(text, spans, query)
        chosen: list[int] = []
        used = fixed
        for i in priority:
            if used + sizes[i] <= room:
                chosen.append(i)
                used += sizes[i]
            elif not query:  # without a query the node keeps its beginning, without holes
                break
        ref = store.put(plan.original, kind="text", meta=_node_meta(plan))
        before = plan.meta.get(REF_KEY)
        plan.meta[REF_KEY] = ref
        while chosen:
            body = render_cut(text, spans, chosen)
            cut_chars = max(0, len(plan.original) - sum(spans[i][1] - spans[i][0] for i in chosen))
            self._render(plan, f"{body}\n{_cut_marker(cut_chars, ref)}")
            if plan.tokens <= room:
                return True
            chosen.pop()  # the least important sentence of those chosen
        if before is None:
            del plan.meta[REF_KEY]
        self._render(plan, text)
        return False

    def _sentence_priority(self, text: str, spans: list[tuple[int, int]], query: str) -> list[int]:
        """Sentence indices, most worth keeping first: by relevance to the query (a sentence
        next to a relevant one shares :data:`NEIGHBOUR_WEIGHT` of its score, since answers
        follow the sentence that names the topic), then text order. Without a query: text
        order, so the node keeps its beginning."""
        if not query:
            return list(range(len(spans)))
        base = self._scorer.score_items([text[s:e] for s, e in spans], query)
        scores = list(base)
        for i in range(1, len(spans)):
            scores[i] = max(scores[i], NEIGHBOUR_WEIGHT * base[i - 1])
            scores[i - 1] = max(scores[i - 1], NEIGHBOUR_WEIGHT * base[i])
        return sorted(range(len(spans)), key=lambda i: (-scores[i], i))

    def _mark_dropped(
        self, carrier: _Plan, dropped: list[_Plan], store: OriginalStore, *, visible: bool
    ) -> None:
        """Keep the left-out nodes under one ref, name it in ``carrier``'s metadata and, when
        ``visible``, in a marker at the end of its text."""
        bundle = "\n\n".join(f"[node {p.item.node_id}]\n{p.original or ''}" for p in dropped)
        ids = [p.item.node_id for p in dropped]
        ref = store.put(bundle, kind="text", meta={"node_ids": ids})
        carrier.meta[DROPPED_KEY] = ref
        current = editable_text(carrier.out.node) if carrier.out is not None else None
        if visible and current is not None:
            self._render(carrier, f"{current}\n\n{_dropped_marker(len(dropped), ref)}")
        else:  # the ref is in metadata only
            self._render(carrier, current)

    # ---- helpers -------------------------------------------------------------------------

    def _count(self, text: str) -> int:
        return count_tokens_text(text, model=self.model)

    def _render(self, plan: _Plan, text: str | None) -> None:
        """Build the plan's copy with ``text`` (None: the node's own) and count its tokens."""
        score = plan.item.score
        if score is None and RELEVANCE_KEY in plan.meta:
            score = plan.meta[RELEVANCE_KEY]
        new_text = None if text is None or text == plan.original else text
        plan.out = copy_node(plan.item, text=new_text, metadata=plan.meta, score=score)
        plan.tokens = self._count(llm_text(plan.out.node)) + SEPARATOR_TOKENS


def _context(plans: list[_Plan]) -> str:
    """The context a synthesizer builds from the plans' copies: LLM views, blank lines between."""
    return "\n\n".join(llm_text(p.out.node) for p in plans if p.out is not None)


def _index(plan: _Plan) -> int:
    return plan.index


def _node_meta(plan: _Plan) -> dict[str, Any]:
    return {"node_id": plan.item.node_id}


def _cut_marker(chars: int, ref: str) -> str:
    return f"[headroom: {chars} chars cut; ref={ref}]"


def _dropped_marker(count: int, ref: str) -> str:
    noun = "node" if count == 1 else "nodes"
    return f"[headroom: {count} {noun} left out to fit the token budget; ref={ref}]"

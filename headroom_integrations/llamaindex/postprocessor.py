"""``HeadroomNodePostprocessor``: fit retrieved nodes into a token budget, evidence first.

::

    query_engine = index.as_query_engine(
        node_postprocessors=[HeadroomNodePostprocessor(token_budget=2_000)]
    )

For the query of the call, in this order:

1. **Rank** (:func:`headroom_core.evidence.rank_passages`): every node's LLM view (text and
   unexcluded metadata) is scored against the query with the scorer (``bm25``,
   ``embedding``, ``hybrid``, ``auto`` or any object with ``score_items``), then nodes are
   picked one at a time: a node about an entity (its ``title_keys`` metadata, else the name
   its text opens with) that the query or a sentence of a better-ranked node names is
   linked (the second hop of a multi-hop question); a node that only repeats query terms
   already matched is worth less. Ties: relevance, the retriever's score, retrieval order.
   Without a query the rank is the retriever's score, then retrieval order.
2. **Drop near-duplicates**: a node whose word 3-shingles have a Jaccard similarity of at
   least ``dedupe_threshold`` with a better-ranked node's is left out (deterministic).
3. **Compress by content type** (``compress_content``): each node's text goes through the
   core's router (JSON, search results, logs, code, prose). Prose is left alone unless it
   is very long (the core's threshold, 2,000 tokens), so the passages of a typical RAG
   answer pass through untouched.
4. **Fit** ``token_budget`` (tokens of what the LLM reads: each node's LLM view plus one
   token per separator, counted for ``model``) sentence by sentence
   (:func:`headroom_core.evidence.plan_fill`; lines for code, logs and JSON): each sentence
   is worth its node's rank score times its weight (the first sentence, sentences relevant
   to the query, sentences naming another retrieved node's entity weigh most), most
   valuable first; so a tight budget keeps the evidence sentences of several nodes, and a
   looser one whole nodes, best first. A node cut to some of its sentences keeps them in
   their original order (``…`` where some were left out) and ends with
   ``[headroom: N chars cut; ref=<ref>]``. Without a query a node keeps its beginning.
   When nodes are left out, the last node returned ends with ``[headroom: K nodes left out
   to fit the token budget; ref=<ref>]`` (in its metadata only when the budget cannot hold
   that marker next to any content). A budget too small for any one sentence returns no
   node. Without a budget, every node is kept.
5. **Order** the result: retrieval order (``order="original"``) or rank (``"score"``).

Nodes are copied, never changed: ids, relationships, embeddings and metadata survive on the
copies; the retriever's score is kept (a node without one gets its relevance). Each copy
carries, in metadata keys hidden from the LLM and embedding views:

- ``headroom_relevance``: its rank score for the query, in [0, 1] (only with a query): its
  relevance, raised to the strength of a link, lowered when it repeats better-ranked nodes;
- ``headroom_linked_by``: ``"query"`` or the id of the node whose sentence names it, when it
  was ranked for that link;
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
from typing import Any, Literal

from llama_index.core.bridge.pydantic import Field, PrivateAttr, field_serializer, field_validator
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle

from headroom_core.boundary import fail_open
from headroom_core.ccr import OriginalStore, get_default_store, open_original_store, ref_for
from headroom_core.errors import ConfigError
from headroom_core.evidence import (
    QUESTION,
    FillItem,
    Passage,
    Ranking,
    plan_fill,
    rank_passages,
    sentence_weights,
)
from headroom_core.relevance import Scorer, create_scorer
from headroom_core.text import line_sentence_spans
from headroom_core.tokens import count_tokens_text
from headroom_core.transforms.router import compress_text

from ._nodes import copy_node, editable_text, jaccard, llm_text, render_cut, shingles
from ._plan import (
    COMPRESSOR_KEY,
    DROPPED_KEY,
    DUPLICATES_KEY,
    LINKED_KEY,
    REF_KEY,
    REF_PLACEHOLDER,
    RELEVANCE_KEY,
    Cuttable,
    Plan,
    context,
    cut_marker,
    dropped_marker,
    index_of,
    node_meta,
    set_ref,
)

__all__ = [
    "COMPRESSOR_KEY",
    "DROPPED_KEY",
    "DUPLICATES_KEY",
    "LINKED_KEY",
    "REF_KEY",
    "RELEVANCE_KEY",
    "HeadroomNodePostprocessor",
    "ScorerName",
]

logger = logging.getLogger("headroom_integrations")

ScorerName = Literal["bm25", "embedding", "hybrid", "auto"]

SEPARATOR_TOKENS = 1  # "\n\n" between two nodes in a synthesizer's context


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
    title_keys: tuple[str, ...] = Field(
        ("title", "document_title"),
        description="Metadata keys naming what a node is about (the first present is used): "
        "a node whose title the question or a better-ranked node names is linked to it.",
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
            Plan(i, item, editable_text(item.node), editable_text(item.node))
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

    def _rank(self, plans: list[Plan], query: str) -> list[Plan]:
        """Best first. With a query: :func:`headroom_core.evidence.rank_passages` (relevance,
        links to what the question or better-ranked nodes name, repeats worth less), then
        the retriever's score, then retrieval order. Without: the retriever's score, then
        retrieval order."""
        prior = [p.item.score if p.item.score is not None else -math.inf for p in plans]
        if not query:
            return sorted(plans, key=lambda p: (-prior[p.index], p.index))
        passages = [
            Passage(text=p.original or "", title=self._title(p), view=llm_text(p.item.node))
            for p in plans
        ]
        ranking = rank_passages(passages, query, self._scorer, prior=prior)
        for plan in plans:
            self._note_rank(plan, plans, ranking)
        return [plans[i] for i in ranking.order]

    def _note_rank(self, plan: Plan, plans: list[Plan], ranking: Ranking) -> None:
        i = plan.index
        plan.score = ranking.scores[i]
        plan.names = ranking.names[i]
        plan.meta[RELEVANCE_KEY] = round(ranking.scores[i], 6)
        via = ranking.via[i]
        if via is not None:
            plan.link_names = ranking.names[i]
            plan.meta[LINKED_KEY] = "query" if via == QUESTION else plans[via].item.node_id

    def _title(self, plan: Plan) -> str:
        """The node's title: the first of ``title_keys`` its metadata holds as text."""
        metadata = plan.item.node.metadata
        for key in self.title_keys:
            value = metadata.get(key)
            if isinstance(value, str) and value.strip():
                return value
        return ""

    def _dedupe(self, ranked: list[Plan], store: OriginalStore) -> list[Plan]:
        """Drop each node that nearly repeats a better-ranked one; its survivor records the
        stored original's ref."""
        if self.dedupe_threshold is None:
            return ranked
        survivors: list[tuple[Plan, frozenset[tuple[str, ...]]]] = []
        for plan in ranked:
            marks = shingles(plan.original if plan.original is not None else "")
            twin = next(
                (s for s, m in survivors if jaccard(marks, m) >= self.dedupe_threshold), None
            )
            if twin is None:
                survivors.append((plan, marks))
                continue
            ref = store.put(plan.original or "", kind="text", meta=node_meta(plan))
            twin.meta.setdefault(DUPLICATES_KEY, []).append(ref)
        return [plan for plan, _ in survivors]

    def _compress(self, plan: Plan, query: str, store: OriginalStore) -> None:
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
        plan.meta[REF_KEY] = store.put(plan.original, kind="text", meta=node_meta(plan))

    def _fit(self, ranked: list[Plan], query: str, store: OriginalStore) -> list[Plan]:
        """The plans that fit the budget, best first (cut ones included); a marker for the
        rest on the last node returned."""
        budget = self.token_budget
        if budget is None or self._count(context(ranked)) <= budget:
            return list(ranked)
        # Each plan counts its tokens plus one separator (an upper bound of what it adds to
        # the joined context); the last node has no separator. Room is kept for the marker
        # of the nodes left out, unless there is no other node to carry it, or nothing but
        # the marker would fit: then the ref goes in metadata only.
        room = budget + SEPARATOR_TOKENS
        reserve = 0
        if len(ranked) > 1:
            reserve = self._count(dropped_marker(len(ranked), REF_PLACEHOLDER)) + 2
        others = [(p.names, p.score) for p in ranked] if query else []
        cuts = [
            self._cuttable(plan, rank, query, others[:rank] + others[rank + 1 :])
            for rank, plan in enumerate(ranked)
        ]
        kept, dropped = self._fill(ranked, cuts, room - reserve, store)
        if not kept and reserve:
            reserve = 0
            kept, dropped = self._fill(ranked, cuts, room, store)
        if dropped and kept:
            carrier = kept[-1] if self.order == "score" else max(kept, key=index_of)
            self._mark_dropped(carrier, dropped, store, visible=reserve > 0)
        return kept

    def _fill(
        self, ranked: list[Plan], cuts: list[Cuttable], room: int, store: OriginalStore
    ) -> tuple[list[Plan], list[Plan]]:
        """(kept, dropped): the sentences :func:`headroom_core.evidence.plan_fill` picks,
        rendered and counted; while the exact count is over, the last sentence taken is
        given back."""
        fill = plan_fill([c.item for c in cuts], room)
        keep = [set(k) for k in fill.kept]
        for plan, cut, chosen in zip(ranked, cuts, keep, strict=True):
            self._apply(plan, cut, chosen, store)
        taken = list(fill.taken)
        while taken and sum(p.tokens for p, k in zip(ranked, keep, strict=True) if k) > room:
            i, j = taken.pop()
            keep[i].discard(j)
            self._apply(ranked[i], cuts[i], keep[i], store)
        kept = [p for p, k in zip(ranked, keep, strict=True) if k]
        dropped = [p for p, k in zip(ranked, keep, strict=True) if not k]
        return kept, dropped

    def _cuttable(
        self,
        plan: Plan,
        rank: int,
        query: str,
        others: list[tuple[tuple[str, ...], float]],
    ) -> Cuttable:
        """The plan (rendered whole) as :func:`plan_fill` sees it: its sentences, their weights
        and costs."""
        if plan.out is None:  # _postprocess_nodes renders every plan before the fit
            self._render(plan, plan.text)
        whole, whole_out, ref = plan.tokens, plan.out, plan.meta.get(REF_KEY)
        text = plan.text or ""
        spans = line_sentence_spans(text) if plan.original is not None else []
        if len(spans) < 2:  # kept whole or left out
            item = FillItem(plan.score, rank, (1.0,), (whole,), whole, whole)
            return Cuttable(item, spans, ref, whole_out, whole)
        sentences = [text[s:e] for s, e in spans]
        if query:
            weights = sentence_weights(sentences, query, link_names=plan.link_names, others=others)
        else:  # no evidence to weigh: the beginning, without holes
            weights = (1.0,) * len(spans)
        self._render(plan, "")
        original = plan.original or ""
        # the ref the store will give it (a content hash); the exact count catches any other
        opened = plan.tokens + self._count(cut_marker(len(original), ref_for(original)))
        plan.out, plan.tokens = whole_out, whole
        costs = tuple(self._count(s) + 1 for s in sentences)  # 1: the joint before it
        # 2: the line breaks around the marker
        item = FillItem(plan.score, rank, weights, costs, opened + 2, whole, contiguous=not query)
        return Cuttable(item, spans, ref, whole_out, whole)

    def _apply(self, plan: Plan, cut: Cuttable, chosen: set[int], store: OriginalStore) -> None:
        """Render ``plan`` whole (all or none of it chosen) or cut to ``chosen`` with a marker."""
        if not chosen or len(chosen) == len(cut.item.weights) or plan.text is None:
            set_ref(plan, cut.ref)
            plan.out, plan.tokens = cut.whole, cut.whole_tokens  # as rendered before the fit
            return
        original = plan.original or ""
        ref = store.put(original, kind="text", meta=node_meta(plan))
        set_ref(plan, ref)
        body = render_cut(plan.text, cut.spans, chosen)
        kept_chars = sum(cut.spans[i][1] - cut.spans[i][0] for i in chosen)
        self._render(plan, f"{body}\n{cut_marker(max(0, len(original) - kept_chars), ref)}")

    def _mark_dropped(
        self, carrier: Plan, dropped: list[Plan], store: OriginalStore, *, visible: bool
    ) -> None:
        """Keep the left-out nodes under one ref, name it in ``carrier``'s metadata and, when
        ``visible``, in a marker at the end of its text."""
        bundle = "\n\n".join(f"[node {p.item.node_id}]\n{p.original or ''}" for p in dropped)
        ids = [p.item.node_id for p in dropped]
        ref = store.put(bundle, kind="text", meta={"node_ids": ids})
        carrier.meta[DROPPED_KEY] = ref
        current = editable_text(carrier.out.node) if carrier.out is not None else None
        if visible and current is not None:
            self._render(carrier, f"{current}\n\n{dropped_marker(len(dropped), ref)}")
        else:  # the ref is in metadata only
            self._render(carrier, current)

    # ---- helpers -------------------------------------------------------------------------

    def _count(self, text: str) -> int:
        return count_tokens_text(text, model=self.model)

    def _render(self, plan: Plan, text: str | None) -> None:
        """Build the plan's copy with ``text`` (None: the node's own) and count its tokens."""
        score = plan.item.score
        if score is None and RELEVANCE_KEY in plan.meta:
            score = plan.meta[RELEVANCE_KEY]
        new_text = None if text is None or text == plan.original else text
        plan.out = copy_node(plan.item, text=new_text, metadata=plan.meta, score=score)
        plan.tokens = self._count(llm_text(plan.out.node)) + SEPARATOR_TOKENS

"""The node postprocessors ``bench_llamaindex.py`` compares, and how one call is measured.

Every method gets its own deep copy of the retrieved nodes (LlamaIndex's
``SentenceEmbeddingOptimizer`` rewrites the nodes it is given), and the copy is compared with
itself after the call: that is the *inputs unchanged* column.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.postprocessor import SentenceEmbeddingOptimizer, SimilarityPostprocessor
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from headroom_core.relevance import BM25Scorer, EmbeddingScorer
from headroom_core.tokens import count_tokens_text
from headroom_integrations.llamaindex import HeadroomNodePostprocessor

PERCENTILES = tuple(round(0.05 * k, 2) for k in range(20, 0, -1))  # 1.0, 0.95, ..., 0.05


class MiniLMEmbedding(BaseEmbedding):
    """LlamaIndex embeddings from the core's EmbeddingScorer: bundled MiniLM, offline, cached."""

    _scorer: EmbeddingScorer = PrivateAttr()

    def __init__(self, scorer: EmbeddingScorer) -> None:
        super().__init__(model_name="all-MiniLM-L6-v2", embed_batch_size=64)
        self._scorer = scorer

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._scorer.embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._scorer.embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._scorer.embed(texts)


class GreedyFill(BaseNodePostprocessor):
    """Keep the best-ranked nodes that fit the budget whole, in ranking order, skipping any
    that does not fit: what a user builds from a ranking and a token budget. ``by``: the
    retriever's score (``"score"``, e.g. MiniLM similarity) or BM25 of the LLM view
    (``"bm25"``)."""

    token_budget: int
    by: str = "score"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if self.by == "bm25":
            query = query_bundle.query_str if query_bundle is not None else ""
            keys = BM25Scorer().score_items([view(n) for n in nodes], query)
        else:
            keys = [n.score or 0.0 for n in nodes]
        order = sorted(range(len(nodes)), key=lambda i: (-keys[i], i))
        kept: list[int] = []
        for i in order:
            if tokens(context([nodes[k] for k in sorted([*kept, i])])) <= self.token_budget:
                kept.append(i)
        return [nodes[i] for i in sorted(kept)]


def view(node: NodeWithScore) -> str:
    return node.node.get_content(metadata_mode=MetadataMode.LLM)


def context(nodes: Sequence[NodeWithScore]) -> str:
    """What a response synthesizer puts in the prompt: LLM views joined by blank lines."""
    return "\n\n".join(view(n) for n in nodes)


def tokens(text: str) -> int:
    return count_tokens_text(text, model="gpt-4o")


@dataclass(frozen=True, slots=True)
class Call:
    """One method on one question: its output, the nodes it was given (after the call),
    whether they are unchanged, and the wall and CPU time of the call."""

    out: list[NodeWithScore]
    given: list[NodeWithScore]
    unchanged: bool
    ms: float
    cpu_ms: float


def fresh(nodes: Sequence[NodeWithScore]) -> list[NodeWithScore]:
    return [n.model_copy(deep=True) for n in nodes]


def dump(nodes: Sequence[NodeWithScore]) -> list[tuple[float | None, dict[str, Any]]]:
    return [(n.score, n.node.model_dump()) for n in nodes]


def run_one(pp: BaseNodePostprocessor, nodes: Sequence[NodeWithScore], query: str) -> Call:
    given = fresh(nodes)
    before = dump(given)
    t0, c0 = time.perf_counter(), time.process_time()
    out = pp.postprocess_nodes(given, QueryBundle(query))
    ms, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
    return Call(out, given, dump(given) == before, ms, cpu)


def optimizer_at(
    embed: MiniLMEmbedding, nodes: Sequence[NodeWithScore], query: str, budget: int
) -> Call:
    """``SentenceEmbeddingOptimizer`` (no context sentences) at the largest percentile whose
    output fits (the smallest output when none does): an oracle setting, per question. Not a
    binary search: a node whose ``int(sentences * percentile)`` is 0 keeps every sentence,
    so the output is not monotone in the percentile."""
    best: tuple[int, Call] | None = None
    for p in PERCENTILES:
        pp = SentenceEmbeddingOptimizer(
            embed_model=embed, percentile_cutoff=p, context_before=0, context_after=0
        )
        call = run_one(pp, nodes, query)
        n = tokens(context(call.out))
        if n <= budget:
            return call
        if best is None or n < best[0]:
            best = (n, call)
    assert best is not None
    return best[1]


def similarity_at(nodes: Sequence[NodeWithScore], query: str, budget: int) -> Call:
    """``SimilarityPostprocessor`` at the highest cutoff whose surviving nodes fit: the
    best-scored nodes that fit whole, stopping at the first that does not (an oracle
    setting, per question)."""
    ranked = sorted(nodes, key=lambda n: -(n.score or 0.0))
    cutoff = 1.01  # keeps nothing
    for k in range(1, len(ranked) + 1):
        floor = ranked[k - 1].score or 0.0
        if tokens(context([n for n in nodes if (n.score or 0.0) >= floor])) > budget:
            break
        cutoff = float(floor)
    return run_one(SimilarityPostprocessor(similarity_cutoff=cutoff), nodes, query)


Method = Callable[[list[NodeWithScore], str, int], Call]


def ours(scorer: str, **kwargs: Any) -> Method:
    def method(nodes: list[NodeWithScore], query: str, budget: int) -> Call:
        pp = HeadroomNodePostprocessor(token_budget=budget, scorer=scorer, **kwargs)
        return run_one(pp, nodes, query)

    return method


def nothing(nodes: list[NodeWithScore], query: str, budget: int) -> Call:
    given = fresh(nodes)
    return Call(given, given, True, 0.0, 0.0)


def nq_methods(embedder: EmbeddingScorer) -> dict[str, Method]:
    embed = MiniLMEmbedding(embedder)
    return {
        "ours, bm25": ours("bm25"),
        "ours, embedding": ours("embedding"),
        "ours, hybrid": ours("hybrid"),
        "SentenceEmbeddingOptimizer (MiniLM)": lambda n, q, b: optimizer_at(embed, n, q, b),
        "SimilarityPostprocessor (MiniLM)": similarity_at,
        "no postprocessing": nothing,
    }


def hotpot_methods(embedder: EmbeddingScorer) -> dict[str, Method]:
    embed = MiniLMEmbedding(embedder)
    return {
        "ours, bm25": ours("bm25"),
        "ours, embedding": ours("embedding"),
        "ours, hybrid": ours("hybrid"),
        "MiniLM similarity + greedy fill": lambda n, q, b: run_one(
            GreedyFill(token_budget=b, by="score"), n, q
        ),
        "BM25 + greedy fill": lambda n, q, b: run_one(GreedyFill(token_budget=b, by="bm25"), n, q),
        "SentenceEmbeddingOptimizer (MiniLM)": lambda n, q, b: optimizer_at(embed, n, q, b),
        "no postprocessing": nothing,
    }

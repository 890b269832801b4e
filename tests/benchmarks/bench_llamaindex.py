"""LlamaIndex node postprocessors at a token budget: is the evidence still in what the LLM reads?

    .venv/bin/python tests/benchmarks/bench_llamaindex.py [--families nq,hotpotqa]
        [--limit 40] [--hotpot-limit 50] [--budgets 0.25,0.5] [--cold 10] [--sensitivity]

Two families (``_llamaindex_data.py``), read in place from ../shared/data:

- **hotpotqa**: 50 HotpotQA multi-hop questions, ten paragraphs each (two gold), retrieved
  through a real ``VectorStoreIndex`` over the bundled MiniLM. *both gold kept %*: questions
  whose kept context holds every supporting sentence of both gold paragraphs;
  *supporting kept %*: supporting sentences kept, pooled.
- **nq**: the first ``--limit`` NQ-Open questions of each gold position (0, 9, 19) among 20
  Wikipedia passages scored by MiniLM. *answer kept %*: questions whose kept context holds
  one of the gold answers; the "no postprocessing" row is the ceiling.

Budgets: a fraction of the input tokens, counted in gpt-4o (o200k) tokens of the context a
synthesizer builds (every node's LLM view, title line included, joined by blank lines). For
every method and budget: *tokens kept %* (mean kept / input tokens), *within budget %*,
*ids+metadata kept %* (questions where every returned node has an input node's id and all
of that node's metadata, unchanged), *inputs unchanged %* (the nodes handed to the method
are the same after the call), *ms/q* (mean and median wall time of one call) and *CPU ms/q*
(process time: steadier on a shared machine; torch's threads add up in it). Each method is
called once on each question, untimed, before its timed calls, so every embedding it needs
is cached (warm): the cold cost is the last table.

Methods (``_llamaindex_methods.py``), on the same nodes, each on its own deep copy; every
embedding is the bundled all-MiniLM-L6-v2 through one cache, so the passages' embeddings are
warm when a method runs (the retriever computed them) and no method pays for another's:

- ``HeadroomNodePostprocessor(token_budget=<budget>, scorer="bm25" | "embedding" |
  "hybrid")``, defaults otherwise.
- MiniLM similarity + greedy fill / BM25 + greedy fill (hotpotqa): nodes ranked by the
  retriever's MiniLM score or by BM25 of their LLM view, each kept whole if it still fits.
- ``SimilarityPostprocessor`` (nq): the highest ``similarity_cutoff`` whose survivors fit,
  per question (an oracle setting).
- ``SentenceEmbeddingOptimizer`` (MiniLM ``embed_model``, ``context_before=context_after=0``)
  at, per question, the largest ``percentile_cutoff`` (steps of 0.05) whose output fits, or
  the smallest output when none does (an oracle setting; at 25% a node with fewer than four
  sentences keeps all of them, so it rarely fits). It rewrites the nodes it is given and
  each node's text from its LLM view, so the title shows twice; counted as is.
- no postprocessing: everything, whatever the budget.

A last table times ours with the embedding and hybrid scorers on ``--cold`` questions with the
embedding cache emptied before each call (a retriever with its own embedding model leaves
this process's cache cold). ``--sensitivity`` adds a table: ours (bm25) on both families
with each constant of ``headroom_core.evidence`` moved off its default, one at a time, and
three ablations.

One run; progress on stderr, Markdown tables on stdout. About 4 minutes on 2 cores with
the defaults (most of it MiniLM embedding every sentence for the optimizer's oracle);
``--sensitivity`` adds about a minute.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: import the packages
    sys.path.insert(0, str(REPO_ROOT))

from _llamaindex_data import HOTPOT, NQ, Case, hotpot_cases, nq_cases  # noqa: E402
from _llamaindex_methods import (  # noqa: E402
    Call,
    Method,
    MiniLMEmbedding,
    context,
    hotpot_methods,
    nq_methods,
    ours,
    tokens,
)

from headroom_core.relevance import EmbeddingScorer, embedding_available  # noqa: E402


@dataclass
class Tally:
    kept: list[bool] = field(default_factory=list)
    share: list[tuple[int, int]] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    within: list[bool] = field(default_factory=list)
    identity: list[bool] = field(default_factory=list)
    unchanged: list[bool] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def identity_kept(case: Case, call: Call) -> bool:
    """Every returned node has an input node's id and all of its metadata, unchanged."""
    given = {n.node_id: n.node.metadata for n in case.nodes}
    return all(
        n.node_id in given and all(n.node.metadata.get(k) == v for k, v in given[n.node_id].items())
        for n in call.out
    )


def measure(
    cases: Sequence[Case], methods: dict[str, Method], fracs: Sequence[float]
) -> dict[tuple[str, float], Tally]:
    tallies = {(name, f): Tally() for name in methods for f in fracs}
    for n, case in enumerate(cases):
        if n % 25 == 0:
            log(f"  {case.family}: question {n + 1}/{len(cases)}")
        total = tokens(context(case.nodes))
        for method in methods.values():  # untimed: every embedding a method needs is cached
            method(list(case.nodes), case.question, 10**9)
        for frac in fracs:
            budget = int(total * frac)
            for name, method in methods.items():
                call = method(list(case.nodes), case.question, budget)
                text = context(call.out)
                t = tallies[name, frac]
                t.kept.append(case.kept(text))
                t.share.append(case.kept_share(text))
                t.ratio.append(tokens(text) / total)
                t.within.append(tokens(text) <= budget)
                t.identity.append(identity_kept(case, call))
                t.unchanged.append(call.unchanged)
                t.ms.append(call.ms)
                t.cpu_ms.append(call.cpu_ms)
    return tallies


def pct(values: Sequence[bool | float]) -> str:
    return f"{100 * statistics.mean(values):.1f}"


def print_table(
    title: str, tallies: dict[tuple[str, float], Tally], fracs: Sequence[float], hotpot: bool
) -> None:
    print(f"### {title}\n")
    kept = "both gold kept % | supporting kept %" if hotpot else "answer kept %"
    print(
        f"| method | budget | {kept} | tokens kept % | within budget % | ids+metadata kept % "
        "| inputs unchanged % | ms/q mean | ms/q median | CPU ms/q |"
    )
    print("| --- | ---: |" + " ---: |" * (9 if hotpot else 8))
    for frac in fracs:
        for (name, f), t in tallies.items():
            if f != frac:
                continue
            share = ""
            if hotpot:
                got, of = map(sum, zip(*t.share, strict=True))
                share = f" {100 * got / of:.1f} |"
            print(
                f"| {name} | {frac:.0%} | {pct(t.kept)} |{share} {pct(t.ratio)} | "
                f"{pct(t.within)} | {pct(t.identity)} | {pct(t.unchanged)} | "
                f"{statistics.mean(t.ms):.1f} | {statistics.median(t.ms):.1f} | "
                f"{statistics.mean(t.cpu_ms):.1f} |"
            )
    print()


def cold(cases: Sequence[Case], embedder: EmbeddingScorer, n: int) -> None:
    """Ours with the embedding and hybrid scorers when this process has not embedded the
    nodes yet (a retriever with its own embedding model): the cache emptied before each call."""
    print(f"### Cold embedding cache (first {n} questions, cache emptied before each call)\n")
    print("| method | ms/q mean | ms/q median | CPU ms/q |")
    print("| --- | ---: | ---: | ---: |")
    for scorer in ("embedding", "hybrid"):
        method = ours(scorer)
        calls = []
        for case in cases[:n]:
            embedder.clear_cache()
            calls.append(method(list(case.nodes), case.question, tokens(context(case.nodes)) // 4))
        ms = [c.ms for c in calls]
        cpu = statistics.mean(c.cpu_ms for c in calls)
        print(
            f"| ours, {scorer} | {statistics.mean(ms):.0f} | {statistics.median(ms):.0f} "
            f"| {cpu:.0f} |"
        )
    print()


# ---- sensitivity -------------------------------------------------------------------------


@contextmanager
def patched(module: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def settings() -> list[tuple[str, Callable[[], Any], dict[str, Any]]]:
    """(label, context manager factory, extra postprocessor kwargs)."""
    from contextlib import nullcontext

    from headroom_core.evidence import _fill, _rank
    from headroom_integrations.llamaindex import postprocessor

    out: list[tuple[str, Callable[[], Any], dict[str, Any]]] = [("defaults", nullcontext, {})]
    for label, module, name, values in (
        ("REPEAT_FLOOR", _rank, "REPEAT_FLOOR", (0.25, 0.75, 1.0)),
        ("LINK_FLOOR", _rank, "LINK_FLOOR", (0.25, 0.75)),
        ("SENTENCE_FLOOR", _fill, "SENTENCE_FLOOR", (0.0, 0.1, 0.5)),
        ("NEIGHBOUR_WEIGHT", _fill, "NEIGHBOUR_WEIGHT", (0.5, 0.9)),
    ):
        for value in values:
            out.append(
                (f"{label} = {value}", lambda m=module, n=name, v=value: patched(m, n, v), {})
            )
    out.append(("titles not used (title_keys=())", nullcontext, {"title_keys": ()}))
    out.append(
        ("no links (nothing names a passage)", lambda: patched(_rank, "text_names", _never), {})
    )
    out.append(
        (
            "no sentence weights (passages filled in rank order)",
            lambda: patched(postprocessor, "sentence_weights", _flat),
            {},
        )
    )
    return out


def _never(text: str, name: str) -> bool:
    return False


def _flat(sentences: Sequence[str], query: str, **kwargs: Any) -> tuple[float, ...]:
    return (1.0,) * len(sentences)


def sensitivity(families: dict[str, list[Case]], fracs: Sequence[float]) -> None:
    names = list(families)
    print("### Sensitivity: ours (bm25) with one setting changed\n")
    head = " | ".join(
        f"{fam} {'both gold' if fam == 'hotpotqa' else 'answer'} kept {f:.0%}"
        for fam in names
        for f in fracs
    )
    print(f"| setting | {head} |")
    print("| --- |" + " ---: |" * (len(names) * len(fracs)))
    for label, manager, kwargs in settings():
        log(f"  sensitivity: {label}")
        cells = []
        with manager():
            for fam in names:
                tallies = measure(families[fam], {"ours": ours("bm25", **kwargs)}, fracs)
                cells += [pct(tallies["ours", f].kept) for f in fracs]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()


# ---- main --------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--families", default="hotpotqa,nq", help="hotpotqa, nq or both")
    parser.add_argument("--limit", type=int, default=40, help="nq questions per gold position")
    parser.add_argument("--hotpot-limit", type=int, default=None, help="hotpotqa questions")
    parser.add_argument("--budgets", default="0.25,0.5", help="fractions of the input tokens")
    parser.add_argument("--sensitivity", action="store_true", help="add the sensitivity table")
    parser.add_argument(
        "--cold", type=int, default=10, help="questions timed with an empty embedding cache"
    )
    args = parser.parse_args(argv)
    wanted = [f.strip() for f in args.families.split(",") if f.strip()]
    missing = [p for f, p in (("hotpotqa", HOTPOT), ("nq", NQ)) if f in wanted and not p.exists()]
    if missing:
        print(
            f"data not found: {', '.join(map(str, missing))} (clone with ../shared beside the repo)"
        )
        return
    if not embedding_available():
        print(
            'the MiniLM rows need the embeddings extra: pip install "headroom-context[embeddings]"'
        )
        return
    fracs = [float(x) for x in args.budgets.split(",")]
    started = time.perf_counter()
    embedder = EmbeddingScorer()
    t0 = time.perf_counter()
    embedder.embed(["warm up"])
    load_s = time.perf_counter() - t0
    families: dict[str, list[Case]] = {}
    if "hotpotqa" in wanted:
        log("hotpotqa: retrieving through VectorStoreIndex")
        families["hotpotqa"] = hotpot_cases(args.hotpot_limit, MiniLMEmbedding(embedder))
        tallies = measure(families["hotpotqa"], hotpot_methods(embedder), fracs)
        print_table(
            f"HotpotQA multi-hop: supporting sentences kept at a token budget "
            f"({len(families['hotpotqa'])} questions, 10 paragraphs each)",
            tallies,
            fracs,
            hotpot=True,
        )
    if "nq" in wanted:
        log("nq: scoring passages")
        families["nq"] = nq_cases(args.limit, embedder)
        tallies = measure(families["nq"], nq_methods(embedder), fracs)
        print_table(
            f"NQ: answer kept at a token budget (20 passages, gold at 0/9/19, "
            f"{len(families['nq'])} questions)",
            tallies,
            fracs,
            hotpot=False,
        )
    if args.cold:
        some = families.get("hotpotqa") or families.get("nq") or []
        cold(some, embedder, args.cold)
    if args.sensitivity:
        sensitivity(families, fracs)
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else "?"
    print(
        f"CPU, {threads} torch threads; MiniLM import and load {load_s:.1f} s (once per "
        f"process); total {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()

"""Where the compaction and fitting defaults come from: ours only, each setting swept.

    python tests/benchmarks/bench_compaction.py [--part bill|budget|all] [--markdown]

1. ``bill``: the five coding-agent sessions replayed request by request (as in
   ``bench_sessions.py``) for each ``CompactionConfig(horizon_requests, min_saving_tokens)``
   pair, with a Claude model (Anthropic cache prices in the decisions, bill at Anthropic
   rates) and gpt-4o (OpenAI prices, bill at OpenAI rates): the bill as a multiple of the
   uncompressed one, the last request's size as a share of the uncompressed one, the mean
   prefix reuse.
2. ``budget``: the hard-budget replay of ``bench_context.py`` (the 18 public conversations,
   each request fitted into 50% of its conversation's tokens, gpt-4o) for each
   ``(RollingWindowConfig.cut_quantum, CompactionConfig.min_output_tokens,
   CompactionConfig.keep_first_share, rolling_window.DROP_QUANTUM)``: mean prefix reuse over the pairs scored (pairs next
   to a BudgetError are not), BudgetErrors, oversize requests sent, tokens sent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from _context_cases import REPLAY_FRACTION, load_conversations, replay_requests  # noqa: E402
from _context_report import Section, print_sections  # noqa: E402
from _datasets import DATA_DIR  # noqa: E402
from _sessions_cases import CODING_DIR, load_sessions  # noqa: E402
from rich.console import Console  # noqa: E402

from headroom_core import BudgetError, HeadroomConfig, RollingWindowConfig, compress  # noqa: E402
from headroom_core.billing import ANTHROPIC_RATES, OPENAI_RATES, session_bill  # noqa: E402
from headroom_core.config import CompactionConfig  # noqa: E402
from headroom_core.tokens import get_tokenizer  # noqa: E402
from headroom_core.transforms.cache_aligner import prefix_reuse  # noqa: E402

BILL_GRID = ((12, 4000), (25, 2000), (25, 4000), (40, 4000), (25, 10**9))
MODELS = (("claude-sonnet-4-5", ANTHROPIC_RATES), ("gpt-4o", OPENAI_RATES))
# (cut_quantum, min_output_tokens, keep_first_share, RollingWindow's DROP_QUANTUM)
BUDGET_GRID = (
    (0.2, 120, 0.2, 0.5),
    (0.2, 100, 0.2, 0.5),
    (0.2, 150, 0.2, 0.5),
    (0.2, 300, 0.2, 0.5),
    (0.2, 120, 0.0, 0.5),
    (0.2, 120, 0.3, 0.5),
    (0.3, 120, 0.2, 0.5),
    (0.2, 120, 0.2, 0.2),
    (0.2, 120, 0.2, 0.7),
)
TOK = get_tokenizer("gpt-4o")


def _bill_part(log: Console) -> Section:
    sessions = load_sessions(DATA_DIR, "coding")
    rows = []
    for model, rates in MODELS:
        base = [session_bill(s.requests, tokenizer=TOK) for s in sessions]
        cost0 = sum(b.cost(rates) for b in base)
        last0 = sum(b.last_tokens for b in base)
        for horizon, least in BILL_GRID:
            cfg = HeadroomConfig(
                compaction=CompactionConfig(horizon_requests=horizon, min_saving_tokens=least)
            )
            start = time.perf_counter()
            cost = last = 0.0
            reuse: list[float] = []
            for s in sessions:
                outs = [compress(r, model=model, config=cfg).messages for r in s.requests]
                bill = session_bill(outs, tokenizer=TOK)
                cost += bill.cost(rates)
                last += bill.last_tokens
                reuse += [prefix_reuse(a, b) for a, b in zip(outs, outs[1:], strict=False)]
            least_text = "never" if least >= 10**9 else f"{least:,}"
            rows.append(
                [
                    f"{model} ({rates.name} rates)",
                    str(horizon),
                    least_text,
                    f"{cost / cost0:.3f}",
                    f"{last / last0:.3f}",
                    f"{statistics.fmean(reuse):.4f}",
                ]
            )
            log.print(f"  bill {model} {horizon}/{least_text}: {time.perf_counter() - start:.0f}s")
    return Section(
        "Compaction decisions: five coding-agent sessions, replayed",
        ("model", "horizon_requests", "min_saving_tokens", "bill", "last request", "reuse"),
        rows,
        [
            "bill: under the model's provider rates, as a multiple of the uncompressed "
            "requests' bill; last request: tokens of each session's final request summed, as "
            "a share of the uncompressed; reuse: mean prefix_reuse of consecutive requests",
            "min_saving_tokens 'never': no voluntary compaction (fitting only)",
        ],
        group=len(BILL_GRID),
    )


def _budget_part(log: Console) -> Section:
    convs = load_conversations(DATA_DIR)
    rows = []
    from headroom_core.transforms import rolling_window

    default_depth = rolling_window.DROP_QUANTUM
    for quantum, floor, first, depth in BUDGET_GRID:
        rolling_window.DROP_QUANTUM = depth  # a module constant, not a setting: swept here
        cfg = HeadroomConfig(
            rolling_window=RollingWindowConfig(output_buffer_tokens=0, cut_quantum=quantum),
            compaction=CompactionConfig(min_output_tokens=floor, keep_first_share=first),
        )
        start = time.perf_counter()
        reuse: list[float] = []
        errors = over = sent = 0
        for c in convs:
            budget = c.budget(REPLAY_FRACTION)
            previous = None
            for request in replay_requests(c.messages):
                try:
                    out = compress(request, model="gpt-4o", max_tokens=budget, config=cfg).messages
                except BudgetError:
                    errors += 1
                    previous = None
                    continue
                tokens = TOK.count_messages(out)
                sent += tokens
                over += tokens > budget
                if previous is not None:
                    reuse.append(prefix_reuse(previous, out))
                previous = out
        rolling_window.DROP_QUANTUM = default_depth
        rows.append(
            [
                str(quantum),
                str(floor),
                str(first),
                str(depth),
                f"{statistics.fmean(reuse):.4f}",
                str(len(reuse)),
                str(errors),
                str(over),
                f"{sent:,}",
            ]
        )
        log.print(f"  budget {quantum}/{floor}/{first}/{depth}: {time.perf_counter() - start:.0f}s")
    return Section(
        "Fitting under a hard budget: 18 public conversations, each request in 50% of its "
        "conversation's tokens",
        (
            "cut_quantum",
            "min_output_tokens",
            "keep_first_share",
            "drop depth",
            "mean prefix reuse",
            "pairs",
            "BudgetError",
            "oversize sent",
            "tokens sent",
        ),
        rows,
        [
            "as bench_context.py's replay at 50% (RollingWindow, output_buffer_tokens=0, gpt-4o)",
            "drop depth: rolling_window.DROP_QUANTUM, the share of the budget a fit that drops "
            "whole units frees at least",
        ],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--part", choices=("bill", "budget", "all"), default="all")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    log = Console(stderr=True)
    if not (DATA_DIR / CODING_DIR).is_dir():
        print(f"benchmark data not found under {DATA_DIR}; nothing to measure (see README.md)")
        return 0
    sections = []
    if args.part in ("bill", "all"):
        sections.append(_bill_part(log))
    if args.part in ("budget", "all"):
        sections.append(_budget_part(log))
    print_sections(sections, markdown=args.markdown, width=200)
    return 0


if __name__ == "__main__":
    sys.exit(main())

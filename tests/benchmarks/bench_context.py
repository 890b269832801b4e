"""Context-fitting benchmark: budgets and cache-prefix stability on real agent histories.

    python tests/benchmarks/bench_context.py [--headroom-ai-python /tmp/hrai/bin/python]
        [--limit N] [--markdown]

Methods, side by side in one run: the request as given, ours (``headroom_core.compress``
with the RollingWindow or the IntelligentContext fitter), LangChain's ``trim_messages``
and ``ClearToolUsesEdit`` (what ``ContextEditingMiddleware`` applies) and, when its
interpreter is given, headroom-ai 0.42.0 ``compress()`` in a subprocess.

1. Budgets: each conversation whole, with budgets of 25/50/75% of its size.
2. Replay: each conversation request by request, as the agent called the model; the mean
   ``prefix_reuse`` of consecutive outputs with no budget and with 50% of the full size.

All token counts come from ``headroom_core.tokens.count_tokens_messages`` (gpt-4o).
Data is read from ``../shared/data/conversations``; see README.md here.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: import headroom_core
    sys.path.insert(0, str(REPO_ROOT))

from _context_cases import (  # noqa: E402
    BUDGET_FRACTIONS,
    REPLAY_FRACTION,
    TAU_NOTE,
    Conversation,
    load_conversations,
    replay_requests,
)
from _context_hrai import Call, HeadroomAICalls, run_calls  # noqa: E402
from _context_methods import (  # noqa: E402
    HRAI,
    HRAI_FROZEN,
    NO_BUDGET,
    OURS,
    LocalFitter,
    Outcome,
    local_fitters,
)
from _context_report import (  # noqa: E402
    BUST,
    BudgetStats,
    ReplayStats,
    Section,
    budget_section,
    fits_by_source,
    print_sections,
    replay_section,
    reuse_by_source,
)
from _datasets import DATA_DIR  # noqa: E402
from rich.console import Console  # noqa: E402

WARM_UP = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Which item is late?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "w1", "type": "function", "function": {"name": "list", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "w1", "content": "[" + ",".join(['{"id": 1}'] * 50) + "]"},
    {"role": "user", "content": "And the next one?"},
]
SETTINGS: tuple[float | None, ...] = (None, REPLAY_FRACTION)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    # argparse rather than click: this script must run in a bare venv with the data.
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--headroom-ai-python", default=None, metavar="PATH")
    parser.add_argument("--limit", type=int, default=None, help="at most N conversations")
    parser.add_argument("--markdown", action="store_true", help="Markdown tables on stdout")
    return parser.parse_args(argv)


def _setting(fraction: float | None) -> str:
    return "none" if fraction is None else f"{fraction:.0%}"


def _budget(conv: Conversation, fraction: float | None) -> int | None:
    return None if fraction is None else conv.budget(fraction)


# --- local methods --------------------------------------------------------------------------


def _run_budgets(
    convs: Sequence[Conversation], fitters: Sequence[LocalFitter], log: Console
) -> dict[str, list[Outcome]]:
    """method -> outcomes, conversation-major, fraction-minor."""
    out: dict[str, list[Outcome]] = {}
    for fitter in fitters:
        start = time.perf_counter()
        out[fitter.name] = [
            fitter.fit(c.messages, c.budget(f)) for c in convs for f in BUDGET_FRACTIONS
        ]
        log.print(f"  budgets: {fitter.name} done in {time.perf_counter() - start:.1f}s")
    return out


def _run_replay(
    convs: Sequence[Conversation], fitters: Sequence[LocalFitter], log: Console
) -> dict[tuple[str, str], list[list[Outcome]]]:
    """(method, setting) -> per conversation, the outcome of each of its requests."""
    out: dict[tuple[str, str], list[list[Outcome]]] = {}
    for fitter in fitters:
        start = time.perf_counter()
        for fraction in SETTINGS:
            out[(fitter.name, _setting(fraction))] = [
                [fitter.fit(req, _budget(c, fraction)) for req in replay_requests(c.messages)]
                for c in convs
            ]
        log.print(f"  replay: {fitter.name} done in {time.perf_counter() - start:.1f}s")
    return out


# --- headroom-ai ----------------------------------------------------------------------------


def _hrai_calls(convs: Sequence[Conversation]) -> list[Call]:
    """Budgets, then the replay with no budget and with 50%, then the same replay with
    ``frozen_message_count`` = the previous request's message count (its documented
    setting for a library caller that runs its own agent loop)."""
    calls = [
        Call(c.messages, {"model_limit": c.budget(f)}) for c in convs for f in BUDGET_FRACTIONS
    ]
    for frozen in (False, True):
        for fraction in SETTINGS:
            for c in convs:
                limit = _budget(c, fraction) or NO_BUDGET
                previous = 0
                for req in replay_requests(c.messages):
                    kwargs = {"model_limit": limit}
                    if frozen:
                        kwargs["frozen_message_count"] = previous
                    calls.append(Call(req, kwargs))
                    previous = len(req)
    return calls


def _split_hrai(
    convs: Sequence[Conversation], run: HeadroomAICalls
) -> tuple[list[Outcome], dict[tuple[str, str], list[list[Outcome]]]]:
    """Undo :func:`_hrai_calls`' order."""
    outcomes = iter(run.outcomes)
    budgets = [next(outcomes) for _c in convs for _f in BUDGET_FRACTIONS]
    replay: dict[tuple[str, str], list[list[Outcome]]] = {}
    for name in (HRAI, HRAI_FROZEN):
        for fraction in SETTINGS:
            replay[(name, _setting(fraction))] = [
                [next(outcomes) for _req in replay_requests(c.messages)] for c in convs
            ]
    return budgets, replay


def _run_hrai(
    python: str | None, convs: Sequence[Conversation], log: Console, notes: list[str]
) -> tuple[list[Outcome] | None, dict[tuple[str, str], list[list[Outcome]]]]:
    if python is None:
        notes.append("headroom-ai skipped: pass --headroom-ai-python PATH (see README.md)")
        return None, {}
    start = time.perf_counter()
    calls = _hrai_calls(convs)
    run = run_calls(python, calls)
    log.print(f"  headroom-ai: {len(calls)} calls done in {time.perf_counter() - start:.1f}s")
    if run.error:
        notes.append(f"headroom-ai failed: {run.error}")
        return None, {}
    notes.append(
        f"headroom-ai {run.version}: compress(messages, model='gpt-4o', model_limit=<budget, "
        f"or {NO_BUDGET:,} with no budget>), timed inside its own process after a warm-up call; "
        "it has no hard budget, so its outputs are only checked against the budget"
    )
    notes += [f"headroom-ai logged: {w[:200]}" for w in run.warnings]
    return _split_hrai(convs, run)


# --- tables ---------------------------------------------------------------------------------


def _budget_sections(
    convs: Sequence[Conversation], outcomes: dict[str, list[Outcome]], notes: list[str]
) -> list[Section]:
    stats: list[BudgetStats] = []
    fits: dict[tuple[str, str, float], bool] = {}
    for method, outs in outcomes.items():
        per_fraction = {f: BudgetStats(method, f) for f in BUDGET_FRACTIONS}
        pairs = [(c, f) for c in convs for f in BUDGET_FRACTIONS]
        for (c, f), out in zip(pairs, outs, strict=True):
            fits[(method, c.name, f)] = per_fraction[f].add(c, c.budget(f), out)
        stats += per_fraction.values()
    main = budget_section(stats, convs, BUDGET_FRACTIONS)
    main.notes = [
        "fits: the output's exact token count <= the budget; BudgetError: ours refused "
        "(the system prompt and protected recent turns alone exceed the budget); oversize "
        "sent: an output over the budget returned without an error",
        "pairing, user text, last msg and marker columns are % of the outputs returned; "
        "tokens after and % of budget sum over them too",
        "user text unchanged: every user message of the output is an input user message, "
        "byte for byte; marker %: outputs holding ours' inserted system note "
        "'[headroom: N earlier messages ... ref=...]', which is inserted, not kept, so not checked",
        "last msg kept: the output ends on the input's last message, the one the model must "
        "answer (same role, call ids and text; a tool result's content may be compressed)",
        "LangChain's counter: ours over the mapped-back dicts; trim_messages counts the system "
        "message apart from the rest, so it charges the 3 reply-priming tokens twice: its cut "
        "is up to 3 tokens conservative",
        TAU_NOTE,
        *main.notes,
        *notes,
        *(f"{s.method} {s.fraction:.0%} failed: {f}" for s in stats for f in s.failures[:3]),
    ]
    by_source = fits_by_source(convs, fits, list(outcomes), BUDGET_FRACTIONS)
    return [main, by_source]


def _replay_sections(
    convs: Sequence[Conversation], outcomes: dict[tuple[str, str], list[list[Outcome]]]
) -> list[Section]:
    stats: list[ReplayStats] = []
    for (method, setting), per_conv in outcomes.items():
        s = ReplayStats(method, setting)
        fraction = None if setting == "none" else REPLAY_FRACTION
        for c, outs in zip(convs, per_conv, strict=True):
            s.add_conversation(c, _budget(c, fraction), replay_requests(c.messages), outs)
        stats.append(s)
    main = replay_section(stats, len(convs))
    ours = [s for s in stats if s.method in OURS and s.setting == "none" and s.reuse]
    target = ", ".join(f"{s.method} {min(s.reuse):.4f} min" for s in ours)
    main.notes = [
        "request k: the history before each assistant message that follows a user or tool "
        "message (where the recorded agent called the model), plus the whole history when it "
        "ends on one; each method sees each request afresh, as a stateless call per turn",
        "prefix reuse: the share of the previous output's canonical JSON bytes that the "
        "current output repeats as a prefix (headroom_core.transforms.cache_aligner."
        "prefix_reuse); pairs with a BudgetError on either side are not scored",
        f"budget 50%: 50% of the whole conversation's tokens, fixed for all its requests; "
        f"no budget: {NO_BUDGET:,} tokens (gpt-4o's window) for every method",
        f"busts: pairs with reuse < {BUST}; full reuse: pairs with reuse == 1.0",
        "over budget: scored pairs whose current request, as recorded, exceeds the budget (the "
        "method has to act); mean reuse over budget compares the methods on the same kind of "
        "pairs, since ours scores no pair next to a BudgetError",
        f"target for ours without budget: mean >= 0.99 ({target})",
        f"{HRAI_FROZEN}: frozen_message_count = the previous request's message count, as "
        "headroom-ai documents for library callers that run their own loop",
        *(f"{s.method} {s.setting} failed: {f}" for s in stats for f in s.failures[:3]),
    ]
    return [main, reuse_by_source(convs, stats)]


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    log = Console(stderr=True)
    folder = DATA_DIR / "conversations"
    if not folder.is_dir():
        print(f"benchmark data not found at {folder}; nothing to measure (see README.md)")
        return 0
    convs = load_conversations(DATA_DIR, args.limit)
    log.print(
        f"conversations: {len(convs)}, replay requests: "
        f"{sum(len(replay_requests(c.messages)) for c in convs)}"
    )
    fitters, notes = local_fitters()
    for fitter in fitters:
        fitter.fit(WARM_UP, None)  # builds the tokenizer, imports LangChain
        fitter.fit(WARM_UP, 60)
    budgets = _run_budgets(convs, fitters, log)
    replay = _run_replay(convs, fitters, log)
    hrai_budgets, hrai_replay = _run_hrai(args.headroom_ai_python, convs, log, notes)
    if hrai_budgets is not None:
        budgets[HRAI] = hrai_budgets
        replay.update(hrai_replay)
    sections = _budget_sections(convs, budgets, notes) + _replay_sections(convs, replay)
    print_sections(sections, markdown=args.markdown, width=250)
    return 0


if __name__ == "__main__":
    sys.exit(main())

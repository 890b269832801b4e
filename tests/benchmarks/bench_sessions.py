"""Session benchmark: the bill of whole agent sessions under prompt caching, turn by turn.

    python tests/benchmarks/bench_sessions.py [--headroom-ai-python /tmp/hrai/bin/python]
        [--sessions coding|public|all] [--limit N] [--markdown]

Every conversation in ``../shared/data/conversations_coding_agents`` and
``../shared/data/conversations`` is replayed request by request (request k: the history
before the k-th model call) through: no compression, headroom-ai 0.42 ``compress()``
(without and with ``frozen_message_count``, in its own venv) and ours
(``headroom_core.compress`` for a Claude model, priced at Anthropic's cache rates, and for
gpt-4o, priced at OpenAI's). Per session and in total: tokens sent, tokens of the last
request, prefix reuse, the bill under Anthropic's and OpenAI's prompt-caching rates as a
multiple of the uncompressed bill, ms per turn, and the checks (tool pairing valid, no user
or assistant message altered, the task present) on every replayed request.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: import headroom_core
    sys.path.insert(0, str(REPO_ROOT))

from _context_hrai import Call, run_calls  # noqa: E402
from _context_methods import Messages, Outcome  # noqa: E402
from _context_report import print_sections  # noqa: E402
from _datasets import DATA_DIR  # noqa: E402
from _sessions_cases import CODING_DIR, Session, load_sessions  # noqa: E402
from _sessions_report import Run, bill_section, group_runs  # noqa: E402
from rich.console import Console  # noqa: E402

NONE = "none (uncompressed)"
HRAI = "headroom-ai compress()"
HRAI_FROZEN = "headroom-ai compress(frozen_message_count)"
HRAI_LIMIT = 128_000  # gpt-4o's window, as model_limit
OURS_MODELS = ("claude-sonnet-4-5", "gpt-4o")
WARM_UP: Messages = [
    {"role": "system", "content": "You are a coding agent."},
    {"role": "user", "content": "Fix the failing test."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "w1", "type": "function", "function": {"name": "Bash", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "w1", "content": "ok\n" * 400},
]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--headroom-ai-python", default=None, metavar="PATH")
    parser.add_argument("--sessions", choices=("coding", "public", "all"), default="all")
    parser.add_argument("--limit", type=int, default=None, help="first N requests per session")
    parser.add_argument(
        "--ours-models", default=",".join(OURS_MODELS), help="model names ours runs for"
    )
    parser.add_argument("--markdown", action="store_true", help="Markdown tables on stdout")
    return parser.parse_args(argv)


def _ours(model: str) -> Callable[[Messages], Outcome]:
    from headroom_core import BudgetError, compress

    def run(request: Messages) -> Outcome:
        start = time.perf_counter()
        try:
            result = compress(request, model=model)
        except BudgetError:
            return Outcome(None, (time.perf_counter() - start) * 1000, budget_error=True)
        except Exception as exc:  # a benchmark reports failures, it does not stop on them
            ms = (time.perf_counter() - start) * 1000
            return Outcome(None, ms, error=f"{type(exc).__name__}: {exc}")
        return Outcome(result.messages, (time.perf_counter() - start) * 1000)

    run(WARM_UP)  # builds the tokenizer, loads the compressors
    return run


def _local(
    name: str, method: Callable[[Messages], Outcome], sessions: Sequence[Session], log: Console
) -> list[Run]:
    start = time.perf_counter()
    runs = []
    for s in sessions:
        run = Run(name, s)
        for request in s.requests:
            run.add(request, method(request))
        run.finish()
        runs.append(run)
    log.print(f"  {name}: {time.perf_counter() - start:.1f}s")
    return runs


def _hrai(
    python: str | None, sessions: Sequence[Session], log: Console, notes: list[str]
) -> dict[str, list[Run]]:
    if python is None:
        notes.append("headroom-ai skipped: pass --headroom-ai-python PATH (see README.md)")
        return {}
    calls: list[Call] = []
    for frozen in (False, True):
        for s in sessions:
            previous = 0
            for request in s.requests:
                kwargs: dict[str, int] = {"model_limit": HRAI_LIMIT}
                if frozen:
                    kwargs["frozen_message_count"] = previous
                calls.append(Call(request, kwargs))
                previous = len(request)
    start = time.perf_counter()
    result = run_calls(python, calls)
    log.print(f"  headroom-ai: {len(calls)} calls in {time.perf_counter() - start:.1f}s")
    if result.error:
        notes.append(f"headroom-ai failed: {result.error}")
        return {}
    notes.append(
        f"headroom-ai {result.version}: compress(messages, model='gpt-4o', model_limit="
        f"{HRAI_LIMIT:,}); the frozen row adds frozen_message_count = the previous request's "
        "message count, its documented setting for a library caller running its own loop"
    )
    notes += [f"headroom-ai logged: {w[:200]}" for w in result.warnings]
    outcomes = iter(result.outcomes)
    out: dict[str, list[Run]] = {}
    for name in (HRAI, HRAI_FROZEN):
        runs = []
        for s in sessions:
            run = Run(name, s)
            for request in s.requests:
                run.add(request, next(outcomes))
            run.finish()
            runs.append(run)
        out[name] = runs
    return out


NOTES = [
    "request k: the history before the k-th model call (each assistant message that follows "
    "a user or tool message), plus the whole history when it ends on one; every method sees "
    "every request afresh, in order",
    "tokens: o200k_base (gpt-4o, exact, chat framing) for every method; last request: the "
    "tokens of each session's final request, summed",
    "bill: per request, the leading messages equal to the same method's previous request are "
    "read from the cache (from 1,024 tokens on), the rest is written; Anthropic rates: cached "
    "0.1x, written 1.25x; OpenAI rates: cached 0.5x, the rest 1.0x; shown as a multiple of "
    "the uncompressed requests' bill at the same rates (headroom_core.billing)",
    "prefix reuse: the mean over consecutive request pairs of headroom_core.transforms."
    "cache_aligner.prefix_reuse (the share of the previous request's canonical JSON bytes the "
    "next one repeats as a prefix)",
    "ours (MODEL): headroom_core.compress(request, model=MODEL) with default settings: the "
    "window and the cache prices its compaction decisions use come from MODEL",
    "ms per turn: wall time of the method's call, in its own process after a warm-up call",
    "checks, on every request: tool pairing valid, every user and assistant message kept "
    "unchanged and in order (some may be left out), the task (first user message) present; "
    "'failed' counts requests the method refused or failed (billed as the request as built)",
]


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    log = Console(stderr=True)
    if not (DATA_DIR / CODING_DIR).is_dir() and not (DATA_DIR / "conversations").is_dir():
        print(f"benchmark data not found under {DATA_DIR}; nothing to measure (see README.md)")
        return 0
    sessions = load_sessions(DATA_DIR, args.sessions, args.limit)
    log.print(f"sessions: {len(sessions)}, requests: {sum(len(s.requests) for s in sessions)}")
    notes = list(NOTES)
    runs: dict[str, list[Run]] = {NONE: _local(NONE, lambda r: Outcome(r, 0.0), sessions, log)}
    runs.update(_hrai(args.headroom_ai_python, sessions, log, notes))
    for model in [m for m in args.ours_models.split(",") if m]:
        name = f"ours ({model})"
        runs[name] = _local(name, _ours(model), sessions, log)
    coding, public = group_runs(runs, sessions)
    sections = []
    if coding:
        sections.append(bill_section("Coding-agent sessions", coding, NONE))
    if public:
        sections.append(bill_section("Public agent conversations", public, NONE))
    sections[-1].notes = notes
    print_sections(sections, markdown=args.markdown, width=250)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Adapters inside a real agent: turns that raise, the largest request against the window,
and the time the adapter adds per turn.

    .venv/bin/python tests/benchmarks/bench_agents.py [--windows 16000,24000,40000] [--markdown]

The agent (``tests/integrations/agent_scenario.py``): LangChain ``create_agent`` with an
``InMemorySaver`` checkpointer (one thread), a scripted tool-calling model built on
``GenericFakeChatModel`` that binds tools as provider models do, and six user turns over
real tool outputs from ``../shared/data``: four 2,000-line loghub logs (HDFS, Apache,
OpenSSH, Zookeeper) and the 450 KB Jira project list; in turn 6 the model calls
``headroom_retrieve`` with a ref it saw and no query.

Methods, one row per window:

- ``no adapter``: the agent as built (the scripted model accepts any size; the
  largest request shows what would be sent);
- ``HeadroomMiddleware(max_tokens=W, on_budget="raise")``: the policy before issue 14
  (BudgetError propagates out of ``agent.invoke``);
- ``HeadroomMiddleware(max_tokens=W)``: the default now (``on_budget="fit"``);
- the same with ``compress_tool_results=True`` (each tool result compressed once, into
  the graph state);
- the default with the 162 BFCL multi-turn tool schemas bound next to the agent's tools
  (``--no-bfcl`` leaves this row out).

Columns: *turns raised* (of 6); *largest request*: exact tokens of the largest request the
model received, messages and tool definitions (o200k_base, canonical JSON of the tool
definitions, as the adapters and the client count them); *budget*: the window minus the
default 4,000-token output buffer, what a request must fit; *fallbacks*: model calls that
needed the adapter's budget fallback (capped tool outputs / hardest cut / sent over);
*ms added per turn*: median over the 6 turns of (turn wall time with the adapter minus
the same turn without it), best of ``--repeats`` runs; the scripted model itself answers
in microseconds, so this is the adapter's compression, conversion and events.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: import the packages
    sys.path.insert(0, str(REPO_ROOT))

from langchain.agents import create_agent  # noqa: E402
from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from headroom_integrations.langchain import HeadroomMiddleware  # noqa: E402
from tests.integrations.agent_scenario import (  # noqa: E402
    SYSTEM,
    TOOLS,
    ScriptedToolModel,
    TurnResult,
    bfcl_tools,
    data_present,
    run_six_turns,
    six_turn_step,
)

BUFFER = 4_000


class Fallbacks(BaseCallbackHandler):
    """Counts the adapter's budget fallbacks from its ``headroom_compression`` events."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == "headroom_compression" and data.get("fallback"):
            self.seen[str(data["fallback"])] += 1


def run(
    window: int | None,
    policy: str,
    extra_tools: list[dict[str, Any]],
    in_state: bool = False,
) -> tuple[list[TurnResult], Counter[str]]:
    model = ScriptedToolModel(step=six_turn_step())
    middleware = (
        []
        if window is None
        else [
            HeadroomMiddleware(
                max_tokens=window,
                on_budget=policy,  # type: ignore[arg-type]
                compress_tool_results=in_state,
            )
        ]
    )
    agent = create_agent(
        model,
        tools=[*TOOLS, *extra_tools],
        system_prompt=SYSTEM,
        middleware=middleware,
        checkpointer=InMemorySaver(),
    )
    counter = Fallbacks()
    agent = agent.with_config(callbacks=[counter])
    return run_six_turns(agent, model), counter.seen


def best_of(repeats: int, *args: Any) -> tuple[list[TurnResult], Counter[str]]:
    """The run with each turn at its fastest over ``repeats`` runs (results of the first)."""
    first, seen = run(*args)
    for _ in range(repeats - 1):
        again, _ = run(*args)
        for a, b in zip(first, again, strict=True):
            a.seconds = min(a.seconds, b.seconds)
    return first, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", default="16000,24000,40000")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-bfcl", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if not data_present():
        print("../shared/data (loghub logs, Jira mocks) not found; nothing to run")
        return
    windows = [int(w) for w in args.windows.split(",")]
    bfcl = [] if args.no_bfcl else bfcl_tools()
    run(None, "fit", [])  # warm-up: tokenizer, compressors, LangGraph
    base, _ = best_of(args.repeats, None, "fit", [])
    base_bfcl = best_of(args.repeats, None, "fit", bfcl)[0] if bfcl else []
    rows = [_row("no adapter", None, base, base, Counter())]
    if bfcl:
        rows.append(
            _row(f"no adapter, + {len(bfcl)} BFCL schemas", None, base_bfcl, base_bfcl, Counter())
        )
    for window in windows:
        for label, policy, extra, reference, in_state in (
            ('on_budget="raise" (before)', "raise", [], base, False),
            ('default (on_budget="fit")', "fit", [], base, False),
            ("default, compress_tool_results=True", "fit", [], base, True),
            *(
                [(f"default, + {len(bfcl)} BFCL schemas", "fit", bfcl, base_bfcl, False)]
                if bfcl
                else []
            ),
        ):
            turns, seen = best_of(args.repeats, window, policy, extra, in_state)
            rows.append(_row(label, window, turns, reference, seen))
    _print(rows, args.markdown)


def _row(
    label: str,
    window: int | None,
    turns: list[TurnResult],
    reference: list[TurnResult],
    seen: Counter[str],
) -> list[str]:
    largest = max((t for turn in turns for t in turn.requests), default=0)
    added = [1000 * (a.seconds - b.seconds) for a, b in zip(turns, reference, strict=True)]
    raised = sum(t.error is not None for t in turns)
    return [
        label,
        "-" if window is None else f"{window:,}",
        f"{raised} / {len(turns)}",
        f"{largest:,}",
        "-" if window is None else f"{window - BUFFER:,}",
        ", ".join(f"{k} {v}" for k, v in sorted(seen.items())) or "-",
        "-" if window is None else f"{statistics.median(added):.0f}",
    ]


HEADERS = [
    "method",
    "window",
    "turns raised",
    "largest request (msgs + tools)",
    "budget",
    "fallbacks",
    "ms added / turn",
]


def _print(rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(HEADERS) + " |")
        print("|---|---:|---:|---:|---:|---|---:|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    table = Table(title="6-turn create_agent over loghub logs and the Jira project list")
    for h in HEADERS:
        table.add_column(h, justify="left" if h in ("method", "fallbacks") else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"\n({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

"""What HeadroomRunnable costs per call on top of headroom_core.compress itself.

    .venv/bin/python tests/benchmarks/bench_langchain_overhead.py [--runs 30] [--warmup 3]

Cases: the example history bundled in the package (``headroom_core._cli_input``) and every
real conversation in ../shared/data/conversations (OpenAI chat format; skipped with a note
when the folder is missing). Each case is given to LangChain as
``convert_to_messages(dicts)``, the way a chain holds it.

Columns, per case, over ``--runs`` calls after ``--warmup`` untimed ones (the core memoises
token counts of long strings, so every timed call is a warm call, as in an agent loop):

- ``compress()``: wall time of ``headroom_core.compress(dicts)`` on the OpenAI dicts;
- ``invoke()``: wall time of ``HeadroomRunnable().invoke(messages)``;
- ``overhead``: per call, ``invoke()`` minus the time spent inside the ``compress`` it made
  (timed by wrapping the function the runnable calls), so the noise of the compression
  itself cancels: conversion both ways, input coercion, the run's callback manager and the
  custom event;
- ``+ handler``: the same overhead with one callback handler attached that receives the
  custom event (a chain that is observed: a tracer, a metrics handler).

Times in microseconds, median and 90th percentile. Markdown on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, convert_to_messages

import headroom_integrations._compress as compress_module
from headroom_core import compress
from headroom_core._cli_input import example_history
from headroom_integrations.langchain import HeadroomRunnable

CONVERSATIONS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "conversations"


class EventSink(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events = 0

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.events += 1


class InnerTimer:
    """Stands in for the ``compress`` the runnable calls, adding up the time spent in it."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0


def cases() -> list[tuple[str, list[dict[str, Any]]]]:
    out = [("example_history (bundled)", example_history())]
    if not CONVERSATIONS.exists():
        print(f"note: {CONVERSATIONS} not found; conversations skipped", file=sys.stderr)
        return out
    for path in sorted(CONVERSATIONS.glob("*.json")):
        if path.name != "index.json":
            data = json.loads(path.read_text("utf-8"))
            out.append((path.stem, data["messages"] if isinstance(data, dict) else data))
    return out


def us(seconds: list[float], q: float) -> float:
    ordered = sorted(seconds)
    return 1e6 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median_us(seconds: list[float]) -> float:
    return 1e6 * statistics.median(seconds)


def measure(
    dicts: list[dict[str, Any]], runs: int, warmup: int, timer: InnerTimer
) -> dict[str, list[float]]:
    messages: list[BaseMessage] = convert_to_messages(dicts)
    runnable, sink = HeadroomRunnable(), EventSink()
    times: dict[str, list[float]] = {"direct": [], "invoke": [], "overhead": [], "handler": []}
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        compress(dicts)
        t1 = time.perf_counter()
        timer.seconds = 0.0
        runnable.invoke(messages)
        t2 = time.perf_counter()
        inner = timer.seconds
        timer.seconds = 0.0
        t3 = time.perf_counter()
        runnable.invoke(messages, config={"callbacks": [sink]})
        t4 = time.perf_counter()
        if i >= warmup:
            times["direct"].append(t1 - t0)
            times["invoke"].append(t2 - t1)
            times["overhead"].append(t2 - t1 - inner)
            times["handler"].append(t4 - t3 - timer.seconds)
    assert sink.events == warmup + runs, "every call reports one event"
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    timer = InnerTimer(compress)
    setattr(compress_module, "compress", timer)  # noqa: B010 - the function the adapters call
    header = (
        "| case | msgs | compress() median µs | invoke() median µs | overhead median µs "
        "| overhead p90 µs | overhead % | + handler median µs | + handler p90 µs |"
    )
    print(f"{args.runs} timed calls per case after {args.warmup} warm-up calls\n")
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    pooled: dict[str, list[float]] = {"overhead": [], "handler": [], "direct": []}
    for name, dicts in cases():
        print(f"... {name}", file=sys.stderr)
        t = measure(dicts, args.runs, args.warmup, timer)
        for key in pooled:
            pooled[key].extend(t[key])
        share = 100 * statistics.median(t["overhead"]) / statistics.median(t["direct"])
        print(
            f"| {name} | {len(dicts)} | {median_us(t['direct']):,.0f} | "
            f"{median_us(t['invoke']):,.0f} | {median_us(t['overhead']):,.0f} | "
            f"{us(t['overhead'], 0.9):,.0f} | {share:.1f} | {median_us(t['handler']):,.0f} | "
            f"{us(t['handler'], 0.9):,.0f} |"
        )
    print(
        f"| **all calls** | | {median_us(pooled['direct']):,.0f} | | "
        f"**{median_us(pooled['overhead']):,.0f}** | {us(pooled['overhead'], 0.9):,.0f} | | "
        f"{median_us(pooled['handler']):,.0f} | {us(pooled['handler'], 0.9):,.0f} |"
    )


if __name__ == "__main__":
    main()

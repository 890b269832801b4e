"""Cost of compressing one large JSON tool output, in tiktoken encode passes and time.

    python tests/benchmarks/bench_large.py [--mb 1.0]

Takes the first records of tau-bench's retail orders table (SYNTHETIC, generated mock data,
../shared/data/db_tau_bench) until the pretty-printed JSON reaches the given size, sends it
as one tool result through ``headroom_core.compress`` and reports: characters handed to
tiktoken divided by the tool output's size (1.0 = one pass), wall time, tokens before/after.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DATA = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "db_tau_bench" / "retail__orders.json"
)


def build(mb: float) -> str:
    orders = json.loads(DATA.read_text("utf-8"))
    items = list(orders.values()) if isinstance(orders, dict) else list(orders)
    chosen: list[object] = []
    size = 0
    for item in items:
        chosen.append(item)
        size += len(json.dumps(item, indent=2))
        if size >= mb * 1_000_000:
            break
    return json.dumps(chosen, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1.0)
    args = parser.parse_args()
    if not DATA.exists():
        print(f"data not found: {DATA} (clone with ../shared beside the repo)")
        return
    from headroom_core import compress
    from headroom_core.tokens import Tokenizer

    text = build(args.mb)
    messages = [
        {"role": "user", "content": "Which orders are still pending for user mei_kovacs_8020?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "list_orders", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": text},
    ]
    compress([{"role": "user", "content": "warm up the tokenizer"}])
    encoded: list[int] = []
    original = Tokenizer.encode

    def spy(self: Tokenizer, s: str) -> list[int]:
        encoded.append(len(s))
        return original(self, s)

    Tokenizer.encode = spy  # type: ignore[method-assign]
    start = time.perf_counter()
    result = compress(messages)
    ms = (time.perf_counter() - start) * 1000
    Tokenizer.encode = original  # type: ignore[method-assign]
    ratio = sum(encoded) / len(text)
    print(
        "| tool output | encode passes (chars encoded / size) | ms | tokens before | tokens after | transforms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    print(
        f"| {len(text) / 1e6:.2f} MB JSON, SYNTHETIC tau-bench orders | {ratio:.2f} | {ms:.0f} | "
        f"{result.tokens_before:,} | {result.tokens_after:,} | {', '.join(result.transforms_applied)} |"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()

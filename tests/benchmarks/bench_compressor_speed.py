"""Wall time of the content compressors on large and pathological inputs.

Unit tests assert what the compressors produce; how long they take is measured here
(best of several runs, the tokenizer replaced by len/4 for the log inputs so the
compressor alone is timed).

    .venv/bin/python tests/benchmarks/bench_compressor_speed.py [--runs 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.core import test_log_compressor as logs  # noqa: E402
from tests.core import test_text_compressors as texts  # noqa: E402
from tests.core.test_log_compressor import LOG, PATHOLOGICAL, build_log  # noqa: E402


def best_ms(fn: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - start) * 1000)
    return best


def _log_ctx() -> object:
    return logs._ctx(min_tokens=0, count=logs._quick_count)


def rows(runs: int) -> list[tuple[str, str, float]]:
    out: list[tuple[str, str, float]] = []
    if texts.SHARED_DATA.exists():
        raw = texts.search_100_kb()
        out.append(
            (
                "search, 100 KB grep output",
                "compress",
                best_ms(lambda: texts.SEARCH.compress(raw, texts._ctx("session cookie")), runs),
            )
        )
        out.append(
            (
                "search, 100 KB grep output",
                "detect",
                best_ms(lambda: texts.SEARCH.detect(raw), runs),
            )
        )
        prose = texts.prose_100_kb()
        out.append(
            (
                "text, 100 KB prose",
                "compress",
                best_ms(
                    lambda: texts.TEXT.compress(prose, texts._ctx("who owns the delano hotel")),
                    runs,
                ),
            )
        )
        out.append(
            ("text, 100 KB prose", "detect", best_ms(lambda: texts.TEXT.detect(prose), runs))
        )
        for path in sorted((texts.SHARED_DATA / "logs_loghub").glob("*/*_2k.log")):
            text = path.read_text("utf-8")
            out.append(
                (
                    f"log, loghub {path.stem}",
                    "compress",
                    best_ms(lambda t=text: LOG.compress(t, _log_ctx()), runs),
                )
            )
    big = build_log(1_700_000)
    out.append(
        (
            "log, 1.7 MB build log",
            "compress",
            best_ms(lambda: LOG.compress(big, _log_ctx()), max(1, runs // 2)),
        )
    )
    for name, text in sorted(PATHOLOGICAL.items()):
        out.append(
            (
                f"log, pathological {name}",
                "detect + compress",
                best_ms(
                    lambda t=text: (LOG.detect(t), LOG.compress(t, _log_ctx())), max(1, runs // 2)
                ),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("| input | step | best ms |")
    print("|---|---|---:|")
    for name, step, ms in rows(args.runs):
        print(f"| {name} | {step} | {ms:.1f} |")


if __name__ == "__main__":
    main()

"""The lossy knobs of SmartCrusher, swept on real data: where each default comes from.

    python tests/benchmarks/bench_knobs.py [--limit N] [--markdown]

For each setting, ``headroom_core.compress(messages, model="gpt-4o", query=<question>,
config=...)`` runs over the ``json`` and ``tables`` families of bench_compress.py (same
cases, same retention checks) and one row reports: JSON median saving and query item kept,
tables median saving, answer cell kept, lossless share and the aggregate_or_compare
questions whose table was cut that keep every row the checker selects. Rows:

- ``lossless_below_tokens`` (a JSON output whose lossless form is under it is never cut):
  0, 500, 1000 (default), 2000, 4000, 1e9 (never cut);
- ``max_items_after_crush`` (items kept by a cut besides the question's rows): 10, 15
  (default), 25, at the default threshold.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from _baselines import _ours_decode  # noqa: E402
from _datasets import DATA_DIR, load_family  # noqa: E402
from _report import MODEL  # noqa: E402
from _retention import retention  # noqa: E402

from headroom_core import HeadroomConfig, SmartCrusherConfig, compress  # noqa: E402
from headroom_core.tokens import count_tokens_messages  # noqa: E402

SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("lossless_below_tokens=0", {"lossless_below_tokens": 0}),
    ("lossless_below_tokens=500", {"lossless_below_tokens": 500}),
    ("lossless_below_tokens=1000 (default)", {}),
    ("lossless_below_tokens=2000", {"lossless_below_tokens": 2000}),
    ("lossless_below_tokens=4000", {"lossless_below_tokens": 4000}),
    ("never cut (lossless only)", {"lossless_below_tokens": 10**9}),
    ("max_items_after_crush=10", {"max_items_after_crush": 10}),
    ("max_items_after_crush=25", {"max_items_after_crush": 25}),
)
HEADERS = (
    "setting",
    "json saving % median",
    "json query item %",
    "tables saving % median",
    "answer cell %",
    "tables lossless %",
    "agg. cut: rows kept",
)


def _run(cases: list[Any], overrides: dict[str, Any]) -> tuple[float, dict[str, tuple[int, int]]]:
    config = HeadroomConfig(smart_crusher=SmartCrusherConfig(**overrides))
    savings: list[float] = []
    kept: dict[str, tuple[int, int]] = {}
    for case in cases:
        # no window: the sweep measures compression, not fitting (a lossless 1 MB output
        # would not fit gpt-4o)
        result = compress(
            case.messages, model=MODEL, query=case.query, config=config, max_tokens=10**9
        )
        before = count_tokens_messages(case.messages, model=MODEL)
        savings.append(100.0 * (before - result.tokens_after) / before)
        decoded: dict[int, Any] = {}
        for i, (old, new) in enumerate(zip(case.messages, result.messages, strict=True)):
            text = new.get("content")
            if isinstance(text, str) and text != old.get("content"):
                try:
                    decoded[i] = _ours_decode(text)
                except ValueError:
                    continue
        for key, (k, t) in retention(case, result.messages, decoded).counts.items():
            a, b = kept.get(key, (0, 0))
            kept[key] = (a + k, b + t)
    return statistics.median(savings), kept


def _pct(count: tuple[int, int]) -> str:
    k, t = count
    return "n/a" if t == 0 else f"{100.0 * k / t:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="at most N cases per family")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    if not DATA_DIR.is_dir():
        print(f"benchmark data not found at {DATA_DIR}")
        return 0
    json_cases = load_family("json", DATA_DIR, args.limit)
    table_cases = load_family("tables", DATA_DIR, args.limit)
    rows = []
    for label, overrides in SETTINGS:
        json_median, json_kept = _run(json_cases, overrides)
        table_median, table_kept = _run(table_cases, overrides)
        agg = table_kept.get("agg_rows", (0, 0))
        rows.append(
            [
                label,
                f"{json_median:.1f}",
                _pct(json_kept.get("query", (0, 0))),
                f"{table_median:.1f}",
                _pct(table_kept.get("answer", (0, 0))),
                _pct(table_kept.get("lossless", (0, 0))),
                f"{agg[0]}/{agg[1]}",
            ]
        )
        print(f"  {label} done", file=sys.stderr)
    print(f"json: {len(json_cases)} cases, tables: {len(table_cases)} cases\n")
    if args.markdown:
        print("| " + " | ".join(HEADERS) + " |")
        print("| --- | " + " | ".join("---:" for _ in HEADERS[1:]) + " |")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(r[i])) for r in [list(HEADERS), *rows]) for i in range(len(HEADERS))]
        for row in [list(HEADERS), *rows]:
            print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

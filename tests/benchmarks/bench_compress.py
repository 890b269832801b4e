"""Compression benchmark: ratio, retention and time per method, per data family.

    python tests/benchmarks/bench_compress.py [--families json,logs,conversations]
        [--headroom-ai-python /tmp/hrai/bin/python] [--limit N] [--markdown]

Methods, side by side in one run: the request as given, compact JSON, TOON,
ours (``headroom_core.compress``) and, when its interpreter is given,
headroom-ai 0.42.0 (``compress`` and ``densify``) in a subprocess. All token
counts come from ``headroom_core.tokens.count_tokens_messages`` (gpt-4o).
Data is read from ``../shared/data`` beside the repository; see README.md here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: import headroom_core
    sys.path.insert(0, str(REPO_ROOT))

from _baselines import LocalMethod, Output, local_methods, ours_available  # noqa: E402
from _datasets import DATA_DIR, FAMILIES, Case, agent_request, load_family  # noqa: E402
from _headroom_ai import run_headroom_ai  # noqa: E402
from _report import family_report, measure, render_markdown, render_rich  # noqa: E402
from rich.console import Console  # noqa: E402

OURS = "ours (headroom_core)"
WARM_UP_CASE = Case(
    "warm-up",
    "warm-up",
    "warm-up",
    agent_request(
        "Which item is late?",
        "list_items",
        {},
        json.dumps([{"id": i, "status": "ok", "note": "x" * 20} for i in range(40)], indent=2),
    ),
    "Which item is late?",
)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    # argparse rather than click: this script must run in a bare venv with the data.
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated")
    parser.add_argument("--headroom-ai-python", default=None, metavar="PATH")
    parser.add_argument("--limit", type=int, default=None, help="at most N cases per family")
    parser.add_argument("--markdown", action="store_true", help="Markdown tables on stdout")
    args = parser.parse_args(argv)
    args.families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(args.families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    return args


def _methods(log: Console) -> tuple[list[LocalMethod], list[str]]:
    notes: list[str] = []
    methods = local_methods()
    missing = ours_available()
    if missing is not None:
        methods = [m for m in methods if m.name != OURS]
        notes.append(f"{OURS} skipped: `from headroom_core import compress` failed ({missing})")
    for method in methods:
        method.warm_up(WARM_UP_CASE)  # builds the tokenizer and imports lazily loaded code
    log.print(f"methods: {', '.join(m.name for m in methods)}")
    return methods, notes


def _run_family(
    family: str, cases: list[Case], methods: list[LocalMethod], hrai: str | None, log: Console
) -> tuple[dict[str, list[Output]], list[str]]:
    outputs: dict[str, list[Output]] = {}
    notes: list[str] = []
    for method in methods:
        start = time.perf_counter()
        outputs[method.name] = method.run(cases)
        log.print(f"  {family}: {method.name} done in {time.perf_counter() - start:.1f}s")
    if hrai is None:
        notes.append("headroom-ai skipped: pass --headroom-ai-python PATH (see README.md)")
        return outputs, notes
    start = time.perf_counter()
    run = run_headroom_ai(hrai, cases)
    log.print(f"  {family}: headroom-ai done in {time.perf_counter() - start:.1f}s")
    if run.error:
        notes.append(f"headroom-ai failed: {run.error}")
        return outputs, notes
    outputs.update(run.outputs)
    version = run.meta.get("version", "?")
    notes.append(f"headroom-ai {version}, timed inside its own process after a warm-up call")
    for warning in run.meta.get("warm_up_warnings", []):
        notes.append(f"headroom-ai warm-up warning: {warning}")
    for name, per_case in run.warnings.items():
        warned = [w for w in per_case if w]
        if warned:
            notes.append(f"{name} logged warnings on {len(warned)} case(s), e.g. {warned[0][:200]}")
    return outputs, notes


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    log = Console(stderr=True)
    if not DATA_DIR.is_dir():
        print(f"benchmark data not found at {DATA_DIR}; nothing to measure (see README.md)")
        return 0
    methods, method_notes = _methods(log)
    out = Console(width=max(Console().width, 180))  # wide tables stay readable in a pipe
    if args.markdown:
        print(
            "Tokens: headroom_core.tokens.count_tokens_messages (gpt-4o, o200k_base), "
            "whole request.\n"
        )
    for family in args.families:
        cases = load_family(family, DATA_DIR, args.limit)
        if not cases:
            log.print(f"{family}: no cases found under {DATA_DIR}")
            continue
        log.print(f"{family}: {len(cases)} cases")
        outputs, notes = _run_family(family, cases, methods, args.headroom_ai_python, log)
        case_notes = [n for c in cases for n in c.notes]
        stats = [measure(name, cases, outs) for name, outs in outputs.items()]
        report = family_report(family, cases, stats, method_notes + notes + case_notes)
        if args.markdown:
            print(render_markdown(report))
        else:
            render_rich(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One oversize tool output cut to fit gpt-4o's window: fit_text on multi-MB logs.

    python tests/benchmarks/bench_fit.py [--repeats 3] [--markdown]

``headroom_core.transforms.fit_text(text, budget, count=...)`` is the primitive a context
fitter calls when a single tool output is larger than the window. The budget here is what
one output may use in a gpt-4o request: 128,000 - 4,000 (reply buffer) - the rest of the
request (system prompt, question, tool call). Outputs, built from the real captures in
tests/data/build_logs and real text:

- ``colour pytest x70``: the pytest capture (pseudo-terminal, colour, CR redraws), run 70
  times with renumbered test ids (~3.4 MB);
- ``colour maven -X x40``: the Maven debug capture 40 times (~3 MB);
- ``unique lines``: the source of ten standard-library modules, three times, one numbered
  log line each, with an ``ERROR: worker N failed`` line every 5,000 lines (~4.5 MB):
  template grouping cannot shrink it.

Columns: tokens before (exact), the budget, tokens after (exact), fits, error lines kept
(lines a terminal shows that match ``^E {2,}|FAILED|^ERROR|BUILD FAILURE|^\\[ERROR\\]``),
CPU seconds (``time.process_time``, the slowest of the repeats, the first included: the
token counter memoises long texts, so later repeats are cheaper; the box is shared, so wall
time is shown too) and what cut it. And ``compress()`` on the whole request (run first, so
its token counts are not memoised yet): does it fit (no BudgetError), with how many error
lines in what it sends, in what CPU and wall time?
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from _datasets import BUILD_LOG_DIR, agent_request  # noqa: E402

from headroom_core import compress  # noqa: E402
from headroom_core.errors import BudgetError  # noqa: E402
from headroom_core.tokens import count_tokens_messages, get_tokenizer  # noqa: E402
from headroom_core.transforms import fit_text  # noqa: E402
from headroom_core.transforms._terminal import normalise  # noqa: E402

WINDOW = 128_000
REPLY_BUFFER = 4_000
ERROR = re.compile(r"^E {2,}|FAILED|^ERROR|BUILD FAILURE|^\[ERROR\]")
QUESTION = "The run failed. Which errors does the log report?"


def _read(name: str) -> str:
    with (BUILD_LOG_DIR / name).open(encoding="utf-8", newline="") as fh:
        return fh.read()


def colour_pytest() -> str:
    raw = _read("pytest_tty.log")
    return "".join(
        raw.replace("test_total_of_n_items[", f"test_total_of_n_items_run{k}[") for k in range(70)
    )


def colour_maven() -> str:
    return _read("maven_debug.log") * 40


def unique_lines() -> str:
    import argparse as m1
    import dataclasses as m2
    import decimal as m3
    import difflib as m4
    import email.message as m5
    import logging as m6
    import pathlib as m7
    import tarfile as m8
    import typing as m9
    import zipfile as m10

    source = "\n".join(inspect.getsource(m) for m in (m1, m2, m3, m4, m5, m6, m7, m8, m9, m10))
    lines = []
    for i, line in enumerate(source.splitlines() * 3):
        lines.append(f"step {i}: {line}")
        if i % 5000 == 0:
            lines.append(f"ERROR: worker {i} failed: connection reset by peer")
    return "\n".join(lines)


OUTPUTS = {
    "colour pytest x70": colour_pytest,
    "colour maven -X x40": colour_maven,
    "unique lines": unique_lines,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    tok = get_tokenizer("gpt-4o")
    tok.count_text("warm up")
    headers = (
        "output", "MB", "tokens before", "budget", "tokens after", "fits",
        "error lines kept", "CPU s", "wall s", "cut by", "compress() on the request",
        "compress() CPU / wall s",
    )  # fmt: skip
    rows = []
    for name, build in OUTPUTS.items():
        text = build()
        messages = agent_request(QUESTION, "run_build", {}, text)
        rest = count_tokens_messages(messages[:-1], model="gpt-4o") + 10
        budget = WINDOW - REPLY_BUFFER - rest
        errors = [line for line in normalise(text).splitlines() if ERROR.search(line)]
        # compress() on the whole request first, while this text is new to the token memo
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            result = compress(messages, model="gpt-4o")
            sent = set(str(result.messages[-1]["content"]).splitlines())
            today = f"fits, {sum(1 for e in errors if e in sent)}/{len(errors)} errors"
        except BudgetError:
            today = "BudgetError"
        whole = (time.process_time() - c0, time.perf_counter() - w0)
        cpu, wall = [], []
        routed = None
        for _ in range(args.repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            routed = fit_text(text, budget, count=tok.count_text, query=QUESTION)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        assert routed is not None
        kept = set(routed.text.splitlines())
        rows.append(
            [
                name,
                f"{len(text) / 1e6:.1f}",
                f"{tok.count_text(text):,}",
                f"{budget:,}",
                f"{tok.count_text(routed.text):,}",
                "yes" if routed.fits else "NO",
                f"{sum(1 for e in errors if e in kept)}/{len(errors)}",
                f"{max(cpu):.2f}",
                f"{max(wall):.2f}",
                routed.compressor,
                today,
                f"{whole[0]:.2f} / {whole[1]:.2f}",
            ]
        )
        print(f"  {name} done", file=sys.stderr)
    if args.markdown:
        print("| " + " | ".join(headers) + " |")
        print("| --- | " + " | ".join("---:" for _ in headers[1:]) + " |")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        for row in [list(headers), *rows]:
            print("  ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())

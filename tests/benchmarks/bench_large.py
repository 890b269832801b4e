"""Time and peak memory of ``compress()`` on one very large tool output, by size and kind.

    .venv/bin/python tests/benchmarks/bench_large.py [--sizes 5,10,20,50] [--kinds ...]
        [--question "What is the total amount?"]

Each case runs in a fresh interpreter that reads its input from a file another one wrote (so
its peak RSS is the interpreter, the input text and ``compress()``): one agent request whose
last tool result is, at 5 / 10 / 20 / 50 MB,

- ``json-string``: a JSON object holding one huge string (words, no line breaks);
- ``records``: a pretty-printed JSON array of records (id, name, status, amount, tags);
- ``log``: application log lines, one ERROR every 997 lines;
- ``prose``: sentences of words, no line breaks.

The inputs are generated (seeded, deterministic): the point is size and shape, not content.
The user's message is ``--question`` ("Summarise what this tool returned." by default, which
names nothing in the data); a question that names columns or values ("which id failed?",
"What is the total amount?") makes the record array's row conditions and relevance scoring
look at every row, and an aggregate one keeps every row until the context window's fit.
Printed per case: wall time of ``compress()`` alone (input built before the timer; the
first call builds the tokenizer, about 0.5 s of it), seconds per MB, peak RSS of that
process, tokens before and after, and the transforms that ran. Linear means seconds per MB
stays flat as the size grows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

WORKER = r"""
import json, random, resource, sys, time
from headroom_core import compress

mb, kind, phase, path, question = (
    float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
target = int(mb * 1_000_000)
rnd = random.Random(0)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def build():
    if kind == "json-string":
        parts, size = [], 0
        while size < target:
            word = rnd.choice(words)
            parts.append(word)
            size += len(word) + 1
        return json.dumps({"id": "doc-1", "body": " ".join(parts)})
    if kind == "records":
        rows, size, i = [], 0, 0
        while size < target:
            row = {"id": i, "name": f"user {i}", "status": rnd.choice(["ok", "late", "pending"]),
                   "amount": round(rnd.random() * 100, 2), "tags": rnd.sample(words, 3)}
            rows.append(row)
            size += len(json.dumps([row], indent=2)) - 2  # as it sits in the array, with ",\n"
            i += 1
        return json.dumps(rows, indent=2)
    if kind == "log":
        lines, size, i = [], 0, 0
        while size < target:
            if i % 997:
                line = (f"2026-11-05 10:{i % 60:02d}:{i * 7 % 60:02d} INFO worker-{i % 17} "
                        f"processed request {i} in {rnd.randint(1, 900)} ms")
            else:
                line = f"2026-11-05 10:00:00 ERROR worker-3 request {i} failed: upstream timeout"
            lines.append(line)
            size += len(line) + 1
            i += 1
        return "\n".join(lines)
    sentences, size = [], 0
    while size < target:
        sentence = " ".join(rnd.choice(words) for _ in range(12)).capitalize()
        sentences.append(sentence)
        size += len(sentence) + 2
    return ". ".join(sentences) + "."


if phase == "build":  # its own process: building the input costs memory compress() does not
    with open(path, "w", encoding="utf-8") as f:
        f.write(build())
    sys.exit(0)
with open(path, encoding="utf-8") as f:
    text = f.read()
messages = [
    {"role": "user", "content": question},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "fetch", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": text},
]
start = time.perf_counter()
try:
    result = compress(messages, model="gpt-4o")
    outcome = [result.tokens_before, result.tokens_after, list(result.transforms_applied)]
except Exception as exc:
    outcome = [None, None, [f"{type(exc).__name__}: {str(exc)[:120]}"]]
seconds = time.perf_counter() - start
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"mb": len(text) / 1e6, "seconds": seconds, "rss_mb": rss_mb,
                  "outcome": outcome}))
"""


def run(mb: float, kind: str, question: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "input.txt")
        for phase in ("build", "run"):
            out = subprocess.run(
                [sys.executable, "-c", WORKER, str(mb), kind, phase, path, question],
                capture_output=True,
                text=True,
                env=env,
                timeout=1800,
                check=True,
            )
    row: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,10,20,50", help="MB, comma-separated")
    parser.add_argument("--kinds", default="json-string,records,log,prose")
    parser.add_argument("--question", default="Summarise what this tool returned.")
    args = parser.parse_args()
    print("| kind | MB | seconds | s / MB | peak RSS MB | tokens before -> after | transforms |")
    print("|---|---:|---:|---:|---:|---|---|")
    for kind in args.kinds.split(","):
        for mb in (float(x) for x in args.sizes.split(",")):
            row = run(mb, kind, args.question)
            before, after, transforms = row["outcome"]  # type: ignore[misc]
            size = float(row["mb"])  # type: ignore[arg-type]
            secs = float(row["seconds"])  # type: ignore[arg-type]
            tokens = f"{before:,} -> {after:,}" if before is not None else "-"
            print(
                f"| {kind} | {size:.1f} | {secs:.1f} | {secs / size:.2f} | "
                f"{float(row['rss_mb']):.0f} | {tokens} | {', '.join(transforms)} |",  # type: ignore[arg-type]
                flush=True,
            )


if __name__ == "__main__":
    main()

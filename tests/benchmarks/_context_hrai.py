"""headroom-ai's ``compress()`` over many requests, each with its own keyword arguments.

Reuses the runner of ``bench_compress.py`` (``_headroom_ai_runner.py``, in headroom-ai's own
venv, offline, with the tiktoken rank files prepared by ``_headroom_ai``) and its per-case
``kwargs``: ``bench_context.py`` passes ``model_limit`` (the budget, the nearest thing
headroom-ai 0.42.0 has to one) and, for the replay variant, ``frozen_message_count``.
All requests go through ONE process, in order, as a library user's agent loop would call it.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _context_methods import Messages, Outcome
from _headroom_ai import RUNNER, TIMEOUT_S, _env, _fill_tiktoken_cache


@dataclass(frozen=True, slots=True)
class Call:
    """One request for headroom-ai: the messages and the keyword arguments of the call."""

    messages: Messages
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class HeadroomAICalls:
    outcomes: list[Outcome] = field(default_factory=list)
    version: str = "?"
    warnings: list[str] = field(default_factory=list)  # distinct warnings it logged
    error: str | None = None  # the runner itself failed: no outcomes


def run_calls(python: str, calls: Sequence[Call]) -> HeadroomAICalls:
    """``headroom.compress(messages, model="gpt-4o", **kwargs)`` for every call, in order."""
    run = HeadroomAICalls()
    payload = "".join(
        json.dumps({"id": i, "messages": c.messages, "kwargs": c.kwargs}, ensure_ascii=False) + "\n"
        for i, c in enumerate(calls)
    )
    with tempfile.TemporaryDirectory(prefix="hrai-context-") as tmp:
        cache_dir = Path(tmp)
        _fill_tiktoken_cache(cache_dir)
        try:
            proc = subprocess.run(
                [python, str(RUNNER), "--modes", "compress"],
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
    rows: dict[int, dict[str, Any]] = {}
    warnings: set[str] = set()
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if "meta" in row:
            run.version = str(row["meta"].get("version", "?"))
            warnings.update(row["meta"].get("warm_up_warnings") or [])
        else:
            rows[row["id"]] = row
            warnings.update(row.get("warnings") or [])
    for i, _call in enumerate(calls):
        row = rows.get(i)
        if row is None:
            run.outcomes.append(Outcome(None, 0.0, error="no result from runner"))
        elif row.get("error"):
            run.outcomes.append(Outcome(None, float(row["ms"]), error=str(row["error"])))
        else:
            run.outcomes.append(Outcome(row["messages"], float(row["ms"])))
    run.warnings = sorted(warnings)
    return run

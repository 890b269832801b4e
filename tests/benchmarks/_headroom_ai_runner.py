"""Run headroom-ai (the public prior art) over benchmark cases, in its own venv.

Executed by ``bench_compress.py`` as a subprocess with the interpreter given by
``--headroom-ai-python`` (e.g. ``/tmp/hrai/bin/python``); it imports only the
standard library and ``headroom``. Protocol:

* stdin: JSON lines ``{"id": <int>, "messages": [...]}`` (OpenAI chat format), each
  optionally with ``"kwargs": {...}``: keyword arguments for that call, limited to
  ``CALL_KWARGS`` (``bench_context.py`` passes ``model_limit`` and
  ``frozen_message_count``; without them the entry point's defaults apply).
* argv: ``--modes compress,densify`` (which public entry points to run).
* stdout: first a ``{"meta": {...}}`` line, then one JSON line per case and mode:
  ``{"id", "mode", "messages", "ms", "decoded", "transforms", "warnings", "error"}``.

``ms`` is measured here with ``time.perf_counter`` around the ``compress`` call
alone, after a warm-up call on a separate small request, so process start-up and
first-use initialisation are not counted. ``decoded`` maps a changed message's
index to the JSON that headroom's own decoder (``expand_compacted``, the inverse
of its densified ``[N]{schema}`` rows, applied to the whole text or to each
densified string inside it) recovers from it, for the lossless check.

Offline: telemetry, beacon, update check and model downloads are switched off
through headroom's own environment switches before it is imported. tiktoken's
rank files come from ``TIKTOKEN_CACHE_DIR``, prepared by the caller.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import time
from typing import Any

OFFLINE_ENV = {
    "HEADROOM_OFFLINE": "1",  # headroom's air-gap switch: no egress of its own
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HEADROOM_TELEMETRY": "off",
    "HEADROOM_BEACON": "off",
    "DO_NOT_TRACK": "1",
    "HEADROOM_UPDATE_CHECK": "off",
    "HEADROOM_TOIN_BACKEND": "none",  # its learning store stays in memory
    "HEADROOM_STATELESS": "1",  # nothing written to the workspace
}

# Keyword arguments a case may pass to compress()/densify(); anything else is an error.
CALL_KWARGS = frozenset({"model_limit", "frozen_message_count"})

WARM_UP: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Which item is late?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "w1", "type": "function", "function": {"name": "list", "arguments": "{}"}}
        ],
    },
    {
        "role": "tool",
        "tool_call_id": "w1",
        "content": json.dumps(
            [{"id": i, "status": "late" if i == 7 else "ok", "note": "x" * 20} for i in range(40)],
            indent=2,
        ),
    },
]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}"[:300])


def _expand(node: Any) -> Any:
    """Replace every densified string inside parsed JSON by the rows it encodes."""
    from headroom.transforms.compaction_codec import expand_compacted, is_compacted

    if isinstance(node, str) and is_compacted(node):
        rows = expand_compacted(node)  # None when a removal marker makes it irreversible
        return node if rows is None else rows
    if isinstance(node, list):
        return [_expand(v) for v in node]
    if isinstance(node, dict):
        return {k: _expand(v) for k, v in node.items()}
    return node


def _decode(text: str) -> Any:
    """The JSON that headroom's own codec recovers from a tool text, or None."""
    from headroom.transforms.compaction_codec import expand_compacted, is_compacted

    if is_compacted(text):  # the whole text is one densified array
        return expand_compacted(text)
    try:
        value = json.loads(text)  # densified arrays nested as JSON strings
    except (ValueError, RecursionError):
        return None
    return _expand(value)


def _decoded(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if len(before) != len(after):
        return out
    for i, (old, new) in enumerate(zip(before, after, strict=True)):
        text = new.get("content")
        if isinstance(text, str) and text != old.get("content"):
            value = _decode(text)
            if value is not None:
                out[str(i)] = value
    return out


def _run(
    mode: str,
    messages: list[dict[str, Any]],
    log: _Collect,
    kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from headroom import compress, densify

    entry = densify if mode == "densify" else compress
    unknown = sorted(set(kwargs or {}) - CALL_KWARGS)
    if unknown:
        return {"messages": messages, "ms": 0.0, "error": f"unsupported kwargs {unknown}"}
    work = copy.deepcopy(messages)
    del log.records[:]
    start = time.perf_counter()
    try:
        result = entry(work, model="gpt-4o", **(kwargs or {}))
    except Exception as exc:  # report the failure; the caller counts it
        ms = (time.perf_counter() - start) * 1000
        return {"messages": messages, "ms": ms, "error": f"{type(exc).__name__}: {exc}"}
    ms = (time.perf_counter() - start) * 1000
    out = [dict(m) for m in result.messages]
    return {
        "messages": out,
        "ms": ms,
        "decoded": _decoded(messages, out),
        "transforms": list(result.transforms_applied),
        "warnings": list(log.records),
        "error": None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="compress,densify")
    modes = [m for m in parser.parse_args().modes.split(",") if m]
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    sink = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr  # anything headroom prints must not corrupt the protocol
    log = _Collect()
    logging.getLogger().addHandler(log)
    logging.getLogger().setLevel(logging.WARNING)

    import headroom

    cases = [json.loads(line) for line in sys.stdin if line.strip()]
    warm = {mode: _run(mode, WARM_UP, log) for mode in modes}
    meta = {
        "version": getattr(headroom, "__version__", "?"),
        "modes": modes,
        "warm_up_warnings": sorted({w for r in warm.values() for w in r.get("warnings", [])}),
    }
    sink.write(json.dumps({"meta": meta}) + "\n")
    for mode in modes:
        for case in cases:
            row = _run(mode, case["messages"], log, case.get("kwargs"))
            row.update(id=case["id"], mode=mode)
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
    sink.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Call provider-client wrappers against a local API server, in one fixed order; time and record.

Two uses, one measuring loop (:func:`drive`), so both sides are measured the same way:

* ``bench_client.py`` imports this module in our venv and drives the raw ``openai.OpenAI``
  client and our ``HeadroomClient`` (optimize, audit) in its own process;
* headroom-ai's interpreter (``--headroom-ai-python``) executes it as a script: it drives a
  raw ``openai.OpenAI`` client and headroom-ai 0.42.0's ``HeadroomClient`` (optimize,
  audit), connected to the server that ``bench_client.py`` runs. Protocol: stdin is one
  JSON object ``{"base_url", "repeats", "store_dir", "requests": [{"id", "messages"}]}``;
  stdout is a ``{"meta": {...}}`` line, then one JSON line per call (:func:`drive`'s rows).

Module level imports the standard library only; ``openai``, ``httpx`` and ``headroom`` are
imported inside the functions that need them (each interpreter has its own).

Every call carries an ``x-bench-call: <method>|<request id>|<pass>`` header so the server's
log can be matched to it, and passes ``stream`` explicitly (``False`` or ``True``): headroom-ai
always forwards ``stream=`` to the SDK, which then writes it into the body, so the raw client
does the same for a like-for-like body. An ``httpx`` request hook on the SDK's HTTP client
keeps the SHA-256 of each request body as it went on the wire (the audit byte check).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MODEL = "gpt-4o"
TAG_HEADER = "x-bench-call"


@dataclass(frozen=True, slots=True)
class Target:
    """One method: its ``chat.completions.create`` and how to read its records (None: none)."""

    name: str
    create: Callable[..., Any]
    records: Callable[[], list[dict[str, Any]]] | None = None  # newest first


def passes(repeats: int) -> list[str]:
    """A warm-up pass, ``repeats`` timed passes, one streaming pass."""
    return ["warm", *(f"r{i}" for i in range(repeats)), "stream"]


def tag(method: str, request_id: int | str, pass_name: str) -> str:
    return f"{method}|{request_id}|{pass_name}"


def openai_client(base_url: str, wire: dict[str, str]) -> Any:
    """A raw ``openai.OpenAI`` whose HTTP client notes each tagged request body's SHA-256."""
    import openai

    def note(request: Any) -> None:
        label = request.headers.get(TAG_HEADER)
        if label:
            wire[label] = hashlib.sha256(request.read()).hexdigest()

    http = openai.DefaultHttpxClient(event_hooks={"request": [note]})
    return openai.OpenAI(api_key="test", base_url=base_url, max_retries=0, http_client=http)


def _call(target: Target, messages: list[dict[str, Any]], label: str, stream: bool) -> dict:
    work = copy.deepcopy(messages)  # outside the timer; a wrapper that mutates is caught below
    kwargs: dict[str, Any] = {"extra_headers": {TAG_HEADER: label}}
    if stream:
        kwargs["stream_options"] = {"include_usage": True}
    text: str | None = None
    error: str | None = None
    start = time.perf_counter()
    try:
        response = target.create(model=MODEL, messages=work, stream=stream, **kwargs)
        if stream:
            text = "".join(
                chunk.choices[0].delta.content or "" for chunk in response if chunk.choices
            )
        else:
            text = response.choices[0].message.content
    except Exception as exc:  # a benchmark counts failures, it does not stop on them
        error = f"{type(exc).__name__}: {exc}"[:500]
    ms = (time.perf_counter() - start) * 1000
    return {"ms": ms, "text": text, "error": error, "mutated": work != messages}


def drive(
    targets: Sequence[Target],
    requests: Sequence[tuple[int, list[dict[str, Any]]]],
    repeats: int,
    wire: dict[str, str],
    on_pass: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Every pass, every request, every target in order (raw first): one row per call.

    A row: ``method, id, pass, stream, ms, text, error, mutated`` (the caller's messages
    were changed in place), ``records_added`` (None: the target keeps no records),
    ``record`` (the newest record when exactly one was added) and ``body_sha256``.
    Records are read outside the timed window.
    """
    rows: list[dict[str, Any]] = []
    for pass_name in passes(repeats):
        stream = pass_name == "stream"
        for request_id, messages in requests:
            for target in targets:
                label = tag(target.name, request_id, pass_name)
                before = target.records() if target.records else None
                row = _call(target, messages, label, stream)
                after = target.records() if target.records else None
                added = None if before is None or after is None else len(after) - len(before)
                row.update(
                    method=target.name,
                    id=request_id,
                    stream=stream,
                    records_added=added,
                    record=after[0] if added == 1 and after else None,
                    body_sha256=wire.get(label),
                    pass_name=pass_name,
                )
                rows.append(row)
        if on_pass is not None:
            on_pass(pass_name)
    return rows


# -- headroom-ai's side (executed by its interpreter) --------------------------------------


def _hrai_records(client: Any) -> Callable[[], list[dict[str, Any]]]:
    def read() -> list[dict[str, Any]]:
        return [
            {
                "before": m.tokens_input_before,
                "after": m.tokens_input_after,
                "output": m.tokens_output,
                "projected": None,  # its audit record has no projection (after == before)
                "error": m.error,
            }
            for m in client.get_metrics(limit=1_000_000)
        ]

    return read


def main() -> int:
    from _headroom_ai_runner import OFFLINE_ENV, _Collect  # same directory as this script

    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    sink = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr  # anything headroom prints must not corrupt the protocol
    log = _Collect()
    logging.getLogger().addHandler(log)
    logging.getLogger().setLevel(logging.WARNING)

    import headroom
    from headroom import HeadroomClient, OpenAIProvider

    job = json.loads(sys.stdin.read())
    wire: dict[str, str] = {}
    raw = openai_client(job["base_url"], wire)
    targets = [Target("raw (headroom-ai venv)", raw.chat.completions.create)]
    for mode in ("optimize", "audit"):
        client = HeadroomClient(
            original_client=raw,
            provider=OpenAIProvider(),
            default_mode=mode,
            store_url=f"sqlite:///{job['store_dir']}/hrai-{mode}.db",
        )
        targets.append(
            Target(f"headroom-ai {mode}", client.chat.completions.create, _hrai_records(client))
        )
    requests = [(r["id"], r["messages"]) for r in job["requests"]]
    rows = drive(targets, requests, int(job["repeats"]), wire)
    meta = {
        "version": getattr(headroom, "__version__", "?"),
        "openai": __import__("openai").__version__,
        "warnings": sorted(set(log.records))[:20],
        "warning_count": len(log.records),
    }
    sink.write(json.dumps({"meta": meta}) + "\n")
    for row in rows:
        sink.write(json.dumps(row, ensure_ascii=False) + "\n")
    sink.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

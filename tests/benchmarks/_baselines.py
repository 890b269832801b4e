"""The methods compared, each run over a list of cases.

A method turns each case's request into the request it would send, and says
how long that took. Local methods are timed in-process with
``time.perf_counter`` around the work alone (input copies and decoding for the
lossless check are outside the timer).

* ``none``: the request as given (e.g. pretty-printed JSON as the file holds it).
* ``compact JSON``: every JSON tool output re-serialised with
  ``json.dumps(separators=(",", ":"), ensure_ascii=False)``; other text unchanged.
* ``TOON``: every JSON tool output encoded with python-toon's ``toon.encode``;
  other text unchanged. Lossless check decodes with ``toon.decode``.
* ``ours``: :func:`headroom_core.compress`, through :func:`compress_ours`.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from _datasets import Case

Messages = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Output:
    """One method's result for one case."""

    messages: Messages
    ms: float
    # message index -> JSON value decoded by the method's own documented decoder
    decoded: dict[int, Any] = field(default_factory=dict)
    error: str | None = None


class Method(Protocol):
    name: str

    def run(self, cases: Sequence[Case]) -> list[Output]: ...


def _parse_container(text: str) -> Any:
    """The parsed JSON object/array in ``text``, or None when it is not one."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return None


def _rewrite_tool_json(messages: Messages, encode: Callable[[Any], str]) -> Messages:
    out: Messages = []
    for message in messages:
        content = message.get("content")
        if message.get("role") == "tool" and isinstance(content, str):
            value = _parse_container(content)
            if value is not None:
                message = {**message, "content": encode(value)}
        out.append(message)
    return out


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class LocalMethod:
    """A per-request function, timed in-process on a private copy of each case."""

    def __init__(
        self,
        name: str,
        func: Callable[[Case, Messages], Messages],
        decode: Callable[[str], Any] | None = None,
    ) -> None:
        self.name = name
        self._func = func
        self._decode = decode

    def warm_up(self, case: Case) -> None:
        self._func(case, copy.deepcopy(case.messages))

    def run(self, cases: Sequence[Case]) -> list[Output]:
        return [self._run_one(case) for case in cases]

    def _run_one(self, case: Case) -> Output:
        messages = copy.deepcopy(case.messages)  # a method that mutates must not leak
        start = time.perf_counter()
        try:
            result = self._func(case, messages)
        except Exception as exc:  # a benchmark reports failures, it does not stop on them
            ms = (time.perf_counter() - start) * 1000
            return Output(case.messages, ms, error=f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - start) * 1000
        return Output(result, ms, self._decoded(case.messages, result))

    def _decoded(self, before: Messages, after: Messages) -> dict[int, Any]:
        if self._decode is None or len(before) != len(after):
            return {}
        decoded: dict[int, Any] = {}
        for i, (old, new) in enumerate(zip(before, after, strict=True)):
            text = new.get("content")
            if isinstance(text, str) and text != old.get("content"):
                try:
                    decoded[i] = self._decode(text)
                except Exception:  # undecodable output simply is not lossless
                    continue
        return decoded


def _none(_case: Case, messages: Messages) -> Messages:
    return messages


def _compact_json(_case: Case, messages: Messages) -> Messages:
    return _rewrite_tool_json(messages, _compact)


def _toon(_case: Case, messages: Messages) -> Messages:
    import toon

    return _rewrite_tool_json(messages, toon.encode)


def _ours_decode(text: str) -> Any:
    """Our documented decoder for the lossless forms (lossy markers stay in place)."""
    from headroom_core.transforms.json_codec import decode

    return decode(json.loads(text))


def _toon_decode(text: str) -> Any:
    import toon

    return toon.decode(text)


def compress_ours(case: Case, messages: Messages) -> Messages:
    """The adapter for our engine: the only place the benchmark calls headroom_core.compress."""
    from headroom_core import compress

    result = compress(messages, model="gpt-4o", query=case.query)
    return [dict(m) for m in result.messages]


def ours_available() -> str | None:
    """None when ``from headroom_core import compress`` works, else why not."""
    try:
        from headroom_core import compress  # noqa: F401
    except Exception as exc:  # any import-time failure in a package under construction
        return f"{type(exc).__name__}: {exc}"
    return None


def local_methods() -> list[LocalMethod]:
    return [
        LocalMethod("none", _none),
        LocalMethod("compact JSON", _compact_json),
        LocalMethod("TOON", _toon, _toon_decode),
        LocalMethod("ours (headroom_core)", compress_ours, _ours_decode),
    ]

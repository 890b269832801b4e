"""Provider usage as :class:`~headroom_integrations._client_core.Usage`, read from SDK objects
or from the JSON the APIs send (a dict), alike: the client and the server share these."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ._client_core import Usage


def field(obj: Any, name: str) -> Any:
    """``obj[name]`` for JSON, ``obj.name`` for an SDK object; None when missing."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def as_int(value: Any) -> int | None:
    """An int usage field, or None (bool, missing or odd values)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def openai_usage(response: Any) -> Usage | None:
    """Usage of a ChatCompletion or of a stream chunk (the last one, with include_usage)."""
    u = field(response, "usage")
    if u is None:
        return None
    details = field(u, "prompt_tokens_details")
    return Usage(
        input_tokens=as_int(field(u, "prompt_tokens")),
        output_tokens=as_int(field(u, "completion_tokens")),
        cached_tokens=as_int(field(details, "cached_tokens")) if details is not None else None,
    )


def openai_fold(seen: Usage, chunk: Any) -> Usage:
    return openai_usage(chunk) or seen


def anthropic_usage(message: Any) -> Usage | None:
    """Usage of a Message (or of a stream's final snapshot). Input = uncached + cache reads
    + cache writes, as the API bills it."""
    u = field(message, "usage")
    if u is None:
        return None
    parts = [
        as_int(field(u, k))
        for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    ]
    known = [p for p in parts if p is not None]
    return Usage(
        input_tokens=sum(known) if known else None,
        output_tokens=as_int(field(u, "output_tokens")),
        cached_tokens=parts[1],
    )


def anthropic_fold(seen: Usage, event: Any) -> Usage:
    """message_start carries the input usage; each message_delta the output so far."""
    kind = field(event, "type")
    if kind == "message_start":
        return anthropic_usage(field(event, "message")) or seen
    if kind == "message_delta":
        u = field(event, "usage")
        output = as_int(field(u, "output_tokens")) if u is not None else None
        return dataclasses.replace(seen, output_tokens=output) if output is not None else seen
    return seen


def add(a: Usage, b: Usage | None) -> Usage:
    """Two calls' usage summed (a field unknown in both stays None)."""
    if b is None:
        return a

    def plus(x: int | None, y: int | None) -> int | None:
        return None if x is None and y is None else (x or 0) + (y or 0)

    return Usage(
        plus(a.input_tokens, b.input_tokens),
        plus(a.output_tokens, b.output_tokens),
        plus(a.cached_tokens, b.cached_tokens),
    )

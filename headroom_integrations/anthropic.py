"""The Anthropic surface of ``HeadroomClient``: ``client.messages``.

``create`` (``stream=True`` included) and ``stream`` compress ``system`` + ``messages`` per
the call's mode (through the neutral format and back, with tool_use/tool_result blocks kept
paired), strip the ``headroom_*`` parameters and forward everything else untouched; a
request that needs no change is forwarded as the caller built it, byte for byte.
``simulate`` returns a :class:`~headroom_core.pipeline.SimulationResult` whose ``messages``
are what would be sent, in the Messages API form (``request`` has ``system`` too). Every
other attribute (``count_tokens``, ``batches``, ``with_raw_response``, ...) is the SDK's own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from headroom_core.boundary import fail_open
from headroom_core.errors import ConfigError, InputError
from headroom_core.messages import from_anthropic, to_anthropic
from headroom_core.pipeline import SimulationResult

from ._calls import as_int, managed, request_body, send_async, send_sync
from ._client_core import (
    Plan,
    SurfaceOwner,
    Usage,
    plain,
    pop_options,
    readable_messages,
)

logger = logging.getLogger("headroom_integrations")
_UNREAD = "the request goes out unchanged, unrecorded"
_UNCHANGED = "the request goes out unchanged"


def _usage(message: Any) -> Usage | None:
    """Usage of a Message (or of a stream's final snapshot). Input = uncached + cache reads
    + cache writes, as the API bills it."""
    u = getattr(message, "usage", None)
    if u is None:
        return None
    parts = [
        as_int(getattr(u, k, None))
        for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    ]
    known = [p for p in parts if p is not None]
    return Usage(
        input_tokens=sum(known) if known else None,
        output_tokens=as_int(getattr(u, "output_tokens", None)),
        cached_tokens=parts[1],
    )


def _fold(seen: Usage, event: Any) -> Usage:
    """message_start carries the input usage; each message_delta the output so far."""
    kind = getattr(event, "type", None)
    if kind == "message_start":
        return _usage(getattr(event, "message", None)) or seen
    if kind == "message_delta":
        u = getattr(event, "usage", None)
        output = as_int(getattr(u, "output_tokens", None))
        return dataclasses.replace(seen, output_tokens=output) if output is not None else seen
    return seen


def _final(stream: Any) -> Usage | None:
    return _usage(stream.current_message_snapshot)


def _request(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The part of the call we read: ``messages`` and ``system`` (when it is given)."""
    messages = kwargs.get("messages")
    if not readable_messages(messages):
        return None
    if not isinstance(messages, list):
        try:
            messages = kwargs["messages"] = list(messages)  # type: ignore[arg-type]
        except TypeError:
            return None
    body: dict[str, Any] = {"messages": plain(messages)}
    if isinstance(kwargs.get("system"), (str, list)):
        body["system"] = plain(kwargs["system"])
    return body


def _prepare(
    owner: SurfaceOwner, kwargs: dict[str, Any], api: str
) -> tuple[Plan | None, dict[str, Any]]:
    options = pop_options(kwargs, owner.default_mode)
    model = kwargs.get("model")
    body = _request(kwargs) if "messages" in kwargs else None
    if not isinstance(model, str) or body is None:
        return None, kwargs  # the SDK says what is missing
    # A body we cannot read (a block missing a field, a value JSON cannot hold, ...) goes
    # out as given and the API judges it.
    with fail_open("client", let_through=(), log=logger, action=_UNREAD) as outcome:
        neutral = _neutral(body)
        origins = _assistant_origins(body["messages"], neutral)
    if outcome.failed:
        return None, kwargs
    tools = kwargs.get("tools")
    plan = owner.engine.prepare(
        neutral,
        model=model,
        tools=tools if isinstance(tools, list) else None,
        options=options,
        reply_tokens=as_int(kwargs.get("max_tokens")),
        api=api,
    )
    if plan.messages is not None:
        failures: list[str] = []
        with fail_open("client", failures, let_through=(), log=logger, action=_UNCHANGED):
            kwargs = _with_messages(kwargs, plan.messages, origins)
        if failures:
            owner.engine.fail(plan, failures)
    return plan, kwargs


def _neutral(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages, _ = from_anthropic(body)
    return messages


def _assistant_origins(sent: list[Any], neutral: list[dict[str, Any]]) -> dict[int, Any]:
    """Each neutral assistant message (by identity) -> the caller's Anthropic message it came
    from: one for one, in order."""
    theirs = [m for m in sent if m.get("role") == "assistant"]
    ours = [m for m in neutral if m.get("role") == "assistant"]
    return {id(n): m for n, m in zip(ours, theirs, strict=True)}


def _with_messages(
    kwargs: dict[str, Any], messages: list[dict[str, Any]], origins: dict[int, Any]
) -> dict[str, Any]:
    """The call with the compressed messages. An assistant turn no transform changed goes out
    as the caller's own object (block order, thinking signatures and all); the neutral form
    would put its tool_use blocks last."""
    body = to_anthropic(messages)
    assistants = iter([m for m in messages if m.get("role") == "assistant"])
    rebuilt = [
        origins.get(id(next(assistants)), m) if m["role"] == "assistant" else m
        for m in body["messages"]
    ]
    if not rebuilt or rebuilt[0].get("role") != "user":
        raise InputError("the compressed request would not start with a user turn")
    out = {k: v for k, v in kwargs.items() if k != "system"}
    out["messages"] = rebuilt
    if "system" in body:
        out["system"] = body["system"]
    elif "system" in kwargs and not isinstance(kwargs["system"], (str, list)):
        out["system"] = kwargs["system"]  # an SDK sentinel (omit): forwarded as given
    return out


def _simulate(owner: SurfaceOwner, kwargs: dict[str, Any]) -> SimulationResult:
    options = pop_options(kwargs, "optimize")
    model = kwargs.get("model")
    body = _request(kwargs) if "messages" in kwargs else None
    if not isinstance(model, str) or body is None:
        raise ConfigError("simulate: model= (a str) and messages= (a list) are required")
    tools = kwargs.get("tools")
    sim, result = owner.engine.simulate(
        _neutral(body),
        model=model,
        tools=tools if isinstance(tools, list) else None,
        options=options,
        reply_tokens=as_int(kwargs.get("max_tokens")),
    )
    converted = to_anthropic(result.messages)
    request = {k: v for k, v in request_body(kwargs).items() if k != "system"}
    request.update(converted)
    return dataclasses.replace(sim, messages=converted["messages"], request=request)


class _Base:
    def __init__(self, owner: SurfaceOwner, inner: Any) -> None:
        self._owner = owner
        self._inner = inner

    def simulate(self, **kwargs: Any) -> SimulationResult:
        """What optimize mode would send; no API call, nothing recorded. Raises BudgetError
        when the request cannot fit the model's window."""
        return _simulate(self._owner, kwargs)

    def stream(self, **kwargs: Any) -> Any:
        """``messages.stream(...)``: the SDK's stream manager, request compressed, recorded
        when its ``with`` block ends (usage from the final message snapshot)."""
        plan, kwargs = _prepare(self._owner, kwargs, "messages.stream")
        manager = self._inner.stream(**kwargs)
        return manager if plan is None else managed(self._owner.engine, plan, manager, _final)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Messages(_Base):
    """``messages`` of a ``HeadroomClient`` around ``anthropic.Anthropic``."""

    def create(self, **kwargs: Any) -> Any:
        plan, kwargs = _prepare(self._owner, kwargs, "messages.create")
        if plan is None:
            return self._inner.create(**kwargs)
        return send_sync(
            self._owner.engine,
            plan,
            lambda: self._inner.create(**kwargs),
            stream=kwargs.get("stream") is True,
            read=_usage,
            fold=_fold,
        )


class AsyncMessages(_Base):
    """``messages`` of a ``HeadroomClient`` around ``anthropic.AsyncAnthropic``."""

    async def create(self, **kwargs: Any) -> Any:
        # Compression is CPU work: in a worker thread, so the event loop is never blocked.
        plan, kwargs = await asyncio.to_thread(_prepare, self._owner, kwargs, "messages.create")
        if plan is None:
            return await self._inner.create(**kwargs)
        return await send_async(
            self._owner.engine,
            plan,
            lambda: self._inner.create(**kwargs),
            stream=kwargs.get("stream") is True,
            read=_usage,
            fold=_fold,
        )


__all__ = ["AsyncMessages", "Messages"]

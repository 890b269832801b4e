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

from headroom_core.errors import ConfigError
from headroom_core.messages import to_anthropic
from headroom_core.pipeline import SimulationResult

from ._calls import as_int, managed, request_body, send_async, send_sync
from ._client_core import Plan, SurfaceOwner, Usage, pop_options, readable_messages
from ._plans import anthropic_neutral, plan_messages
from ._usage import anthropic_fold, anthropic_usage

logger = logging.getLogger("headroom_integrations")


def _final(stream: Any) -> Usage | None:
    return anthropic_usage(stream.current_message_snapshot)


def _prepare(
    owner: SurfaceOwner, kwargs: dict[str, Any], api: str
) -> tuple[Plan | None, dict[str, Any]]:
    """The plan and the arguments to forward (see :func:`~._plans.plan_messages`)."""
    options = pop_options(kwargs, owner.default_mode)
    return plan_messages(owner.engine, kwargs, options, api)


def _simulate(owner: SurfaceOwner, kwargs: dict[str, Any]) -> SimulationResult:
    options = pop_options(kwargs, "optimize")
    model = kwargs.get("model")
    messages = kwargs.get("messages")
    if not isinstance(model, str) or not readable_messages(messages) or messages is None:
        raise ConfigError("simulate: model= (a str) and messages= (a list) are required")
    tools = kwargs.get("tools")
    sim, result = owner.engine.simulate(
        anthropic_neutral(kwargs),
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
            read=anthropic_usage,
            fold=anthropic_fold,
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
            read=anthropic_usage,
            fold=anthropic_fold,
        )


__all__ = ["AsyncMessages", "Messages"]

"""The OpenAI surface of ``HeadroomClient``: ``client.chat.completions``.

``create`` (``stream=True`` included), ``parse`` and ``stream`` compress ``messages`` per
the call's mode, strip the ``headroom_*`` parameters and forward everything else untouched;
``simulate`` returns a :class:`~headroom_core.pipeline.SimulationResult` and sends nothing.
Every other attribute (``retrieve``, ``list``, ``with_raw_response``, ...) is the SDK's own
and is not compressed. No ``openai`` import is needed here: the wrapped client brings it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from headroom_core.errors import ConfigError
from headroom_core.pipeline import SimulationResult

from ._calls import as_int, managed, request_body, send_async, send_sync
from ._client_core import Plan, SurfaceOwner, Usage, plain, pop_options
from ._plans import plan_chat
from ._usage import openai_fold, openai_usage


def _final(stream: Any) -> Usage | None:
    return openai_usage(stream.current_completion_snapshot)


def _prepare(
    owner: SurfaceOwner, kwargs: dict[str, Any], api: str
) -> tuple[Plan | None, dict[str, Any]]:
    """The plan and the arguments to forward (see :func:`~._plans.plan_chat`)."""
    options = pop_options(kwargs, owner.default_mode)
    return plan_chat(owner.engine, kwargs, options, api)


def _simulate(owner: SurfaceOwner, kwargs: dict[str, Any]) -> SimulationResult:
    options = pop_options(kwargs, "optimize")
    model, messages = kwargs.get("model"), kwargs.get("messages")
    if not isinstance(model, str) or messages is None:
        raise ConfigError("simulate: model= (a str) and messages= are required")
    tools = kwargs.get("tools")
    reply = as_int(kwargs.get("max_completion_tokens")) or as_int(kwargs.get("max_tokens"))
    tools = tools if isinstance(tools, list) else None
    sim, _ = owner.engine.simulate(
        plain(list(messages)), model=model, tools=tools, options=options, reply_tokens=reply
    )
    return dataclasses.replace(sim, request=request_body(kwargs, messages=sim.messages))


class _Base:
    def __init__(self, owner: SurfaceOwner, inner: Any) -> None:
        self._owner = owner
        self._inner = inner

    def simulate(self, **kwargs: Any) -> SimulationResult:
        """What optimize mode would send for this request; no API call, nothing recorded.
        Raises BudgetError when the request cannot fit the model's window."""
        return _simulate(self._owner, kwargs)

    def stream(self, **kwargs: Any) -> Any:
        """``chat.completions.stream(...)``: the SDK's stream manager, request compressed,
        recorded when its ``with`` block ends."""
        plan, kwargs = _prepare(self._owner, kwargs, "chat.completions.stream")
        manager = self._inner.stream(**kwargs)
        return manager if plan is None else managed(self._owner.engine, plan, manager, _final)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ChatCompletions(_Base):
    """``chat.completions`` of a ``HeadroomClient`` around ``openai.OpenAI``."""

    def create(self, **kwargs: Any) -> Any:
        return self._send("chat.completions.create", kwargs, self._inner.create)

    def parse(self, **kwargs: Any) -> Any:
        return self._send("chat.completions.parse", kwargs, self._inner.parse)

    def _send(self, api: str, kwargs: dict[str, Any], method: Any) -> Any:
        plan, kwargs = _prepare(self._owner, kwargs, api)
        if plan is None:
            return method(**kwargs)
        return send_sync(
            self._owner.engine,
            plan,
            lambda: method(**kwargs),
            stream=kwargs.get("stream") is True,
            read=openai_usage,
            fold=openai_fold,
        )


class AsyncChatCompletions(_Base):
    """``chat.completions`` of a ``HeadroomClient`` around ``openai.AsyncOpenAI``."""

    async def create(self, **kwargs: Any) -> Any:
        return await self._send("chat.completions.create", kwargs, self._inner.create)

    async def parse(self, **kwargs: Any) -> Any:
        return await self._send("chat.completions.parse", kwargs, self._inner.parse)

    async def _send(self, api: str, kwargs: dict[str, Any], method: Any) -> Any:
        # Compression is CPU work: in a worker thread, so the event loop is never blocked.
        plan, kwargs = await asyncio.to_thread(_prepare, self._owner, kwargs, api)
        if plan is None:
            return await method(**kwargs)
        return await send_async(
            self._owner.engine,
            plan,
            lambda: method(**kwargs),
            stream=kwargs.get("stream") is True,
            read=openai_usage,
            fold=openai_fold,
        )


class Chat:
    """``client.chat``: ``completions`` wrapped, everything else the SDK's own."""

    def __init__(self, owner: SurfaceOwner, inner: Any, is_async: bool) -> None:
        self._inner = inner
        cls = AsyncChatCompletions if is_async else ChatCompletions
        self.completions = cls(owner, inner.completions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


__all__ = ["AsyncChatCompletions", "Chat", "ChatCompletions"]

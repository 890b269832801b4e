"""LangChain callback handlers that record one ``RequestMetrics`` per chat-model call.

``HeadroomCallbackHandler`` (sync) and ``AsyncHeadroomCallbackHandler`` (async) observe
a run and write to a metrics store (``sqlite:///headroom.db`` by default)::

    handler = HeadroomCallbackHandler("sqlite:///headroom.db")
    chain.invoke(inputs, config={"callbacks": [handler]})
    handler.summary()

Per call they record the input tokens the model actually received (counted exactly
from its messages with the call's model name), the provider-reported usage when the
response carries it (output tokens, cached prompt tokens), list-price cost before and
after, and, in ``mode="audit"``, the waste signals of the request.

Compression stats come from the ``"headroom_compression"`` custom event that
``HeadroomRunnable``, ``HeadroomChatModel`` and ``HeadroomMiddleware`` dispatch right
before the model call they compressed for. An event dispatched in run R belongs to the
next chat-model call whose parent run is R or R's parent (walking up a few ancestors
of the model's run):

- ``prompt | HeadroomRunnable() | model``: the runnable and the model share the chain;
- ``HeadroomChatModel``: the inner model's parent is the wrapper's run (the wrapper's
  own run is not recorded, only the inner call);
- ``HeadroomMiddleware``: the model's parent is the agent's model node.

With an event, ``tokens_input_before`` is what the model received plus the event's
``tokens_saved`` (the event's own ``tokens_before`` whenever the entry point compressed
exactly what the model got, as all three do). Without usage in the response, output
tokens are counted from the generated text (``extra["tokens_output_source"]``).

Observers never break the user's run: ``raise_error`` is False, and a store that cannot
be opened or written is logged once (logger ``"headroom_integrations"``) and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from headroom_core.errors import ConfigError
from headroom_core.metrics import DEFAULT_METRICS_URL, MetricsStore, RequestMetrics, Summary
from headroom_integrations._sink import MetricsSink

from ._calls import _Call, _Event, _metrics, _new_call
from .runnable import EVENT_NAME  # dispatched by every entry point before the call

__all__ = ["AsyncHeadroomCallbackHandler", "HeadroomCallbackHandler"]

logger = logging.getLogger("headroom_integrations")

_DEFAULT_MODEL = "gpt-4o"
_WRAPPER_TYPE = "headroom"  # HeadroomChatModel._llm_type: its own run is not recorded

HandlerMode = Literal["optimize", "audit"]
_MAX_CALLS = 1024  # chat-model calls in flight; the oldest is dropped beyond this
_MAX_RUNS = 10_000  # run -> parent links kept for correlation
_MAX_EVENTS = 1024  # compression events waiting for their model call
_EVENT_TTL_S = 300.0  # an event no model call claimed within this is stale
_ANCESTOR_DEPTH = 3  # how far up from the model's parent an event is looked for


class _Recorder:
    """The state and logic both handlers share. Thread-safe; memory is bounded."""

    def __init__(
        self, store_url: str, store: MetricsStore | None, model: str | None, mode: str
    ) -> None:
        if mode not in get_args(HandlerMode):
            raise ConfigError(f"mode: expected 'optimize' or 'audit', got {mode!r}")
        self.model = model
        self.mode = mode
        self.sink = MetricsSink(store_url, store, "HeadroomCallbackHandler")
        self._lock = threading.Lock()
        self._parents: OrderedDict[UUID, UUID | None] = OrderedDict()
        self._calls: OrderedDict[UUID, _Call] = OrderedDict()
        self._by_run: dict[UUID, list[_Event]] = {}  # run -> events that may apply under it
        self._pending: dict[int, _Event] = {}  # id -> event, oldest first

    # -- run tree and compression events -------------------------------------------

    def run_started(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        with self._lock:
            self._parents[run_id] = parent_run_id
            while len(self._parents) > _MAX_RUNS:
                self._parents.popitem(last=False)

    def run_ended(self, run_id: UUID) -> None:
        """Forget a finished run; an event filed only under finished runs can never match."""
        with self._lock:
            self._parents.pop(run_id, None)
            for event in self._by_run.pop(run_id, ()):
                event.keys.discard(run_id)
                if not event.keys:
                    self._pending.pop(id(event), None)

    def event(self, name: str, data: Any, run_id: UUID) -> None:
        if name != EVENT_NAME or not isinstance(data, Mapping):
            return
        now = time.monotonic()
        with self._lock:
            self._drop_stale(now)
            keys = {run_id}
            parent = self._parents.get(run_id)
            if parent is not None:
                keys.add(parent)
            event = _Event(dict(data), keys, now)
            for key in keys:
                self._by_run.setdefault(key, []).append(event)
            self._pending[id(event)] = event

    def _drop_stale(self, now: float) -> None:
        """Drop events older than the TTL, and the oldest beyond the size bound."""
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if now - oldest.at <= _EVENT_TTL_S and len(self._pending) < _MAX_EVENTS:
                break
            self._unfile(oldest)

    def _unfile(self, event: _Event) -> None:
        for key in event.keys:
            remaining = [e for e in self._by_run.get(key, ()) if e is not event]
            if remaining:
                self._by_run[key] = remaining
            else:
                self._by_run.pop(key, None)
        event.keys.clear()
        self._pending.pop(id(event), None)

    def _claim_event(self, parent_run_id: UUID | None) -> _Event | None:
        """The oldest event filed under the model's parent or one of its close ancestors."""
        run = parent_run_id
        for _ in range(_ANCESTOR_DEPTH):
            if run is None:
                return None
            events = self._by_run.get(run)
            if events:
                event = events[0]
                self._unfile(event)
                return event
            run = self._parents.get(run)
        return None

    # -- chat-model calls ----------------------------------------------------------

    def model_started(
        self,
        messages: Sequence[Sequence[BaseMessage]],
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: Mapping[str, Any] | None,
        invocation_params: Mapping[str, Any] | None,
    ) -> None:
        self.run_started(run_id, parent_run_id)
        params = invocation_params or {}
        if params.get("_type") == _WRAPPER_TYPE:
            return  # the wrapper's inner model call is the one recorded
        call = _new_call(messages, run_id, metadata, params, self.model or _DEFAULT_MODEL)
        with self._lock:
            self._drop_stale(time.monotonic())
            call.event = self._claim_event(parent_run_id)
            self._calls[run_id] = call
            while len(self._calls) > _MAX_CALLS:
                self._calls.popitem(last=False)

    def model_streamed(self, run_id: UUID) -> None:
        with self._lock:
            call = self._calls.get(run_id)
            if call is not None:
                call.stream = True

    def model_finished(
        self, run_id: UUID, response: LLMResult | None, error: BaseException | None
    ) -> None:
        with self._lock:
            call = self._calls.pop(run_id, None)
        self.run_ended(run_id)
        if call is None:
            return
        self.write(_metrics(call, response, error, self.mode))

    # -- the store (see headroom_integrations._sink) ------------------------------

    @property
    def dropped(self) -> int:
        return self.sink.dropped

    def write(self, m: RequestMetrics) -> None:
        self.sink.write(m)

    def require_store(self) -> MetricsStore:
        return self.sink.require_store()

    def close(self) -> None:
        self.sink.close()


class _HandlerAPI:
    """Construction and queries shared by the sync and async handlers."""

    raise_error = False  # an observer never breaks the run
    _recorder: _Recorder

    def __init__(
        self,
        store_url: str = DEFAULT_METRICS_URL,
        *,
        model: str | None = None,
        mode: HandlerMode = "optimize",
        store: MetricsStore | None = None,
    ) -> None:
        """
        Args:
            store_url: Where to record (``sqlite:///``, ``jsonl:///``, ``memory://``,
                ``postgresql://``).
                A malformed URL raises ConfigError; a store that cannot be opened is
                logged once and its records are dropped (see ``dropped``).
            model: The model name for calls that name none (neither in their invocation
                params nor as ``ls_model_name``); None: ``"gpt-4o"``.
            mode: ``"optimize"`` or ``"audit"`` (also records the waste signals of what
                each model received). A row's mode is the entry point's when one ran.
            store: An open ``MetricsStore`` to use instead of ``store_url``; ``close()``
                leaves it open.
        """
        super().__init__()
        self._recorder = _Recorder(store_url, store, model, mode)

    @property
    def mode(self) -> str:
        return self._recorder.mode

    @property
    def dropped(self) -> int:
        """Records that could not be stored."""
        return self._recorder.dropped

    @property
    def store(self) -> MetricsStore:
        """The metrics store; StorageError if it could not be opened."""
        return self._recorder.require_store()

    def summary(self) -> Summary:
        """Totals over every record in the store."""
        return self.store.get_summary()

    def get_metrics(self, limit: int | None = 100) -> list[RequestMetrics]:
        """Records in the store, newest first."""
        return self.store.get_metrics(limit)

    def close(self) -> None:
        """Close the store if this handler opened it."""
        self._recorder.close()

    @property
    def ignore_agent(self) -> bool:
        return True

    @property
    def ignore_retriever(self) -> bool:
        return True

    @property
    def ignore_retry(self) -> bool:
        return True


class HeadroomCallbackHandler(_HandlerAPI, BaseCallbackHandler):
    """Records one ``RequestMetrics`` per chat-model call of a LangChain run."""

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._recorder.run_started(run_id, parent_run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.run_ended(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.run_ended(run_id)

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._recorder.run_started(run_id, parent_run_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.run_ended(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.run_ended(run_id)

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.event(name, data, run_id)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        params = kwargs.get("invocation_params")
        self._recorder.model_started(messages, run_id, parent_run_id, metadata, params)

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.model_streamed(run_id)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.model_finished(run_id, response, None)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.model_finished(run_id, kwargs.get("response"), error)


class AsyncHeadroomCallbackHandler(_HandlerAPI, AsyncCallbackHandler):
    """The async twin of ``HeadroomCallbackHandler``. Counting and the store write run in
    a worker thread, so a long request or a busy file does not block the event loop."""

    async def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._recorder.run_started(run_id, parent_run_id)

    async def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.run_ended(run_id)

    async def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.run_ended(run_id)

    async def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._recorder.run_started(run_id, parent_run_id)

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.run_ended(run_id)

    async def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.run_ended(run_id)

    async def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.event(name, data, run_id)

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        params = kwargs.get("invocation_params")
        self._recorder.model_started(messages, run_id, parent_run_id, metadata, params)

    async def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._recorder.model_streamed(run_id)

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        await asyncio.to_thread(self._recorder.model_finished, run_id, response, None)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        response = kwargs.get("response")
        await asyncio.to_thread(self._recorder.model_finished, run_id, response, error)

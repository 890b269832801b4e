"""``HeadroomEventHandler``: one ``RequestMetrics`` per LLM call, from LlamaIndex instrumentation.

::

    handler = HeadroomEventHandler("sqlite:///headroom.db").register()
    query_engine.query("...")                  # or agent.run(...), llm.chat(...)
    handler.summary()
    handler.unregister()

``register()`` adds the handler, and a span handler it reads the span tree from, to the
root dispatcher (``with HeadroomEventHandler(...) as handler:`` registers for a block).
Adding it yourself with ``get_dispatcher().add_event_handler(handler)`` works too; add
``handler.span_handler`` with ``add_span_handler`` as well, or an LLM that implements
``chat`` by calling its own ``complete`` (``CustomLLM``, ``MockLLM``) is recorded twice.

Per LLM call (``LLMChatStartEvent``/``LLMChatEndEvent``, ``LLMCompletionStartEvent``/
``LLMCompletionEndEvent``) it records:

- the input tokens the LLM received, counted exactly from its messages with tool calls
  (``to_neutral`` + ``count_tokens_messages``) or from the completion prompt;
- the provider-reported usage when the response carries it (``raw.usage`` or
  ``additional_kwargs``: OpenAI's ``prompt_tokens``/``completion_tokens``/cached tokens,
  Anthropic's ``input_tokens``/``output_tokens``/``cache_read_input_tokens``), else output
  tokens counted from the response (``extra["tokens_output_source"]``);
- list-price cost before and after; ``stream`` when chunks were seen; the error of a call
  that raised; in ``mode="audit"``, the waste signals of the request;
- the compression stats of the ``HeadroomCompressionEvent`` that ``HeadroomLLM``
  dispatched for that call (the event whose messages are the very objects the LLM
  received, else one dispatched in an enclosing span): ``tokens_input_before`` is what the
  LLM received plus the event's ``tokens_saved``.

A call made inside another recorded call (``MockLLM.chat`` calling its own ``complete``,
``achat`` calling ``chat``) belongs to the outer one and is not recorded again. The model
name is the LLM's ``metadata.model_name``; for LLMs that name none, ``model`` given here,
else the one ``HeadroomLLM`` counted with, else ``"gpt-4o"``.

Observers never break the user's run: an error while handling an event, and a store that
cannot be opened or written, are logged once (logger ``"headroom_integrations"``) and
skipped (records not stored are counted in ``dropped``).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Literal, get_args

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.instrumentation import Dispatcher, get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatInProgressEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionInProgressEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.instrumentation.events.span import SpanDropEvent
from llama_index.core.instrumentation.span import BaseSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler

from headroom_core.errors import ConfigError
from headroom_core.metrics import DEFAULT_METRICS_URL, MetricsStore, RequestMetrics, Summary
from headroom_integrations._compress import count_tools
from headroom_integrations._sink import MetricsSink

from ._calls import _Call, _is, _metrics, _model_name, _owner, _public
from .llm import HeadroomCompressionEvent

__all__ = ["HeadroomEventHandler", "SpanTracker"]

logger = logging.getLogger("headroom_integrations")

HandlerMode = Literal["optimize", "audit"]

_DEFAULT_MODEL = "gpt-4o"
_MAX_CALLS = 1024  # LLM calls in flight; the oldest is dropped beyond this
_MAX_NESTED = 4096  # spans of calls made inside a recorded call
_MAX_EVENTS = 1024  # compression events waiting for their LLM call
_EVENT_TTL_S = 300.0  # an event no call claimed within this is stale
_ANCESTOR_DEPTH = 16  # how far up the span tree a call or an event is looked for
_MAX_SPANS = 10_000  # open spans whose parent is remembered


class HeadroomEventHandler(BaseEventHandler):
    """Records one ``RequestMetrics`` per LLM chat or completion call (source
    ``"llamaindex"``) in a metrics store."""

    store_url: str = DEFAULT_METRICS_URL
    model: str | None = None
    mode: HandlerMode = "optimize"

    _sink: MetricsSink = PrivateAttr()
    _spans: SpanTracker = PrivateAttr()
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: OrderedDict[str | None, _Call] = PrivateAttr(default_factory=OrderedDict)
    _nested: OrderedDict[str, None] = PrivateAttr(default_factory=OrderedDict)
    _pending: list[tuple[float, HeadroomCompressionEvent]] = PrivateAttr(default_factory=list)
    _dispatcher: Dispatcher | None = PrivateAttr(default=None)

    def __init__(
        self,
        store_url: str = DEFAULT_METRICS_URL,
        model: str | None = None,
        *,
        mode: HandlerMode = "optimize",
        store: MetricsStore | None = None,
    ) -> None:
        """
        Args:
            store_url: Where to record (``sqlite:///``, ``jsonl:///``, ``memory://``,
                ``postgresql://``).
                A malformed URL raises ConfigError; a store that cannot be opened is
                logged once and its records are dropped (see ``dropped``).
            model: The model name for LLMs whose metadata names none.
            mode: ``"optimize"`` or ``"audit"`` (also records the waste signals of what
                each LLM received). A row's mode is ``HeadroomLLM``'s when it compressed.
            store: An open ``MetricsStore`` to use instead of ``store_url``; ``close()``
                leaves it open.
        """
        if mode not in get_args(HandlerMode):
            raise ConfigError(f"mode: expected 'optimize' or 'audit', got {mode!r}")
        super().__init__(store_url=store_url, model=model, mode=mode)
        self._sink = MetricsSink(store_url, store, "HeadroomEventHandler")
        self._spans = SpanTracker()
        self._spans.on_exit = self._span_exited

    @classmethod
    def class_name(cls) -> str:
        return "HeadroomEventHandler"

    # -- registration -----------------------------------------------------------------

    @property
    def span_handler(self) -> SpanTracker:
        """The span handler this handler reads the span tree from."""
        return self._spans

    def register(self, dispatcher: Dispatcher | None = None) -> HeadroomEventHandler:
        """Add this handler and its span handler to ``dispatcher`` (default: the root
        dispatcher, which sees every LlamaIndex event). Returns ``self``."""
        target = dispatcher or get_dispatcher()
        if self._dispatcher is not None and self._dispatcher is not target:
            self.unregister()
        if not any(h is self for h in target.event_handlers):
            target.add_event_handler(self)
        if not any(h is self._spans for h in target.span_handlers):
            target.add_span_handler(self._spans)
        self._dispatcher = target
        return self

    def unregister(self) -> None:
        """Remove what ``register()`` added. Idempotent."""
        target, self._dispatcher = self._dispatcher, None
        if target is not None:
            target.event_handlers = [h for h in target.event_handlers if h is not self]
            target.span_handlers = [h for h in target.span_handlers if h is not self._spans]

    def __enter__(self) -> HeadroomEventHandler:
        return self.register()

    def __exit__(self, *exc: object) -> None:
        self.unregister()
        self.close()

    # -- queries ----------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Records that could not be stored."""
        return self._sink.dropped

    @property
    def store(self) -> MetricsStore:
        """The metrics store; StorageError if it could not be opened."""
        return self._sink.require_store()

    def summary(self) -> Summary:
        """Totals over every record in the store."""
        return self.store.get_summary()

    def get_metrics(self, limit: int | None = 100) -> list[RequestMetrics]:
        """Records in the store, newest first."""
        return self.store.get_metrics(limit)

    def close(self) -> None:
        """Close the store if this handler opened it."""
        self._sink.close()

    # -- events -----------------------------------------------------------------------

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        try:
            self._handle(event)
        # Observer boundary: nothing an event does to this handler reaches the user's run.
        except Exception as exc:
            self._sink.warn(exc, "handling an instrumentation event failed")

    def _handle(self, event: BaseEvent) -> None:
        span = event.span_id
        if isinstance(event, HeadroomCompressionEvent):
            with self._lock:
                self._drop_stale(time.monotonic())
                self._pending.append((time.monotonic(), event))
        elif isinstance(event, LLMChatStartEvent):
            sent = tuple(event.messages)
            tools = (event.additional_kwargs or {}).get("tools")
            self._started("chat", span, sent, event.model_dict, lambda: _public(sent), tools)
        elif isinstance(event, LLMCompletionStartEvent):
            prompt = event.prompt
            self._started("completion", span, (prompt,), event.model_dict, lambda: prompt)
        elif isinstance(event, (LLMChatInProgressEvent, LLMCompletionInProgressEvent)):
            with self._lock:
                call = self._calls.get(span)
                if call is not None:
                    call.stream = True
        elif isinstance(event, (LLMChatEndEvent, LLMCompletionEndEvent)):
            self._finished(span, event.response, None)
        elif isinstance(event, ExceptionEvent):
            self._finished(span, None, f"{type(event.exception).__name__}: {event.exception}")
        elif isinstance(event, SpanDropEvent):
            self._finished(span, None, event.err_str)

    def _started(
        self,
        kind: Literal["chat", "completion"],
        span: str | None,
        sent: tuple[Any, ...],
        model_dict: Mapping[str, Any],
        received: Any,
        tools: Any = None,
    ) -> None:
        owner = _owner()
        with self._lock:
            if self._inside_call(span, sent, owner):
                if span is not None:
                    self._nested[span] = None
                    while len(self._nested) > _MAX_NESTED:
                        self._nested.popitem(last=False)
                return
            self._drop_stale(time.monotonic())
            event = self._claim(span, sent) if kind == "chat" else None
        model = _model_name(model_dict) or self.model or (event.model if event else None)
        call = _Call(kind, model or _DEFAULT_MODEL, received(), sent, owner, event)
        call.extra.update(span_id=span, kind=kind, llm=str(model_dict.get("class_name", "")))
        if isinstance(tools, (list, tuple)) and tools:  # the definitions sent with the call
            call.tools_tokens = count_tools(list(tools), call.model)
            call.extra["tools_tokens"] = call.tools_tokens
        with self._lock:
            self._calls[span] = call
            while len(self._calls) > _MAX_CALLS:
                self._calls.popitem(last=False)

    def _inside_call(self, span: str | None, sent: tuple[Any, ...], owner: Hashable) -> bool:
        """Whether a start belongs to a call already in flight: one of its spans encloses
        it, or (a stream started lazily, outside the outer call's span) the same task or
        thread sends the very same objects."""
        for s in self._spans.lineage(span, _ANCESTOR_DEPTH):
            if s in self._calls or s in self._nested:
                return True
        return any(
            c.owner == owner and len(c.sent) == len(sent) and all(map(_is, c.sent, sent))
            for c in self._calls.values()
        )

    def _claim(self, span: str | None, sent: tuple[Any, ...]) -> HeadroomCompressionEvent | None:
        """The compression event for a chat call: the one that sent these very messages,
        else the oldest one dispatched in an enclosing span."""
        for i, (_, event) in enumerate(self._pending):
            if len(event.messages) == len(sent) and all(map(_is, event.messages, sent)):
                return self._pending.pop(i)[1]
        lineage = set(self._spans.lineage(span, _ANCESTOR_DEPTH))
        for i, (_, event) in enumerate(self._pending):
            if event.span_id is not None and event.span_id in lineage:
                return self._pending.pop(i)[1]
        return None

    def _drop_stale(self, now: float) -> None:
        keep = [(t, e) for t, e in self._pending if now - t <= _EVENT_TTL_S]
        self._pending = keep[-(_MAX_EVENTS - 1) :] if len(keep) >= _MAX_EVENTS else keep

    def _span_exited(self, span: str) -> None:
        """A span ended: nothing dispatched in it can be claimed any more (its LLM call
        started inside it), and no call can start inside it."""
        with self._lock:
            self._nested.pop(span, None)
            if any(e.span_id == span for _, e in self._pending):
                self._pending = [(t, e) for t, e in self._pending if e.span_id != span]

    def _finished(self, span: str | None, response: Any, error: str | None) -> None:
        with self._lock:
            call = self._calls.pop(span, None)
            if call is None:
                return
        self._sink.write(_metrics(call, response, error, self.mode))


# -- the span tree ------------------------------------------------------------------------


class SpanTracker(BaseSpanHandler[BaseSpan]):
    """A span handler that only remembers the parent of each open span (bounded), for
    ``HeadroomEventHandler`` to tell a call made inside another from a new one."""

    _parents: OrderedDict[str, str | None] = PrivateAttr(default_factory=OrderedDict)
    _guard: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    on_exit: Callable[[str], None] | None = None

    @classmethod
    def class_name(cls) -> str:
        return "HeadroomSpanTracker"

    def lineage(self, span: str | None, depth: int) -> list[str]:
        """``span`` and its open ancestors, nearest first, at most ``depth`` of them."""
        out: list[str] = []
        with self._guard:
            while span is not None and len(out) < depth:
                out.append(span)
                span = self._parents.get(span)
        return out

    def span_enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        with self._guard:
            self._parents[id_] = parent_id
            while len(self._parents) > _MAX_SPANS:
                self._parents.popitem(last=False)

    def span_exit(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> None:
        self._forget(id_)

    def span_drop(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        self._forget(id_)

    def _forget(self, id_: str) -> None:
        with self._guard:
            self._parents.pop(id_, None)
        if self.on_exit is not None:
            self.on_exit(id_)

    # BaseSpanHandler's abstract hooks: no span objects are kept.
    def new_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        return None

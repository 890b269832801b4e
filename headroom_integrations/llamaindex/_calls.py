"""Per-call bookkeeping for ``HeadroomEventHandler`` (``instrumentation.py``).

A ``_Call`` is an LLM call in flight: what it received (neutral messages or the prompt),
the objects it was sent, the task or thread it runs in, and the ``HeadroomCompressionEvent``
it claimed. ``_metrics`` turns a finished one into a ``RequestMetrics``: input tokens
counted exactly, provider-reported usage read from the response (``raw.usage`` or
``additional_kwargs``; else output tokens counted), list-price cost before and after, and
the waste signals in ``"audit"`` mode. The span tree and event correlation stay in the
handler.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from headroom_core.metrics import RequestMetrics
from headroom_core.tokens import Tokenizer, get_tokenizer
from headroom_core.waste import detect_waste
from headroom_integrations._records import ReportedUsage, SeenCompression, observed_record

from ._convert import to_neutral
from .llm import HeadroomCompressionEvent

_UNNAMED = frozenset({"", "unknown"})
_MODEL_KEYS = ("model", "model_name", "model_id")


@dataclass(slots=True)
class _Call:
    """An LLM call in flight: what it received and what was done to it."""

    kind: Literal["chat", "completion"]
    model: str
    received: list[dict[str, Any]] | str  # neutral messages (public keys) or the prompt
    sent: tuple[Any, ...]  # the objects the LLM received: its calls inside have the same
    owner: Hashable
    event: HeadroomCompressionEvent | None
    extra: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    tools_tokens: int = 0  # the tool definitions sent with the call


def _metrics(call: _Call, response: Any, error: str | None, handler_mode: str) -> RequestMetrics:
    """The record of a finished call; ``handler_mode`` is the handler's ``mode``."""
    model = call.model
    tok = get_tokenizer(model)
    received = call.received
    sent = tok.count_text(received) if isinstance(received, str) else tok.count_messages(received)
    sent += call.tools_tokens
    event = None
    if call.event is not None:
        e = call.event
        event = SeenCompression(
            tokens_saved=e.tokens_saved,
            transforms=tuple(e.transforms_applied),
            mode=e.mode,
            failures=tuple(e.failures),
            details={
                "tokens_before": e.tokens_before,
                "tokens_after": e.tokens_after,
                "model": e.model,
                "span_id": e.span_id,
            },
        )
    audit = handler_mode == "audit" and not isinstance(received, str)
    return observed_record(
        source="llamaindex",
        model=model,
        tokens_sent=sent,
        handler_mode=str(handler_mode),
        event=event,
        usage=None if response is None else ReportedUsage(*_usage(response)),
        count_output=None if response is None else (lambda: _count_output(response, tok)),
        waste=detect_waste(received, tok).to_dict() if audit else {},  # type: ignore[arg-type]
        stream=call.stream,
        error=error,
        extra=call.extra,
    )


def _public(messages: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Neutral messages without private keys (``_li``): what the provider is sent."""
    return [{k: v for k, v in m.items() if not k.startswith("_")} for m in to_neutral(messages)]


def _model_name(model_dict: Mapping[str, Any]) -> str | None:
    for key in _MODEL_KEYS:
        value = model_dict.get(key)
        if isinstance(value, str) and value not in _UNNAMED:
            return value
    return None


def _owner() -> Hashable:
    """The asyncio task, else the thread, a call runs in."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running event loop
        task = None
    return ("task", id(task)) if task is not None else ("thread", threading.get_ident())


def _is(a: object, b: object) -> bool:
    return a is b


# -- reading responses ------------------------------------------------------------------------


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _first(*values: Any) -> int | None:
    return next((v for v in map(_int, values) if v is not None), None)


def _usage(response: Any) -> tuple[int | None, int | None, int | None]:
    """(output, cached, input) tokens the provider reported, each None when absent: from
    ``raw.usage`` (OpenAI or Anthropic SDK objects or dicts), else ``additional_kwargs``
    (where LlamaIndex's OpenAI LLM puts ``prompt_tokens``/``completion_tokens``)."""
    for source in (_get(_get(response, "raw"), "usage"), _get(response, "additional_kwargs")):
        if source is None:
            continue
        output = _first(_get(source, "completion_tokens"), _get(source, "output_tokens"))
        given = _first(_get(source, "prompt_tokens"), _get(source, "input_tokens"))
        cached = _first(
            _get(_get(source, "prompt_tokens_details"), "cached_tokens"),
            _get(source, "cache_read_input_tokens"),
        )
        if output is not None or given is not None:
            return output, cached, given
    return None, None, None


def _count_output(response: Any, tok: Tokenizer) -> int:
    """Tokens of the generated text and tool calls, when the provider reported none."""
    message = _get(response, "message")
    if message is None:  # a CompletionResponse
        return tok.count_text(str(_get(response, "text") or ""))
    (neutral,) = to_neutral([message])
    total = tok.count_text(message.content or "")
    for call in neutral.get("tool_calls") or ():
        total += tok.count_text(call["function"]["name"])
        total += tok.count_text(call["function"]["arguments"])
    return total

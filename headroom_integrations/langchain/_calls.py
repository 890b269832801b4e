"""Per-call bookkeeping for the LangChain callback handlers (``callback.py``).

A ``_Call`` is a chat-model call in flight: the messages it received (``_new_call``) and
the compression ``_Event`` it claimed. ``_metrics`` turns a finished one into a
``RequestMetrics``: input tokens counted exactly, provider-reported usage read from the
``LLMResult`` (else output tokens counted), list-price cost before and after, and the
waste signals in ``"audit"`` mode. Input tokens include the tool definitions the call was
bound with (``invocation_params["tools"]``), as the provider bills them. The run tree and
event correlation stay in the handler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from headroom_core.metrics import RequestMetrics
from headroom_core.tokens import count_tokens_messages, get_tokenizer
from headroom_core.waste import detect_waste
from headroom_integrations._records import ReportedUsage, SeenCompression, observed_record

from ._convert import to_neutral
from ._tools import count_tool_tokens

_MODEL_KEYS = ("model", "model_name", "model_id", "ls_model_name")


@dataclass(slots=True)
class _Event:
    """One compression event, filed under every run it may apply to."""

    data: Mapping[str, Any]
    keys: set[UUID]
    at: float


@dataclass(slots=True)
class _Call:
    """A chat-model call in flight: what it received and what was done to it."""

    model: str
    messages: list[dict[str, Any]]
    event: _Event | None
    extra: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    tools_tokens: int = 0  # the tool definitions the call was bound with


def _new_call(
    messages: Sequence[Sequence[BaseMessage]],
    run_id: UUID,
    metadata: Mapping[str, Any] | None,
    params: Mapping[str, Any],
    default_model: str,
) -> _Call:
    """The call a chat model was started with; its compression event is claimed later."""
    received = [m for batch in messages for m in batch]
    call = _Call(
        model=_model_name(params, metadata or {}, default_model),
        messages=[_public(m) for m in to_neutral(received)],
        event=None,
        extra={"run_id": str(run_id)},
    )
    ls_provider = (metadata or {}).get("ls_provider")
    if isinstance(ls_provider, str):
        call.extra["ls_provider"] = ls_provider
    tools = params.get("tools")
    if isinstance(tools, Sequence) and not isinstance(tools, (str, bytes)) and tools:
        call.tools_tokens = count_tool_tokens(list(tools), call.model)
        call.extra["tools_tokens"] = call.tools_tokens
    return call


def _metrics(
    call: _Call, response: LLMResult | None, error: BaseException | None, handler_mode: str
) -> RequestMetrics:
    """The record of a finished call; ``handler_mode`` is the handler's ``mode``."""
    model = call.model
    event = None
    if call.event is not None:
        data = call.event.data
        event = SeenCompression(
            tokens_saved=_saved(data),
            transforms=tuple(str(t) for t in data.get("transforms_applied") or ()),
            mode=str(data.get("mode")),
            failures=tuple(str(f) for f in data.get("failures") or ()),
            details={k: data.get(k) for k in ("tokens_before", "tokens_after", "model")},
        )
    audit = handler_mode == "audit"
    return observed_record(
        source="langchain",
        model=model,
        tokens_sent=count_tokens_messages(call.messages, model=model) + call.tools_tokens,
        handler_mode=handler_mode,
        event=event,
        usage=None if response is None else ReportedUsage(*_usage(response)),
        count_output=None
        if error is not None or response is None
        else (lambda: _count_output(response, model)),
        waste=detect_waste(call.messages, get_tokenizer(model)).to_dict() if audit else {},
        stream=call.stream,
        error=None if error is None else f"{type(error).__name__}: {error}",
        extra=call.extra,
    )


def _public(message: Mapping[str, Any]) -> dict[str, Any]:
    """A neutral message without private keys (``_lc``): what the provider is sent."""
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _model_name(params: Mapping[str, Any], metadata: Mapping[str, Any], default: str) -> str:
    for source in (params, metadata):
        for key in _MODEL_KEYS:
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    return default


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _saved(data: Mapping[str, Any]) -> int:
    saved = _int(data.get("tokens_saved"))
    if saved is None:
        before, after = _int(data.get("tokens_before")), _int(data.get("tokens_after"))
        saved = before - after if before is not None and after is not None else 0
    return max(0, saved)


def _usage(response: LLMResult) -> tuple[int | None, int | None, int | None]:
    """(output, cached, input) tokens the provider reported, each None when absent."""
    gens = response.generations[0] if response.generations else []
    message = getattr(gens[0], "message", None) if gens else None
    usage = getattr(message, "usage_metadata", None)
    if usage:
        details = usage.get("input_token_details") or {}
        return (
            _int(usage.get("output_tokens")),
            _int(details.get("cache_read")),
            _int(usage.get("input_tokens")),
        )
    token_usage = (response.llm_output or {}).get("token_usage") or {}
    if not isinstance(token_usage, Mapping):
        return None, None, None
    details = token_usage.get("prompt_tokens_details") or {}
    cached = _int(details.get("cached_tokens")) if isinstance(details, Mapping) else None
    return (
        _int(token_usage.get("completion_tokens")),
        cached,
        _int(token_usage.get("prompt_tokens")),
    )


def _count_output(response: LLMResult, model: str) -> int:
    """Tokens of the generated text and tool calls, when the provider reported none."""
    tok = get_tokenizer(model)
    total = 0
    for gens in response.generations:
        for gen in gens:
            total += tok.count_text(gen.text)
            for call in getattr(getattr(gen, "message", None), "tool_calls", None) or ():
                total += tok.count_text(str(call.get("name", "")))
                total += tok.count_text(str(call.get("args", "")))
    return total

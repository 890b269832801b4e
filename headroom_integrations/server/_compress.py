"""``POST /v1/compress`` (wire-compatible with the reference server's) and the retrieve
endpoints. The route handlers only read and check the body; the work is here.

``config.mode``: ``"ccr"`` makes reversible cuts (markers name refs of stored originals,
listed in ``ccr_hashes``); unset, the caller cannot retrieve, so only cuts that need no
retrieval are made (``SmartCrusherConfig.reversible=False``). ``frozen_message_count``
pins the first N messages byte for byte.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from headroom_core.boundary import fail_open
from headroom_core.ccr import (
    REF_LENGTH,
    OriginalStore,
    in_a_namespace,
    is_ref,
    retrieve,
    use_store,
)
from headroom_core.config import HeadroomConfig
from headroom_core.errors import InputError
from headroom_core.messages import to_anthropic
from headroom_core.pipeline import compress, frozen_length
from headroom_core.providers import provider_for_model
from headroom_core.tokens import get_tokenizer

from .._plans import anthropic_neutral, with_anthropic_messages
from .._records import priced_record
from ._wire import refs_in

if TYPE_CHECKING:
    from ._state import State

logger = logging.getLogger("headroom_integrations.server")
_AS_GIVEN = "the messages are returned unchanged"

COMPRESS_MODES = ("ccr",)


class BadRequest(ValueError):
    """A body that cannot be served; the message names the field."""


@dataclass(frozen=True, slots=True)
class CompressRequest:
    messages: list[Any]
    model: str
    ccr: bool
    frozen: int
    token_budget: int | None
    system: Any = None
    has_system: bool = False


def _int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadRequest(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def read_compress(body: Any) -> CompressRequest:
    """The checked body of ``POST /v1/compress``; BadRequest naming the field otherwise."""
    if not isinstance(body, dict):
        raise BadRequest("body: expected a JSON object with messages and model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise BadRequest("messages: expected a list of message objects")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: required, a model name (string)")
    config = body.get("config")
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise BadRequest("config: expected an object")
    mode = config.get("mode")
    if mode is not None and mode not in COMPRESS_MODES:
        raise BadRequest(
            f"config.mode: expected 'ccr' (reversible cuts, ccr_hashes listed) or no mode "
            f"(only cuts that need no retrieval), got {mode!r}"
        )
    frozen = config.get("frozen_message_count")
    frozen = 0 if frozen is None else _int(frozen, "config.frozen_message_count", 0)
    budget = body.get("token_budget")
    budget = None if budget is None else _int(budget, "token_budget", 1)
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise BadRequest("system: expected a string or a list of content blocks")
    return CompressRequest(messages, model, mode == "ccr", frozen, budget, system, "system" in body)


def _is_anthropic(req: CompressRequest) -> bool:
    if req.has_system:
        return True
    return any(
        isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result")
        for m in req.messages
        if isinstance(m.get("content"), list)
        for b in m["content"]
    )


def run_compress(
    state: State, req: CompressRequest, store: OriginalStore | None = None
) -> dict[str, Any]:
    """The response body. Fails open: on any failure of ours, the messages as given. The
    originals of reversible cuts go to ``store`` (default: the server's)."""
    started = time.perf_counter()
    store = state.originals if store is None else store
    smart = state.settings.config.smart_crusher.model_copy(update={"reversible": req.ccr})
    config = state.settings.config.model_copy(update={"smart_crusher": smart, "mode": "optimize"})
    anthropic = _is_anthropic(req)
    failures: list[str] = []
    with (
        use_store(store),
        fail_open("server", failures, let_through=(), log=logger, action=_AS_GIVEN) as outcome,
    ):
        out = (_anthropic if anthropic else _openai)(req, config)
    if outcome.failed:
        out = _unchanged(req, anthropic)
    refs = [r for r in refs_in([out.get("system"), out["messages"]]) if r in store]
    payload = {
        "messages": out["messages"],
        "tokens_before": out["before"],
        "tokens_after": out["after"],
        "tokens_saved": max(0, out["before"] - out["after"]),
        "compression_ratio": out["after"] / out["before"] if out["before"] else 1.0,
        "transforms_applied": list(out["transforms"]),
        "ccr_hashes": refs if req.ccr else [],
    }
    if req.has_system:
        payload["system"] = out.get("system", req.system)
    _record(state, req, out, failures, started)
    return payload


def _openai(req: CompressRequest, config: HeadroomConfig) -> dict[str, Any]:
    result = compress(
        req.messages,
        model=req.model,
        config=config,
        max_tokens=req.token_budget,
        frozen_message_count=req.frozen,
    )
    return {
        "messages": result.messages,
        "before": result.tokens_before,
        "after": result.tokens_after,
        "transforms": result.transforms_applied,
    }


def _anthropic(req: CompressRequest, config: HeadroomConfig) -> dict[str, Any]:
    """Through the neutral format and back; the first ``frozen`` messages (widened over a
    tool_use's results) are the caller's own objects."""
    body: dict[str, Any] = {"messages": req.messages}
    if req.has_system:
        body["system"] = req.system
    neutral = anthropic_neutral(body)
    k = min(req.frozen, len(req.messages))
    if 0 < k < len(req.messages) and _answers_previous(req.messages, k):
        k += 1
    frozen = len(anthropic_neutral({**body, "messages": req.messages[:k]})) if k else 0
    if frozen and frozen_length(neutral, frozen) != frozen:
        raise InputError("the frozen prefix would end inside a tool call's results")
    result = compress(
        neutral,
        model=req.model,
        config=config,
        max_tokens=req.token_budget,
        frozen_message_count=frozen,
    )
    origins = {
        id(n): m
        for n, m in zip(
            [m for m in neutral if m.get("role") == "assistant"],
            [m for m in req.messages if m.get("role") == "assistant"],
            strict=True,
        )
    }
    if not frozen:
        converted = with_anthropic_messages(body, result.messages, origins)
        messages, system = converted["messages"], converted.get("system", req.system)
    else:
        tail = result.messages[frozen:]
        if any(m.get("role") == "system" for m in tail):
            raise InputError("a context-fitting note would land inside the conversation")
        rebuilt = to_anthropic(tail)["messages"]
        assistants = iter([m for m in tail if m.get("role") == "assistant"])
        messages = [*req.messages[:k]] + [
            origins.get(id(next(assistants)), m) if m["role"] == "assistant" else m for m in rebuilt
        ]
        system = req.system
    return {
        "messages": messages,
        "system": system,
        "before": result.tokens_before,
        "after": result.tokens_after,
        "transforms": result.transforms_applied,
    }


def _answers_previous(messages: list[Any], k: int) -> bool:
    """Message ``k`` holds tool_result blocks for the tool_use of message ``k - 1``."""
    previous, current = messages[k - 1], messages[k]
    uses = {
        b.get("id")
        for b in previous.get("content") or ()
        if isinstance(b, dict) and b.get("type") == "tool_use"
    }
    content = current.get("content")
    return (
        bool(uses)
        and isinstance(content, list)
        and any(
            isinstance(b, dict) and b.get("type") == "tool_result" and b.get("tool_use_id") in uses
            for b in content
        )
    )


def _unchanged(req: CompressRequest, anthropic: bool) -> dict[str, Any]:
    try:
        body: dict[str, Any] = {"messages": req.messages}
        if req.has_system:
            body["system"] = req.system
        neutral = anthropic_neutral(body) if anthropic else req.messages
        tokens = get_tokenizer(req.model).count_messages(neutral)
    except Exception:  # a body we cannot even count: 0, the reply still goes out
        tokens = 0
    out: dict[str, Any] = {"messages": req.messages, "before": tokens, "after": tokens}
    out["transforms"] = ()
    if req.has_system:
        out["system"] = req.system
    return out


def _record(
    state: State, req: CompressRequest, out: dict[str, Any], failures: list[str], started: float
) -> None:
    extra: dict[str, Any] = {
        "api": "/v1/compress",
        "latency_ms": round(1000 * (time.perf_counter() - started), 3),
    }
    if failures:
        extra["failures"] = failures
    try:
        provider = provider_for_model(req.model)
        state.sink.write(
            priced_record(
                provider,
                model=req.model,
                mode="optimize",
                tokens_before=out["before"],
                tokens_after=out["after"],
                tokens_output=None,
                cached_tokens=None,
                source="server",
                transforms=tuple(out["transforms"]),
                extra=extra,
            )
        )
    except Exception as exc:  # observer boundary: the answer goes out without its record
        state.sink.warn(exc, "cannot build the metrics record")
    metrics = state.metrics
    elapsed = time.perf_counter() - started
    metrics.latency.labels("compress").observe(elapsed)
    metrics.overhead.labels("compress").observe(elapsed)
    metrics.requests.labels("compress", "optimize", "200").inc()
    metrics.tokens_before.labels("compress").inc(out["before"])
    metrics.tokens_after.labels("compress").inc(out["after"])
    if failures:
        metrics.failures.labels("compress").inc()


def run_retrieve(
    state: State, ref: Any, query: Any, store: OriginalStore | None = None
) -> tuple[int, dict[str, Any]]:
    """(status, body) for a retrieve request, read from ``store`` (default: the server's)."""
    store = state.originals if store is None else store
    if not is_ref(ref):
        message = f"ref: expected {REF_LENGTH} lowercase hexadecimal characters, got {ref!r}"
        return 400, {"error": {"type": "invalid_request", "message": message}}
    if query is not None and not isinstance(query, str):
        return 400, {"error": {"type": "invalid_request", "message": "query: expected a string"}}
    found = store.get(ref)
    if found is not None and in_a_namespace(found.text):
        found = None  # another namespace's: asked for without x-headroom-namespace
    if found is None:
        message = f"no original stored under ref {ref!r} (unknown, or evicted)"
        return 404, {"error": {"type": "not_found", "message": message}}
    text = retrieve(ref, query, store=store)
    return 200, {
        "ref": ref,
        "hash": ref,
        "original_content": text,
        "query": query,
        "tool_name": found.tool,
        "kind": found.kind,
        "size": found.size,
    }


__all__ = ["BadRequest", "CompressRequest", "read_compress", "run_compress", "run_retrieve"]

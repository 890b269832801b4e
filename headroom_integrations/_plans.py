"""What to send for one OpenAI chat or Anthropic Messages request, from its body.

Shared by the SDK wrapper (``HeadroomClient``, where the body is the ``create`` keyword
arguments) and the server (where it is the JSON the caller posted): one implementation of
request planning. Nothing here imports an SDK or a web framework.

Each function returns the :class:`~headroom_integrations._client_core.Plan` (None: a body the
provider must judge, forwarded as it is) and the body to send: the caller's own object when
nothing changed, else a new dict with the compressed ``messages`` (and ``system``).
"""

from __future__ import annotations

import logging
from typing import Any

from headroom_core.boundary import fail_open
from headroom_core.errors import InputError
from headroom_core.messages import from_anthropic, to_anthropic

from ._client_core import CallOptions, ClientEngine, Plan, plain, readable_messages
from ._usage import as_int

logger = logging.getLogger("headroom_integrations")
_UNREAD = "the request goes out unchanged, unrecorded"
_UNCHANGED = "the request goes out unchanged"


def plan_chat(
    engine: ClientEngine, body: dict[str, Any], options: CallOptions, api: str
) -> tuple[Plan | None, dict[str, Any]]:
    """An OpenAI Chat Completions body. A call the API itself will reject (no model or
    messages) is forwarded as it is, unrecorded, so the provider says what is wrong."""
    model = body.get("model")
    if not isinstance(model, str) or "messages" not in body:
        return None, body
    messages = body["messages"]
    if not readable_messages(messages):
        return None, body
    if not isinstance(messages, list):
        try:  # any iterable is accepted by the SDK; read it once, forward the list
            messages = body["messages"] = list(messages)
        except TypeError:
            return None, body
    reply = as_int(body.get("max_completion_tokens")) or as_int(body.get("max_tokens"))
    tools = body.get("tools")
    plan = engine.prepare(
        plain(messages),
        model=model,
        tools=tools if isinstance(tools, list) else None,
        options=options,
        reply_tokens=reply,
        api=api,
    )
    if plan.messages is not None:
        body = {**body, "messages": plan.messages}
    return plan, body


def plan_messages(
    engine: ClientEngine,
    body: dict[str, Any],
    options: CallOptions,
    api: str,
    *,
    record_unreadable: bool = False,
) -> tuple[Plan | None, dict[str, Any]]:
    """An Anthropic Messages body (``system`` + ``messages``), compressed through the neutral
    format and back with tool_use / tool_result blocks kept paired. A body we cannot read
    goes out as given (logged; recorded as a failure with ``record_unreadable``)."""
    model = body.get("model")
    request = _anthropic_request(body) if "messages" in body else None
    if not isinstance(model, str) or request is None:
        return None, body  # the provider says what is missing
    # A body we cannot read (a block missing a field, a value JSON cannot hold, ...) goes
    # out as given and the API judges it.
    recorded = record_unreadable and options.mode != "off"
    failures: list[str] = []
    action = _UNCHANGED if recorded else _UNREAD
    with fail_open("client", failures, let_through=(), log=logger, action=action) as outcome:
        neutral, _ = from_anthropic(request)
        origins = _assistant_origins(request["messages"], neutral)
    if outcome.failed:
        if not recorded:
            return None, body
        plan = Plan(model=model, mode=options.mode, api=api)
        engine.fail(plan, failures)
        return plan, body
    tools = body.get("tools")
    plan = engine.prepare(
        neutral,
        model=model,
        tools=tools if isinstance(tools, list) else None,
        options=options,
        reply_tokens=as_int(body.get("max_tokens")),
        api=api,
    )
    if plan.messages is not None:
        with fail_open("client", failures, let_through=(), log=logger, action=_UNCHANGED):
            body = with_anthropic_messages(body, plan.messages, origins)
        if failures:
            engine.fail(plan, failures)
    return plan, body


def _anthropic_request(body: dict[str, Any]) -> dict[str, Any] | None:
    """The part of the body we read: ``messages`` and ``system`` (when it is given)."""
    messages = body.get("messages")
    if not readable_messages(messages):
        return None
    if not isinstance(messages, list):
        try:
            messages = body["messages"] = list(messages)  # type: ignore[arg-type]
        except TypeError:
            return None
    request: dict[str, Any] = {"messages": plain(messages)}
    if isinstance(body.get("system"), (str, list)):
        request["system"] = plain(body["system"])
    return request


def _assistant_origins(sent: list[Any], neutral: list[dict[str, Any]]) -> dict[int, Any]:
    """Each neutral assistant message (by identity) -> the caller's Anthropic message it came
    from: one for one, in order."""
    theirs = [m for m in sent if m.get("role") == "assistant"]
    ours = [m for m in neutral if m.get("role") == "assistant"]
    return {id(n): m for n, m in zip(ours, theirs, strict=True)}


def with_anthropic_messages(
    body: dict[str, Any], messages: list[dict[str, Any]], origins: dict[int, Any]
) -> dict[str, Any]:
    """The body with the compressed messages. An assistant turn no transform changed goes out
    as the caller's own object (block order, thinking signatures and all); the neutral form
    would put its tool_use blocks last."""
    converted = to_anthropic(messages)
    assistants = iter([m for m in messages if m.get("role") == "assistant"])
    rebuilt = [
        origins.get(id(next(assistants)), m) if m["role"] == "assistant" else m
        for m in converted["messages"]
    ]
    if not rebuilt or rebuilt[0].get("role") != "user":
        raise InputError("the compressed request would not start with a user turn")
    out = {k: v for k, v in body.items() if k != "system"}
    out["messages"] = rebuilt
    if "system" in converted:
        out["system"] = converted["system"]
    elif "system" in body and not isinstance(body["system"], (str, list)):
        out["system"] = body["system"]  # an SDK sentinel (omit): forwarded as given
    return out


def anthropic_neutral(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The neutral messages of an Anthropic body (``system`` first)."""
    request = _anthropic_request(body)
    if request is None:
        raise InputError("an Anthropic request body needs a 'messages' list")
    messages, _ = from_anthropic(request)
    return messages


__all__ = ["anthropic_neutral", "plan_chat", "plan_messages", "with_anthropic_messages"]

"""The two provider APIs the server speaks, as data: where to send, how to plan, how to read
usage and the model's ``headroom_retrieve`` calls, and how to answer them (one registry
entry per API, :data:`WIRES`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from headroom_core.ccr import (
    RETRIEVE_MAX_TOKENS,
    RETRIEVE_TOOL_NAME,
    OriginalStore,
    retrieve,
    retrieve_tool_definition,
)

from .._client_core import CallOptions, ClientEngine, Plan, Usage
from .._plans import plan_chat, plan_messages
from .._usage import anthropic_fold, anthropic_usage, openai_fold, openai_usage

_REF_RE = re.compile(r'ref=([0-9a-f]{32})\b|"ref":\s*"([0-9a-f]{32})"')


@dataclass(frozen=True, slots=True)
class Call:
    """One ``headroom_retrieve`` call the model made."""

    id: str
    ref: str | None
    query: str | None
    offset: Any = None  # as the model passed them; retrieve() checks and explains
    limit: Any = None


def answer(call: Call, store: OriginalStore) -> str:
    """What the tool returns for ``call`` (a message for the model, never an exception)."""
    if call.ref is None:
        return '[headroom: headroom_retrieve expects {"ref": "<32 hex characters>"}]'
    # capped and paged: the answer goes into the model's context
    return retrieve(
        call.ref,
        call.query,
        store=store,
        offset=call.offset or 0,
        limit=call.limit,
        max_tokens=RETRIEVE_MAX_TOKENS,
    )


def _call(call_id: Any, args: Any) -> Call:
    if isinstance(args, str):
        try:
            args = orjson.loads(args or "{}")
        except orjson.JSONDecodeError:
            args = {}
    if not isinstance(args, dict):
        args = {}
    ref, query = args.get("ref"), args.get("query")
    return Call(
        str(call_id),
        ref if isinstance(ref, str) else None,
        query if isinstance(query, str) and query.strip() else None,
        args.get("offset"),
        args.get("limit"),
    )


def refs_in(value: Any) -> list[str]:
    """Refs named by markers anywhere in ``value`` (strings, lists, dicts), in order, once."""
    seen: dict[str, None] = {}

    def walk(v: Any) -> None:
        if isinstance(v, str):
            if "ref" in v:
                for m in _REF_RE.finditer(v):
                    seen.setdefault(m.group(1) or m.group(2))
        elif isinstance(v, dict):
            for child in v.values():
                walk(child)
        elif isinstance(v, list):
            for child in v:
                walk(child)

    walk(value)
    return list(seen)


class StreamReader(Protocol):
    """Reads one streamed reply event by event."""

    def feed(self, event: dict[str, Any]) -> bool:
        """True once the reply is the caller's (text, or a tool other than ours)."""
        ...

    def calls(self) -> list[Call] | None:
        """Our calls, when the reply made only those (read at the end of the stream)."""
        ...

    def message(self) -> dict[str, Any]:
        """The reply as an assistant message to append to the conversation."""
        ...


@dataclass(frozen=True, slots=True)
class Wire:
    """One provider API. ``upstream``: the path appended to the configured base URL."""

    name: str
    path: str
    upstream: str
    tool_format: str
    plan: Callable[
        [ClientEngine, dict[str, Any], CallOptions, str], tuple[Plan | None, dict[str, Any]]
    ]
    usage: Callable[[Any], Usage | None]
    fold: Callable[[Usage, Any], Usage]
    tool_name: Callable[[Any], Any]
    retrieve_calls: Callable[[dict[str, Any]], list[Call] | None]
    reply_message: Callable[[dict[str, Any]], dict[str, Any]]
    append: Callable[[dict[str, Any], dict[str, Any], list[tuple[Call, str]]], dict[str, Any]]
    answer_pending: Callable[[dict[str, Any], Callable[[Call], str]], dict[str, Any]]
    stream_reader: Callable[[], StreamReader]
    error_body: Callable[[int, str], dict[str, Any]]

    def with_tool(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with the headroom_retrieve tool added (itself when it is already there)."""
        tools = body.get("tools")
        tools = list(tools) if isinstance(tools, list) else []
        if any(self.tool_name(t) == RETRIEVE_TOOL_NAME for t in tools):
            return body
        return {**body, "tools": [*tools, retrieve_tool_definition(self.tool_format)]}  # type: ignore[arg-type]


def _messages(body: dict[str, Any]) -> list[Any]:
    messages = body.get("messages")
    return messages if isinstance(messages, list) else []


# -- OpenAI Chat Completions ----------------------------------------------------------------


def _openai_tool_name(tool: Any) -> Any:
    fn = tool.get("function") if isinstance(tool, dict) else None
    return fn.get("name") if isinstance(fn, dict) else None


def _openai_calls(reply: dict[str, Any]) -> list[Call] | None:
    choices = reply.get("choices")
    if not isinstance(choices, list) or len(choices) != 1:
        return None
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    if not isinstance(calls, list) or not calls:
        return None
    if any(_openai_tool_name(c) != RETRIEVE_TOOL_NAME for c in calls):
        return None
    return [_call(c.get("id"), (c.get("function") or {}).get("arguments")) for c in calls]


def _openai_reply_message(reply: dict[str, Any]) -> dict[str, Any]:
    message = reply["choices"][0]["message"]
    return {
        "role": "assistant",
        "content": message.get("content"),
        "tool_calls": message["tool_calls"],
    }


def _openai_append(
    body: dict[str, Any], message: dict[str, Any], answers: list[tuple[Call, str]]
) -> dict[str, Any]:
    results = [{"role": "tool", "tool_call_id": c.id, "content": text} for c, text in answers]
    return {**body, "messages": [*_messages(body), message, *results]}


def _openai_pending(body: dict[str, Any], answer_fn: Callable[[Call], str]) -> dict[str, Any]:
    """Our calls in earlier assistant turns that the caller left unanswered, answered (after
    the caller's own results for that turn)."""
    messages = _messages(body)
    out: list[Any] = []
    changed = False
    i = 0
    while i < len(messages):
        m = messages[i]
        out.append(m)
        i += 1
        calls = (
            m.get("tool_calls") if isinstance(m, dict) and m.get("role") == "assistant" else None
        )
        ours = [c for c in calls or () if _openai_tool_name(c) == RETRIEVE_TOOL_NAME]
        if not ours:
            continue
        answered = set()
        while i < len(messages) and _is_tool(messages[i]):
            answered.add(messages[i].get("tool_call_id"))
            out.append(messages[i])
            i += 1
        for c in ours:
            if c.get("id") not in answered:
                call = _call(c.get("id"), (c.get("function") or {}).get("arguments"))
                out.append({"role": "tool", "tool_call_id": call.id, "content": answer_fn(call)})
                changed = True
    return {**body, "messages": out} if changed else body


def _is_tool(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "tool"


class _OpenAIStream:
    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def feed(self, event: dict[str, Any]) -> bool:
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {} if isinstance(choice, dict) else {}
            if delta.get("content") or delta.get("refusal"):
                return True
            for tc in delta.get("tool_calls") or ():
                slot = self._calls.setdefault(
                    tc.get("index", 0), {"id": "", "name": "", "args": ""}
                )
                slot["id"] = tc.get("id") or slot["id"]
                fn = tc.get("function") or {}
                if fn.get("name"):
                    slot["name"] += fn["name"]
                    if slot["name"] != RETRIEVE_TOOL_NAME:
                        return True
                slot["args"] += fn.get("arguments") or ""
        return False

    def calls(self) -> list[Call] | None:
        if not self._calls or any(s["name"] != RETRIEVE_TOOL_NAME for s in self._calls.values()):
            return None
        return [_call(s["id"], s["args"]) for _, s in sorted(self._calls.items())]

    def message(self) -> dict[str, Any]:
        calls = [
            {
                "id": s["id"],
                "type": "function",
                "function": {"name": s["name"], "arguments": s["args"]},
            }
            for _, s in sorted(self._calls.items())
        ]
        return {"role": "assistant", "content": None, "tool_calls": calls}


def _openai_error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "headroom_error", "param": None, "code": status}}


# -- Anthropic Messages ---------------------------------------------------------------------


def _anthropic_tool_name(tool: Any) -> Any:
    return tool.get("name") if isinstance(tool, dict) else None


def _tool_uses(content: Any) -> Iterator[dict[str, Any]]:
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and block.get("type") == "tool_use":
            yield block


def _anthropic_calls(reply: dict[str, Any]) -> list[Call] | None:
    uses = list(_tool_uses(reply.get("content")))
    if not uses or any(u.get("name") != RETRIEVE_TOOL_NAME for u in uses):
        return None
    return [_call(u.get("id"), u.get("input")) for u in uses]


def _anthropic_reply_message(reply: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": reply["content"]}


def _results(answers: list[tuple[Call, str]]) -> list[dict[str, Any]]:
    return [{"type": "tool_result", "tool_use_id": c.id, "content": text} for c, text in answers]


def _anthropic_append(
    body: dict[str, Any], message: dict[str, Any], answers: list[tuple[Call, str]]
) -> dict[str, Any]:
    turn = {"role": "user", "content": _results(answers)}
    return {**body, "messages": [*_messages(body), message, turn]}


def _anthropic_pending(body: dict[str, Any], answer_fn: Callable[[Call], str]) -> dict[str, Any]:
    messages = _messages(body)
    out: list[Any] | None = None
    for i, m in enumerate(messages[:-1]):
        if not isinstance(m, dict) or m.get("role") != "assistant":
            continue
        ours = [u for u in _tool_uses(m.get("content")) if u.get("name") == RETRIEVE_TOOL_NAME]
        nxt = messages[i + 1]
        if not ours or not isinstance(nxt, dict) or nxt.get("role") != "user":
            continue
        content = nxt.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        answered = {
            b.get("tool_use_id")
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "tool_result"
        }
        missing = [u for u in ours if u.get("id") not in answered]
        if not missing:
            continue
        answers = [(c, answer_fn(c)) for c in (_call(u.get("id"), u.get("input")) for u in missing)]
        if out is None:
            out = list(messages)
        out[i + 1] = {**nxt, "content": [*_results(answers), *blocks]}
    return body if out is None else {**body, "messages": out}


class _AnthropicStream:
    def __init__(self) -> None:
        self._blocks: dict[int, dict[str, Any]] = {}

    def feed(self, event: dict[str, Any]) -> bool:
        kind = event.get("type")
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") != "tool_use" or block.get("name") != RETRIEVE_TOOL_NAME:
                return True  # text, thinking or another tool: the caller's reply
            self._blocks[event.get("index", 0)] = {**block, "input": "", "_json": ""}
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            slot = self._blocks.get(event.get("index", 0))
            if slot is not None and delta.get("type") == "input_json_delta":
                slot["_json"] += delta.get("partial_json") or ""
        return False

    def calls(self) -> list[Call] | None:
        if not self._blocks:
            return None
        return [_call(b.get("id"), b["_json"] or "{}") for _, b in sorted(self._blocks.items())]

    def message(self) -> dict[str, Any]:
        content = []
        for call, (_, b) in zip(self.calls() or (), sorted(self._blocks.items()), strict=False):
            args = {"ref": call.ref} if call.ref else {}
            if call.query:
                args["query"] = call.query
            content.append(
                {"type": "tool_use", "id": b.get("id"), "name": b.get("name"), "input": args}
            )
        return {"role": "assistant", "content": content}


def _anthropic_error(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "api_error", "message": message}}


def _plan_messages(
    engine: ClientEngine, body: dict[str, Any], options: CallOptions, api: str
) -> tuple[Plan | None, dict[str, Any]]:
    return plan_messages(engine, body, options, api, record_unreadable=True)


OPENAI = Wire(
    name="openai",
    path="/v1/chat/completions",
    upstream="/chat/completions",
    tool_format="openai",
    plan=plan_chat,
    usage=openai_usage,
    fold=openai_fold,
    tool_name=_openai_tool_name,
    retrieve_calls=_openai_calls,
    reply_message=_openai_reply_message,
    append=_openai_append,
    answer_pending=_openai_pending,
    stream_reader=_OpenAIStream,
    error_body=_openai_error,
)
ANTHROPIC = Wire(
    name="anthropic",
    path="/v1/messages",
    upstream="/v1/messages",
    tool_format="anthropic",
    plan=_plan_messages,
    usage=anthropic_usage,
    fold=anthropic_fold,
    tool_name=_anthropic_tool_name,
    retrieve_calls=_anthropic_calls,
    reply_message=_anthropic_reply_message,
    append=_anthropic_append,
    answer_pending=_anthropic_pending,
    stream_reader=_AnthropicStream,
    error_body=_anthropic_error,
)
#: name -> wire
WIRES: dict[str, Wire] = {w.name: w for w in (OPENAI, ANTHROPIC)}

__all__ = ["ANTHROPIC", "OPENAI", "WIRES", "Call", "StreamReader", "Wire", "answer", "refs_in"]

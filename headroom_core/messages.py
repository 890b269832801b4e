"""The neutral message model: OpenAI chat format as plain dicts.

A message is ``{"role": ..., "content": str | list[part] | None, ...}`` with
``tool_calls`` on assistant messages and ``tool_call_id`` on tool messages.
A *tool unit* is an assistant message with tool calls plus every tool message
that answers it; compression and trimming keep a unit whole.

Anthropic Messages convert to and from this model without loss (see
:func:`from_anthropic` / :func:`to_anthropic`).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import InputError, PairingError

Message = dict[str, Any]
#: Private key on a neutral assistant message converted from Anthropic whose text blocks
#: follow a tool_use: the blocks' order, restored by :func:`to_anthropic`.
BLOCK_ORDER_KEY = "_anthropic_order"
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(frozen=True, slots=True)
class ToolUnit:
    """An assistant message at ``call_index`` and the tool results that answer it."""

    call_index: int
    result_indices: tuple[int, ...]
    tool_call_ids: tuple[str, ...]

    @property
    def indices(self) -> tuple[int, ...]:
        return (self.call_index, *self.result_indices)


def content_text(message: Mapping[str, Any]) -> str:
    """The text of a message's content (text parts joined by newlines)."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "\n".join(texts)


def tool_call_ids(message: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(c.get("id", "")) for c in message.get("tool_calls") or ())


def tool_name_for(messages: Sequence[Mapping[str, Any]], index: int) -> str | None:
    """The function name of the call that tool message ``index`` answers."""
    call_id = messages[index].get("tool_call_id")
    for j in range(index - 1, -1, -1):
        for call in messages[j].get("tool_calls") or ():
            if call.get("id") == call_id:
                name = (call.get("function") or {}).get("name")
                return str(name) if name is not None else None
    name = messages[index].get("name")
    return str(name) if name is not None else None


def check_messages(messages: Any) -> list[Message]:
    """Check the shape of a message list and return it as a list; InputError names the
    message index and the field that is wrong. Checked: a list of dicts with a known role;
    ``content`` a string, a list of parts or null; ``tool_calls`` a list of calls, each
    with a string ``id`` and a ``function`` holding a string ``name`` and ``arguments``;
    ``tool_call_id`` and ``name`` strings."""
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        raise InputError(f"messages must be a list of dicts, got {type(messages).__name__}")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise InputError(f"messages[{i}] must be a dict, got {type(m).__name__}")
        role = m.get("role")
        if role not in ROLES:
            raise InputError(f"messages[{i}] has unknown role {role!r}")
        _check_fields(m, f"messages[{i}]")
    return list(messages)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_fields(m: Mapping[str, Any], where: str) -> None:
    content = m.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise InputError(
            f"{where}.content must be a string, a list of parts or null, got {_kind(content)}"
        )
    for key in ("tool_call_id", "name"):
        if key in m and not isinstance(m[key], str) and not (key == "name" and m[key] is None):
            raise InputError(f"{where}.{key} must be a string, got {_kind(m[key])}")
    calls = m.get("tool_calls")
    if calls is None:
        return
    if not isinstance(calls, list):
        raise InputError(f"{where}.tool_calls must be a list, got {_kind(calls)}")
    for k, call in enumerate(calls):
        at = f"{where}.tool_calls[{k}]"
        if not isinstance(call, Mapping):
            raise InputError(f"{at} must be a dict, got {_kind(call)}")
        if not isinstance(call.get("id"), str):
            raise InputError(f"{at}.id must be a string, got {_kind(call.get('id'))}")
        fn = call.get("function")
        if not isinstance(fn, Mapping):
            raise InputError(f"{at}.function must be a dict, got {_kind(fn)}")
        for key in ("name", "arguments"):
            if not isinstance(fn.get(key), str):
                raise InputError(f"{at}.function.{key} must be a string, got {_kind(fn.get(key))}")


def find_tool_units(messages: Sequence[Mapping[str, Any]]) -> list[ToolUnit]:
    """Every assistant tool-call message with the indices of its results."""
    units = []
    for i, m in enumerate(messages):
        ids = tool_call_ids(m) if m.get("role") == "assistant" else ()
        if not ids:
            continue
        wanted = set(ids)
        results = []
        for j in range(i + 1, len(messages)):
            other = messages[j]
            if other.get("role") != "tool":
                break
            if other.get("tool_call_id") in wanted:
                results.append(j)
        units.append(ToolUnit(i, tuple(results), ids))
    return units


def validate_pairing(messages: Sequence[Mapping[str, Any]], *, allow_pending: bool = False) -> None:
    """Raise :class:`PairingError` naming the first message that breaks tool pairing.

    Rules (OpenAI's): the results of an assistant's tool calls follow it directly,
    one tool message per call id; a tool message answers a call of the
    assistant message just before its run of tool messages. With
    ``allow_pending`` the last assistant message may still wait for results.
    """
    open_ids: dict[str, int] = {}
    for i, m in enumerate(messages):
        role = m.get("role")
        if role == "tool":
            call_id = m.get("tool_call_id")
            if call_id not in open_ids:
                raise PairingError(
                    f"messages[{i}] is a tool result for {call_id!r}, which no preceding "
                    "assistant message called (or which was already answered)",
                    index=i,
                )
            del open_ids[call_id]
            continue
        if open_ids:
            first = min(open_ids.values())
            raise PairingError(
                f"messages[{first}] calls tool(s) {sorted(open_ids)} whose results do not "
                f"follow it (messages[{i}] with role {role!r} comes first)",
                index=first,
            )
        if role == "assistant":
            ids = tool_call_ids(m)
            if len(set(ids)) != len(ids):
                raise PairingError(f"messages[{i}] repeats a tool call id: {list(ids)}", index=i)
            open_ids = dict.fromkeys(ids, i)
    if open_ids and not allow_pending:
        first = min(open_ids.values())
        raise PairingError(
            f"messages[{first}] calls tool(s) {sorted(open_ids)} that have no result",
            index=first,
        )


def pairing_is_valid(messages: Sequence[Mapping[str, Any]], *, allow_pending: bool = False) -> bool:
    try:
        validate_pairing(messages, allow_pending=allow_pending)
    except PairingError:
        return False
    return True


# --- Anthropic Messages <-> neutral ---------------------------------------------------------

_TOOL_RESULT_KEYS = ("type", "tool_use_id", "content")
_TOOL_USE_KEYS = ("type", "id", "name", "input")


def _dumps_args(value: Any) -> str:
    """A tool_use ``input`` as OpenAI-style arguments. Non-finite floats (NaN, Infinity),
    which JSON cannot carry and orjson would turn into null, are written the way the SDKs'
    encoder (Python's json) sends them, so the round trip is exact."""
    if _has_non_finite(value):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return orjson.dumps(value).decode()


def _loads_args(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # NaN / Infinity, as _dumps_args wrote them


def _has_non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return True
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def _field(block: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in block:
        raise InputError(f"{where}: a {block.get('type')} block needs {key!r}")
    return block[key]


def from_anthropic(body: Mapping[str, Any]) -> tuple[list[Message], dict[str, Any]]:
    """Split an Anthropic request body into neutral messages and the other fields.

    ``system`` becomes a leading system message; ``tool_use`` blocks become
    ``tool_calls``; each ``tool_result`` block becomes a ``tool`` message (its
    other keys, e.g. ``is_error`` and ``cache_control``, kept on that message).
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("messages"), list):
        raise InputError("an Anthropic request body needs a 'messages' list")
    rest = {k: copy.deepcopy(v) for k, v in body.items() if k not in ("messages", "system")}
    out: list[Message] = []
    if "system" in body:
        out.append({"role": "system", "content": copy.deepcopy(body["system"])})
    for i, msg in enumerate(body["messages"]):
        if not isinstance(msg, Mapping) or msg.get("role") not in ("user", "assistant"):
            raise InputError(f"messages[{i}] must be a user or assistant message")
        out.extend(_message_from_anthropic(msg, f"messages[{i}]"))
    return out, rest


def _message_from_anthropic(msg: Mapping[str, Any], where: str) -> list[Message]:
    role, content = msg["role"], copy.deepcopy(msg.get("content"))
    extra = {k: copy.deepcopy(v) for k, v in msg.items() if k not in ("role", "content")}
    if not isinstance(content, list):
        return [{"role": role, "content": content, **extra}]
    if role == "assistant":
        calls = []
        parts = []
        order = []  # "p" for a content part, "t" for a tool call: the blocks' own order
        for b, block in enumerate(content):
            if isinstance(block, dict) and block.get("type") == "tool_use":
                at = f"{where}.content[{b}]"
                call = {
                    "id": _field(block, "id", at),
                    "type": "function",
                    "function": {
                        "name": _field(block, "name", at),
                        "arguments": _dumps_args(_field(block, "input", at)),
                    },
                }
                call.update({k: v for k, v in block.items() if k not in _TOOL_USE_KEYS})
                calls.append(call)
                order.append("t")
            else:
                parts.append(block)
                order.append("p")
        out: Message = {"role": "assistant", "content": parts, **extra}
        if calls:
            out["tool_calls"] = calls
            if "".join(order) != "p" * len(parts) + "t" * len(calls):
                out[BLOCK_ORDER_KEY] = "".join(order)  # text after a tool_use: keep its place
        return [out]
    results: list[Message] = []
    parts = []
    for b, block in enumerate(content):
        if isinstance(block, dict) and block.get("type") == "tool_result":
            tool_msg: Message = {
                "role": "tool",
                "tool_call_id": _field(block, "tool_use_id", f"{where}.content[{b}]"),
                "content": block.get("content", ""),
            }
            tool_msg.update({k: v for k, v in block.items() if k not in _TOOL_RESULT_KEYS})
            if "content" not in block:
                tool_msg["_no_content"] = True
            results.append(tool_msg)
        else:
            parts.append(block)
    if parts or not results:
        results.append({"role": "user", "content": parts, **extra})
    return results


def to_anthropic(
    messages: Sequence[Mapping[str, Any]], rest: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Inverse of :func:`from_anthropic`: rebuild the request body.

    A run of tool messages and the user message right after it form one
    Anthropic user turn (tool results first, as the API requires). Several leading system
    messages become one ``system`` list of text blocks.
    """
    body: dict[str, Any] = {k: copy.deepcopy(v) for k, v in (rest or {}).items()}
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    start = 0
    while start < len(messages) and messages[start].get("role") == "system":
        start += 1
    if start == 1:
        body["system"] = copy.deepcopy(messages[0].get("content"))
    elif start > 1:  # e.g. a context-fitting note after the prompt: one system, in blocks
        body["system"] = [
            b for m in messages[:start] for b in _blocks(copy.deepcopy(m.get("content")))
        ]
    for original in messages[start:]:
        m: dict[str, Any] = copy.deepcopy(dict(original))
        role = m.pop("role")
        if role == "tool":
            pending.append(_tool_result_block(m))
            continue
        if role == "user" and pending:
            content = _blocks(m.pop("content"))
            out.append({"role": "user", "content": pending + content, **m})
            pending = []
            continue
        if pending:
            out.append({"role": "user", "content": pending})
            pending = []
        if role == "assistant" and "tool_calls" in m:
            calls = [_tool_use_block(c) for c in m.pop("tool_calls")]
            parts = _blocks(m.pop("content"))
            content = _in_order(parts, calls, m.pop(BLOCK_ORDER_KEY, None))
            out.append({"role": "assistant", "content": content, **m})
        elif role in ("user", "assistant"):
            out.append({"role": role, "content": m.pop("content", None), **m})
        else:
            raise InputError(f"role {role!r} has no Anthropic equivalent after the first message")
    if pending:
        out.append({"role": "user", "content": pending})
    body["messages"] = out
    return body


def _blocks(content: Any) -> list[Any]:
    """Content as a list of Anthropic blocks (OpenAI allows a plain string beside tool blocks)."""
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content)


def _in_order(parts: list[Any], calls: list[Any], order: Any) -> list[Any]:
    """Content parts and tool_use blocks in the order ``from_anthropic`` recorded (text
    after a tool_use stays after it); parts first, then calls, without a usable record."""
    if (
        not isinstance(order, str)
        or order.count("p") != len(parts)
        or order.count("t") != len(calls)
        or len(order) != len(parts) + len(calls)
    ):
        return parts + calls
    it_parts, it_calls = iter(parts), iter(calls)
    return [next(it_parts) if kind == "p" else next(it_calls) for kind in order]


def _tool_result_block(m: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.pop("tool_call_id")}
    content = m.pop("content", "")
    if not m.pop("_no_content", False):
        block["content"] = content
    block.update(m)
    return block


def _tool_use_block(call: dict[str, Any]) -> dict[str, Any]:
    fn = call.pop("function")
    call.pop("type", None)
    block = {"type": "tool_use", "id": call.pop("id"), "name": fn["name"]}
    block["input"] = _loads_args(fn["arguments"])
    block.update(call)
    return block


__all__ = [
    "BLOCK_ORDER_KEY",
    "ROLES",
    "Message",
    "ToolUnit",
    "check_messages",
    "content_text",
    "find_tool_units",
    "from_anthropic",
    "pairing_is_valid",
    "to_anthropic",
    "tool_call_ids",
    "tool_name_for",
    "validate_pairing",
]

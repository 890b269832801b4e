"""LangChain messages <-> the core's neutral messages (OpenAI chat dicts), without loss.

``to_neutral`` gives the core what an OpenAI request would carry: ``role``, ``content``,
``name``, ``tool_calls`` (``function.arguments`` as JSON, the way LangChain's own
``convert_to_openai_messages`` writes them) and ``tool_call_id``. Everything else a
LangChain message holds (its class, ``id``, ``additional_kwargs``, ``response_metadata``,
``usage_metadata``, ``invalid_tool_calls``, a ToolMessage's ``status`` and ``artifact``,
extra and private fields) rides along under ONE private key, ``"_lc"``, a dict::

    {"type": "tool", "message": <_Carried: the original message>}

``message`` is a ``str`` subclass that serialises as ``""`` and holds the original
message: the core copies it through untouched and counts no tokens for it, and whatever
the core serialises (the context fitter keeps dropped messages as JSON so the model can
retrieve them) never sees a ToolMessage's artifact or provider metadata, which are not
meant for the model and need not be JSON at all.

``from_neutral`` gives a copy of the original message with the neutral fields set from the
dict (so content the core compressed comes back compressed, every other field as before);
unchanged messages come back equal, field by field. A dict without ``_lc`` (the core's own
fitting note, or anything written by hand) becomes the plain LangChain message of its
role, through LangChain's ``convert_to_messages``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.messages.tool import default_tool_parser

__all__ = ["LC_KEY", "from_neutral", "to_neutral"]

#: The one private key of a neutral dict that holds the LangChain-only fields.
LC_KEY = "_lc"

# ChatMessage roles the core knows as conversation text; any other role is sent to the
# core as "user" (text it never changes) and keeps its real role under _lc.
_CHAT_ROLES = frozenset({"system", "developer", "user", "assistant"})


class _Carried(str):
    """One original LangChain message, riding through the core inside ``_lc``.

    A ``str`` whose value is empty, so JSON encoders (``json``, ``orjson``) write ``""``
    and the token counter, which reads only top-level string values, never reaches it.
    Two carriers are equal when what they carry is equal.
    """

    message: BaseMessage
    calls: list[dict[str, Any]] | None  # the neutral tool_calls to_neutral wrote

    def __new__(cls, message: BaseMessage, calls: list[dict[str, Any]] | None) -> _Carried:
        self = super().__new__(cls, "")
        self.message, self.calls = message, calls
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # copy / deepcopy / pickle keep the payload
        return (_Carried, (self.message, self.calls))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Carried):
            return self.message == other.message and self.calls == other.calls
        return NotImplemented

    __hash__ = str.__hash__  # all carriers hash alike, consistent with __eq__

    def __repr__(self) -> str:
        return f"<LangChain {type(self.message).__name__}>"


# --- to the core -----------------------------------------------------------------------------


def to_neutral(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """The neutral (OpenAI chat) form of LangChain messages, one dict per message.

    The input is not mutated; values are shared, not copied. Raises ``TypeError`` for
    anything that is not a ``BaseMessage`` (use ``convert_to_messages`` first).
    """
    return [_message_to_neutral(m, i) for i, m in enumerate(messages)]


def _message_to_neutral(message: BaseMessage, index: int) -> dict[str, Any]:
    if not isinstance(message, BaseMessage):
        raise TypeError(
            f"to_neutral: messages[{index}] must be a LangChain BaseMessage, got "
            f"{type(message).__name__} (convert it with langchain_core.messages."
            "convert_to_messages first)"
        )
    out: dict[str, Any] = {"role": _role(message), "content": message.content}
    if message.name is not None:
        out["name"] = message.name
    calls = None
    if isinstance(message, AIMessage):
        calls = _openai_tool_calls(message)
        if calls:
            out["tool_calls"] = calls
    elif isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
    out[LC_KEY] = {"type": message.type, "message": _Carried(message, calls)}
    return out


def _role(message: BaseMessage) -> str:
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, SystemMessage):
        developer = message.additional_kwargs.get("__openai_role__") == "developer"
        return "developer" if developer else "system"
    if isinstance(message, ToolMessage):
        return "tool"
    if isinstance(message, FunctionMessage):
        return "function"
    if isinstance(message, ChatMessage) and message.role in _CHAT_ROLES:
        return message.role
    return "user"  # other ChatMessage roles, unknown message classes: text the core keeps


def _openai_tool_calls(message: AIMessage) -> list[dict[str, Any]]:
    """Valid then invalid tool calls, as langchain-openai sends them."""
    calls = [
        {
            "id": tc.get("id"),
            "type": "function",
            "function": {"name": tc["name"], "arguments": _dumps(tc.get("args", {}))},
        }
        for tc in message.tool_calls
    ]
    calls.extend(
        {
            "id": itc.get("id"),
            "type": "function",
            "function": {"name": itc.get("name") or "", "arguments": itc.get("args") or ""},
        }
        for itc in message.invalid_tool_calls
    )
    return calls


def _dumps(args: Any) -> str:
    # What LangChain's convert_to_openai_messages writes; a non-JSON value as its str.
    return json.dumps(args, ensure_ascii=False, default=str)


# --- back from the core ----------------------------------------------------------------------


def from_neutral(messages: Iterable[Mapping[str, Any]]) -> list[BaseMessage]:
    """LangChain messages from neutral dicts: the inverse of :func:`to_neutral`.

    ``from_neutral(to_neutral(m)) == m`` for every message. A dict whose ``content`` (or
    ``name``, ``tool_call_id``, ``tool_calls``) was changed comes back with the new value
    and every other field as before. Like ``to_neutral``, it shares values (a shallow copy
    of each original message), it does not deep-copy them.
    """
    return [_message_from_neutral(d) for d in messages]


def _message_from_neutral(d: Mapping[str, Any]) -> BaseMessage:
    lc = d.get(LC_KEY)
    carried = lc.get("message") if isinstance(lc, Mapping) else None
    if not isinstance(carried, _Carried):
        plain = {k: v for k, v in d.items() if k != LC_KEY}
        return convert_to_messages([plain])[0]
    original = carried.message
    content = d.get("content")
    update: dict[str, Any] = {"content": "" if content is None else content, "name": d.get("name")}
    if isinstance(original, ToolMessage):
        update["tool_call_id"] = d.get("tool_call_id")
    if isinstance(original, AIMessage):
        calls = d.get("tool_calls") or []
        emitted = carried.calls or []
        if not (calls is emitted or calls == emitted):  # changed: parse them as LangChain does
            update["tool_calls"], update["invalid_tool_calls"] = default_tool_parser(calls)
    # A shallow copy, as LangChain's own message utilities make: nothing is re-validated, so
    # every field the core did not touch is the original value itself.
    return original.model_copy(update=update)

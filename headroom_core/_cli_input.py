"""Reading what the ``headroom`` command is given: messages, a request body, or a tool output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from .errors import InputError
from .messages import Message, check_messages, from_anthropic, to_anthropic

Kind = Literal["messages", "openai", "anthropic", "tool-output"]
_ANTHROPIC_BLOCKS = frozenset({"tool_use", "tool_result", "text", "image", "thinking"})
_TOOL_OUTPUT_CALL = "call_headroom_input"


@dataclass(slots=True)
class Payload:
    """A parsed input: neutral messages plus what it takes to write it back in its own form."""

    kind: Kind
    messages: list[Message]
    rest: dict[str, Any] = field(default_factory=dict)
    model: str | None = None

    def render(self, messages: list[Message]) -> Any:
        if self.kind == "messages":
            return messages
        if self.kind == "openai":
            return {**self.rest, "messages": messages}
        if self.kind == "anthropic":
            return to_anthropic(messages, self.rest)
        return messages[-1]["content"]


def example_history() -> list[Message]:
    """The agent history bundled with the package (used when no FILE is given)."""
    text = resources.files("headroom_core").joinpath("data/example_history.json").read_text("utf-8")
    loaded: list[Message] = json.loads(text)
    return loaded


def parse_payload(text: str, *, as_kind: str = "auto") -> Payload:
    """Parse input text. Raises InputError with one line saying what is wrong."""
    if as_kind == "tool-output":
        return _tool_output(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "use --as tool-output to compress a raw tool output such as a log"
        ) from None
    if as_kind == "auto":
        as_kind = _guess(data)
    if as_kind == "messages":
        return Payload("messages", check_messages(data))
    if as_kind in ("openai", "anthropic"):
        if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
            raise InputError(f"an {as_kind} request body must be an object with a 'messages' list")
        model = data.get("model") if isinstance(data.get("model"), str) else None
        if as_kind == "anthropic":
            msgs, rest = from_anthropic(data)
            return Payload("anthropic", check_messages(msgs), rest, model)
        rest = {k: v for k, v in data.items() if k != "messages"}
        return Payload("openai", check_messages(data["messages"]), rest, model)
    return _tool_output(text)


def _guess(data: Any) -> str:
    if isinstance(data, list) and data and all(isinstance(m, dict) and "role" in m for m in data):
        return "messages"
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        if "system" in data or _has_anthropic_blocks(data["messages"]):
            return "anthropic"
        return "openai"
    return "tool-output"


def _has_anthropic_blocks(messages: list[Any]) -> bool:
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") in ("tool_use", "tool_result"):
                    return True
    return False


def _tool_output(text: str) -> Payload:
    messages: list[Message] = [
        {"role": "user", "content": "(tool output given to headroom)"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": _TOOL_OUTPUT_CALL,
                    "type": "function",
                    "function": {"name": "tool_output", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": _TOOL_OUTPUT_CALL, "content": text},
    ]
    return Payload("tool-output", messages)

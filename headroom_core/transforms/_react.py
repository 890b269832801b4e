"""ReAct observations: tool output that a ReAct agent sends as plain text.

A ReAct agent (LlamaIndex ``ReActAgent``, LangChain's classic ReAct prompts) writes its
tool call as assistant text (``Thought: ...\\nAction: <tool>\\nAction Input: {...}``) and
the tool's output as the next message, ``Observation: <output>``, in the user role by
default (LlamaIndex's ``observation_role``) or the tool role. The text after
``Observation:`` is a tool output like any other: it is compressed by the same
compressors under the same safety rules, the ``Observation:`` prefix stays as it was,
and it never serves as the user's question for relevance ranking.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..messages import Message

__all__ = ["OBSERVATION", "action_name", "is_observation", "observation_start"]

OBSERVATION = "Observation:"
_ACTION = re.compile(r"^[ \t]*Action:[ \t]*([^\s`'\"]+)", re.MULTILINE)


def _text(message: Message) -> str | None:
    content = message.get("content")
    return content if isinstance(content, str) else None


def action_name(messages: Sequence[Message], index: int) -> str | None:
    """The tool named by the ``Action:`` line of the assistant message before ``index``."""
    if index <= 0 or messages[index - 1].get("role") != "assistant":
        return None
    text = _text(messages[index - 1])
    found = _ACTION.findall(text) if text else []
    return found[-1] if found else None


def observation_start(messages: Sequence[Message], index: int) -> int | None:
    """Where the tool output starts in ``messages[index]`` when it is a ReAct observation
    (user- or tool-role text ``Observation: ...`` right after an assistant ``Action:``
    message), else None."""
    message = messages[index]
    if message.get("role") not in ("user", "tool"):
        return None
    text = _text(message)
    if text is None:
        return None
    body = text.lstrip()
    if not body.startswith(OBSERVATION) or action_name(messages, index) is None:
        return None
    start = len(text) - len(body) + len(OBSERVATION)
    return start + 1 if text[start : start + 1] == " " else start


def is_observation(messages: Sequence[Message], index: int) -> bool:
    """Whether ``messages[index]`` is a ReAct observation (see :func:`observation_start`)."""
    return observation_start(messages, index) is not None

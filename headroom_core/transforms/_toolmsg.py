"""Helpers shared by transforms that rewrite tool outputs (and only tool outputs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..messages import Message, tool_name_for

TOOL_ROLES = frozenset({"tool", "function"})


def tool_texts(messages: list[Message]) -> Iterator[tuple[int, int | None, str]]:
    """(message index, part index or None, text) for every text of every tool message."""
    for i, m in enumerate(messages):
        if m.get("role") not in TOOL_ROLES:
            continue
        content = m.get("content")
        if isinstance(content, str):
            yield i, None, content
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "text":
                    text = part.get("text")
                    if isinstance(text, str):
                        yield i, j, text


def rewrite_tool_texts(
    messages: list[Message],
    rewrite: Callable[[str, str | None], str | None],
    skip_tools: frozenset[str] = frozenset(),
) -> list[Message]:
    """Apply ``rewrite(text, tool_name)`` to tool texts; None means keep. Never mutates input.

    Returns ``messages`` itself when nothing changed, so callers can tell.
    """
    out: list[Message] | None = None
    for i, j, text in tool_texts(messages):
        name = tool_name_for(messages, i)
        if name is not None and name in skip_tools:
            continue
        new = rewrite(text, name)
        if new is None or new == text:
            continue
        if out is None:
            out = list(messages)
        msg = dict(out[i])
        if j is None:
            msg["content"] = new
        else:
            parts: list[Any] = list(msg["content"])
            parts[j] = {**parts[j], "text": new}
            msg["content"] = parts
        out[i] = msg
    return messages if out is None else out

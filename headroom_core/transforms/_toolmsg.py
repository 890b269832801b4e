"""Helpers shared by transforms that rewrite tool outputs (and only tool outputs).

A tool output is the content of an OpenAI ``tool`` (or legacy ``function``) message, an
Anthropic ``tool_result`` block inside a user message (so Anthropic-shaped message lists
work without conversion), or the text after ``Observation:`` in a ReAct observation (see
:mod:`._react`; the prefix is kept). Nothing else is ever handed to a rewrite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..boundary import fail_open
from ..ccr._tool import RETRIEVE_TOOL_NAME
from ..messages import Message, tool_name_for
from ._react import action_name, is_observation, observation_start

TOOL_ROLES = frozenset({"tool", "function"})


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a tool text sits: message, Anthropic block (or None), text part (or None);
    ``start``: where the output begins in a ReAct observation's text (after the prefix)."""

    message: int
    block: int | None
    part: int | None
    start: int = 0


def _parts(content: Any) -> Iterator[tuple[int | None, str]]:
    if isinstance(content, str):
        yield None, content
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "text":
                text = part.get("text")
                if isinstance(text, str):
                    yield j, text


def tool_texts(messages: list[Message]) -> Iterator[tuple[Slot, str]]:
    """(slot, text) for every text of every tool output."""
    for i, m in enumerate(messages):
        role = m.get("role")
        start = observation_start(messages, i)
        if start is not None:
            yield Slot(i, None, None, start), m["content"][start:]
        elif role in TOOL_ROLES:
            for j, text in _parts(m.get("content")):
                yield Slot(i, None, j), text
        elif role == "user" and isinstance(m.get("content"), list):
            for b, block in enumerate(m["content"]):
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    for j, text in _parts(block.get("content")):
                        yield Slot(i, b, j), text


def _anthropic_tool_name(messages: list[Message], index: int, block: int) -> str | None:
    use_id = messages[index]["content"][block].get("tool_use_id")
    for j in range(index - 1, -1, -1):
        content = messages[j].get("content")
        if messages[j].get("role") == "assistant" and isinstance(content, list):
            for b in content:
                if isinstance(b, dict) and b.get("type") == "tool_use" and b.get("id") == use_id:
                    name = b.get("name")
                    return str(name) if name is not None else None
    return None


def preceding_user_text(messages: list[Message], index: int) -> str | None:
    """The text of the last user message before ``index`` (what the tool call served).

    Used as the relevance query for a tool output so that the same message compresses
    the same way on every later turn (a stable, cacheable prefix)."""
    for j in range(index - 1, -1, -1):
        m = messages[j]
        if m.get("role") != "user" or is_observation(messages, j):
            continue
        content = m.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = "\n".join(
                str(p.get("text", ""))
                for p in content
                if isinstance(p, dict) and p.get("type") == "text"
            )
        else:
            text = ""
        if text.strip():
            return text.strip()
    return None


def _replace(content: Any, part: int | None, new: str) -> Any:
    if part is None:
        return new
    parts: list[Any] = list(content)
    parts[part] = {**parts[part], "text": new}
    return parts


def rewrite_tool_texts(
    messages: list[Message],
    rewrite: Callable[[str, str | None, int], str | None],
    skip_tools: frozenset[str] = frozenset(),
    *,
    failures: list[str] | None = None,
) -> list[Message]:
    """Apply ``rewrite(text, tool_name, message_index)`` to tool texts; None means keep.
    Never mutates input.

    ``failures`` given: each rewrite runs in its own fail-open boundary, so a tool output
    that cannot be handled stays as it is (the failure recorded there) and the others are
    still rewritten. Returns ``messages`` itself when nothing changed, so callers can tell.
    """
    out: list[Message] | None = None
    for slot, text in tool_texts(messages):
        i = slot.message
        if slot.start:
            name = action_name(messages, i)
        elif slot.block is None:
            name = tool_name_for(messages, i)
        else:
            name = _anthropic_tool_name(messages, i, slot.block)
        if name == RETRIEVE_TOOL_NAME or (name is not None and name in skip_tools):
            continue  # what the model fetched back is never cut again
        if failures is None:
            new = rewrite(text, name, i)
        else:
            new = None
            with fail_open(f"tool output of message {i} ({name or 'unnamed tool'})", failures):
                new = rewrite(text, name, i)
        if new is None or new == text:
            continue
        if out is None:
            out = list(messages)
        msg = dict(out[i])
        if slot.start:
            msg["content"] = msg["content"][: slot.start] + new
        elif slot.block is None:
            msg["content"] = _replace(msg["content"], slot.part, new)
        else:
            blocks = list(msg["content"])
            block = dict(blocks[slot.block])
            block["content"] = _replace(block.get("content"), slot.part, new)
            blocks[slot.block] = block
            msg["content"] = blocks
        out[i] = msg
    return messages if out is None else out


__all__ = ["Slot", "preceding_user_text", "rewrite_tool_texts", "tool_texts"]

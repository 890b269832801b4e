"""The fitter's note as part of the system message beside it, never a second one in a row.

A context fitter (``RollingWindow``, ``IntelligentContextManager``) stands for everything it
dropped with one system note (``[headroom: N earlier messages ...; ref=...]``), placed right
after the leading system prompt. Called directly, a fitter returns it as its own message (the
reference API's shape). :func:`~headroom_core.compress` joins it to the system message beside
it, after that message's own text (a text block of its own in a list content), so the
request it returns never has two system messages in a row (some providers and chat
templates reject that). The prompt's text is kept whole and first, so the cached prefix up
to its end is the same bytes.
"""

from __future__ import annotations

from ..messages import Message, content_text
from ._fit import MARKER_PREFIX

__all__ = ["NOTE_SEPARATOR", "join_fitting_note", "with_note"]

#: Between a system message's own text and the fitter's note added to it.
NOTE_SEPARATOR = "\n\n"
_SYSTEM = ("system", "developer")


def with_note(message: Message, note: str, *, first: bool = False) -> Message:
    """A copy of ``message`` with ``note`` added after its text (before it when ``first``):
    to a string with a blank line between, to a list of content blocks as a text block."""
    content = message.get("content")
    if isinstance(content, list):
        block = {"type": "text", "text": note}
        return {**message, "content": [block, *content] if first else [*content, block]}
    text = content if isinstance(content, str) else ""
    if not text:
        return {**message, "content": note}
    joined = note + NOTE_SEPARATOR + text if first else text + NOTE_SEPARATOR + note
    return {**message, "content": joined}


def _is_note(message: Message) -> bool:
    content = message.get("content")
    return (
        message.get("role") == "system"
        and isinstance(content, str)
        and content.startswith(MARKER_PREFIX)
        and "ref=" in content
    )


def join_fitting_note(messages: list[Message], start: int = 0) -> list[Message]:
    """``messages`` with the fitter's note (at ``start`` or later) joined to the system
    message before it (else after it), when that one is at ``start`` or later (a frozen
    prefix before ``start`` is never changed); ``messages`` itself when there is none."""
    for i in range(start, len(messages)):
        if not _is_note(messages[i]):
            continue
        note = content_text(messages[i])
        if i - 1 >= start and messages[i - 1].get("role") in _SYSTEM:
            return [*messages[: i - 1], with_note(messages[i - 1], note), *messages[i + 1 :]]
        if i + 1 < len(messages) and messages[i + 1].get("role") in _SYSTEM:
            joined = with_note(messages[i + 1], note, first=True)
            return [*messages[:i], joined, *messages[i + 2 :]]
        return messages
    return messages

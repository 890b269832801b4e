"""The adapters' last resort before a request is sent over its window: cap tool outputs.

Used only when the core's fitter raised :class:`~headroom_core.errors.BudgetError` (the
protected recent turns alone do not fit: typically the newest tool output, compressed,
is still larger than the window). Each tool output over ``cap`` tokens keeps its first
lines up to the cap and ends with a note naming a ref under which the whole output (as it
was about to be sent) is stored; ``headroom_retrieve`` reads it back, in pages. The rule
is per output and depends on nothing else, so the same output is cut the same way on
every later turn (a stable prefix), and the tool call keeps its result (the model is
never left without the answer to the call it made).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from headroom_core.ccr import OriginalStore, get_default_store
from headroom_core.messages import Message

__all__ = ["CAP_NOTE", "cap_tool_outputs"]

#: How a capped output's note starts.
CAP_NOTE = "[headroom: this tool output was cut to fit the context window"
_NOTE_TOKENS = 70


def _note(shown: int, total: int, unit: str, ref: str) -> str:
    return (
        f"{CAP_NOTE}: {shown} of {total} {unit} shown; the whole output is stored under "
        f"ref={ref}, headroom_retrieve returns it in pages]"
    )


def _head(text: str, room: int, count: Callable[[str], int]) -> tuple[str, int, int, str]:
    """(the first lines of ``text`` within ``room`` tokens, shown, total, unit name); a
    first line longer than ``room`` is cut by characters."""
    lines = text.splitlines(keepends=True)
    kept, used = 0, 0
    for line in lines:
        cost = count(line)
        if used + cost > room:
            break
        kept, used = kept + 1, used + cost
    if kept:
        return "".join(lines[:kept]), kept, len(lines), "lines"
    low, high = 0, len(text)
    while low < high:  # the longest prefix within room
        mid = (low + high + 1) // 2
        low, high = (mid, high) if count(text[:mid]) <= room else (low, mid - 1)
    return text[:low], low, len(text), "characters"


def _cut(
    text: str, cap: int, count: Callable[[str], int], store: OriginalStore, tool: str | None
) -> str | None:
    if count(text) <= cap:
        return None
    head, shown, total, unit = _head(text, max(1, cap - _NOTE_TOKENS), count)
    ref = store.put(text, tool=tool, kind="text")
    sep = "" if head.endswith("\n") or not head else "\n"
    return f"{head}{sep}{_note(shown, total, unit, ref)}"


def cap_tool_outputs(
    messages: Sequence[Message],
    cap: int,
    count: Callable[[str], int],
    *,
    store: OriginalStore | None = None,
    skip_tools: frozenset[str] = frozenset(),
) -> tuple[list[Message], int]:
    """``messages`` with every tool output (OpenAI ``tool`` messages, string or text-part
    content) over ``cap`` tokens cut to it, and how many were cut. New dicts where cut;
    the input is never mutated."""
    target = store if store is not None else get_default_store()
    names = _tool_names(messages)
    out: list[Message] = []
    cut = 0
    for m in messages:
        name = names.get(str(m.get("tool_call_id")))
        if m.get("role") != "tool" or name in skip_tools:
            out.append(m)
            continue
        content = m.get("content")
        if isinstance(content, str):
            new = _cut(content, cap, count, target, name)
            if new is not None:
                out.append({**m, "content": new})
                cut += 1
                continue
        elif isinstance(content, list):
            parts, changed = _cut_parts(content, cap, count, target, name)
            if changed:
                out.append({**m, "content": parts})
                cut += 1
                continue
        out.append(m)
    return out, cut


def _cut_parts(
    parts: list[Any], cap: int, count: Callable[[str], int], store: OriginalStore, tool: str | None
) -> tuple[list[Any], bool]:
    new_parts, changed = [], False
    for part in parts:
        text = part.get("text") if isinstance(part, dict) and part.get("type") == "text" else None
        new = _cut(text, cap, count, store, tool) if isinstance(text, str) else None
        new_parts.append(part if new is None else {**part, "text": new})
        changed = changed or new is not None
    return new_parts, changed


def _tool_names(messages: Sequence[Message]) -> dict[str, str]:
    """tool_call_id -> the tool's name, from the assistant messages' tool calls."""
    names: dict[str, str] = {}
    for m in messages:
        for c in m.get("tool_calls") or ():
            if isinstance(c, dict):
                fn = c.get("function") or {}
                names[str(c.get("id"))] = str(fn.get("name") if isinstance(fn, dict) else "")
    return names

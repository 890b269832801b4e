"""What the context fitters share: units, the protected part, quantised cuts, the marker.

A *unit* is what may be dropped as a whole: an assistant tool-call message with all its
results, or one turn's other messages (a user message and the assistant replies up to the
next user message or tool unit). System messages at the start, and the last
``keep_turns`` user turns (with any tool unit they touch), are protected.

Cuts are quantised: a fitter frees a multiple of ``quantum x budget`` tokens, so as a
conversation grows it is cut in a few steps and, between steps, the same messages are
dropped every turn (a byte-stable prefix for prompt caching).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from ..errors import BudgetError
from ..messages import Message, find_tool_units

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..tokens import Tokenizer

MARKER_PREFIX = "[headroom: "


@dataclass(frozen=True, slots=True)
class Unit:
    indices: tuple[int, ...]
    is_tool: bool
    tokens: int


@dataclass(frozen=True, slots=True)
class Layout:
    head: tuple[int, ...]  # leading system messages (kept)
    units: tuple[Unit, ...]  # droppable, oldest first
    tail: tuple[int, ...]  # protected recent turns (kept)


def layout(
    messages: Sequence[Message], tok: Tokenizer, keep_system: bool, keep_turns: int
) -> Layout:
    n = len(messages)
    head_end = 0
    if keep_system:
        while head_end < n and messages[head_end].get("role") in ("system", "developer"):
            head_end += 1
    users = [i for i in range(head_end, n) if messages[i].get("role") == "user"]
    if keep_turns > 0 and users:
        tail_start = users[-min(keep_turns, len(users))]
    else:  # no turn to keep whole: still keep the last message
        tail_start = max(head_end, n - 1)
    tool_of: dict[int, tuple[int, ...]] = {}
    for u in find_tool_units(messages):
        for i in u.indices:
            tool_of[i] = u.indices
    while tail_start > head_end and tail_start in tool_of and tool_of[tail_start][0] < tail_start:
        tail_start = tool_of[tail_start][0]  # never split a tool unit at the boundary
    units: list[Unit] = []
    i = head_end
    while i < tail_start:
        if i in tool_of and tool_of[i][0] == i:
            idx = tuple(j for j in tool_of[i] if j < tail_start)
            units.append(Unit(idx, True, sum(tok.count_message(messages[j]) for j in idx)))
            i = idx[-1] + 1
            continue
        j = i + 1
        while j < tail_start and messages[j].get("role") != "user" and j not in tool_of:
            j += 1
        idx = tuple(range(i, j))
        units.append(Unit(idx, False, sum(tok.count_message(messages[k]) for k in idx)))
        i = j
    return Layout(tuple(range(head_end)), tuple(units), tuple(range(tail_start, n)))


def quantised_need(total: int, budget: int, quantum: float) -> int:
    """Tokens to free: what is over the budget, rounded up to a multiple of the quantum."""
    step = max(1, int(budget * quantum))
    return math.ceil((total - budget) / step) * step


def marker_message(dropped: Sequence[Message], store: OriginalStore, tool_units: int) -> Message:
    ref = store.put(orjson.dumps(list(dropped)).decode(), kind="messages")
    calls = f", {tool_units} of them tool calls with their results" if tool_units else ""
    text = (
        f"{MARKER_PREFIX}{len(dropped)} earlier messages{calls} were left out to fit the context "
        f"window; ref={ref}. Call headroom_retrieve with this ref to read them.]"
    )
    return {"role": "user", "content": text}


def assemble(
    messages: Sequence[Message], lay: Layout, dropped: set[int], store: OriginalStore
) -> list[Message]:
    """Head, one marker for everything dropped, then what is kept, in order."""
    gone = [messages[i] for i in sorted(dropped)]
    kept = [messages[i] for u in lay.units for i in u.indices if i not in dropped]
    tool_units = sum(1 for u in lay.units if u.is_tool and u.indices[0] in dropped)
    out = [messages[i] for i in lay.head]
    if gone:
        out.append(marker_message(gone, store, tool_units))
    return out + kept + [messages[i] for i in lay.tail]


def budget_error(protected: int, budget: int, window: int, buffer: int) -> BudgetError:
    return BudgetError(
        f"the protected part of the request (system prompt, recent turns and the marker "
        f"for dropped messages) is {protected} tokens, over the budget of {budget} "
        f"({window} window - {buffer} output buffer); "
        "raise the window, lower preserve_recent_turns / output_buffer_tokens, or shorten "
        "the system prompt",
        protected_tokens=protected,
        budget_tokens=budget,
    )

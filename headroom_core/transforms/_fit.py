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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from ..errors import BudgetError
from ..messages import Message, find_tool_units

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import IntelligentContextConfig, RollingWindowConfig
    from ..tokens import Tokenizer

MARKER_PREFIX = "[headroom: "
#: Tokens reserved for the one marker message that stands for everything dropped.
MARKER_ALLOWANCE = 60


@dataclass(frozen=True, slots=True)
class Protection:
    """What a fitter never drops, and how it cuts: one meaning for both fitters' settings
    (``RollingWindowConfig.preserve_recent_turns`` is ``IntelligentContextConfig.keep_last_turns``,
    ``preserve_recent_tool_units`` is ``keep_last_tool_units``: the reference names both)."""

    keep_system: bool
    keep_turns: int
    keep_tool_units: int
    output_buffer_tokens: int
    cut_quantum: float


def protection(cfg: RollingWindowConfig | IntelligentContextConfig) -> Protection:
    """The :class:`Protection` a fitter's config sets."""
    from ..config import RollingWindowConfig

    if isinstance(cfg, RollingWindowConfig):
        turns, units = cfg.preserve_recent_turns, cfg.preserve_recent_tool_units
    else:
        turns, units = cfg.keep_last_turns, cfg.keep_last_tool_units
    return Protection(cfg.keep_system, turns, units, cfg.output_buffer_tokens, cfg.cut_quantum)


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


def layout(messages: Sequence[Message], tok: Tokenizer, keep: Protection) -> Layout:
    """Split ``messages`` into the kept head, droppable units (oldest first) and the kept
    tail. The tail is the last ``keep.keep_turns`` user turns, except that tool units inside
    it older than its last ``keep.keep_tool_units`` are droppable too: one agent task is one
    user turn with many tool calls, and its oldest calls must be able to go."""
    keep_turns, keep_tool_units = keep.keep_turns, keep.keep_tool_units
    n = len(messages)
    head_end = 0
    if keep.keep_system:
        while head_end < n and messages[head_end].get("role") in ("system", "developer"):
            head_end += 1
    users = [i for i in range(head_end, n) if messages[i].get("role") == "user"]
    if keep_turns > 0 and users:
        tail_start = users[-min(keep_turns, len(users))]
    else:  # no turn to keep whole: still keep the last message
        tail_start = max(head_end, n - 1)
    tool_units = find_tool_units(messages)
    tool_of: dict[int, tuple[int, ...]] = {}
    for u in tool_units:
        for i in u.indices:
            tool_of[i] = u.indices
    while tail_start > head_end and tail_start in tool_of and tool_of[tail_start][0] < tail_start:
        tail_start = tool_of[tail_start][0]  # never split a tool unit at the boundary
    units = _units_before(messages, tok, head_end, tail_start, tool_of)
    in_tail = [u.indices for u in tool_units if u.call_index >= tail_start]
    loose = in_tail[: max(0, len(in_tail) - keep_tool_units)]
    units += [Unit(idx, True, sum(tok.count_message(messages[j]) for j in idx)) for idx in loose]
    loose_set = {i for idx in loose for i in idx}
    tail = tuple(i for i in range(tail_start, n) if i not in loose_set)
    return Layout(tuple(range(head_end)), tuple(units), tail)


def _units_before(
    messages: Sequence[Message],
    tok: Tokenizer,
    start: int,
    end: int,
    tool_of: dict[int, tuple[int, ...]],
) -> list[Unit]:
    units: list[Unit] = []
    i = start
    while i < end:
        if i in tool_of and tool_of[i][0] == i:
            idx = tuple(j for j in tool_of[i] if j < end)
            units.append(Unit(idx, True, sum(tok.count_message(messages[j]) for j in idx)))
            i = idx[-1] + 1
            continue
        j = i + 1
        while j < end and messages[j].get("role") != "user" and j not in tool_of:
            j += 1
        idx = tuple(range(i, j))
        units.append(Unit(idx, False, sum(tok.count_message(messages[k]) for k in idx)))
        i = j
    return units


def marker_message(dropped: Sequence[Message], store: OriginalStore, tool_units: int) -> Message:
    """A system note (never a user turn a model could take for the user speaking)."""
    # Private keys (an adapter's "_lc" bookkeeping) stay out of what the model can read back;
    # a value JSON cannot hold is stored as its text rather than failing the fit.
    public = [{k: v for k, v in m.items() if not k.startswith("_")} for m in dropped]
    ref = store.put(orjson.dumps(public, default=str).decode(), kind="messages")
    return {"role": "system", "content": marker_text(len(dropped), tool_units, ref)}


def marker_text(count: int, tool_units: int, ref: str) -> str:
    calls = f", {tool_units} of them tool calls with their results" if tool_units else ""
    return (
        f"{MARKER_PREFIX}{count} earlier messages{calls} were left out of this "
        f"conversation to fit the context window; the headroom_retrieve tool returns them "
        f"with ref={ref}]"
    )


def lead_with_user(messages: Sequence[Message], lay: Layout, dropped: set[int]) -> set[int]:
    """``dropped`` plus the droppable units that would otherwise come first after the cut
    without a user message: an answer whose question was dropped misleads any model, and
    the Anthropic API rejects a conversation that starts with an assistant turn."""
    if not dropped:
        return dropped
    out, tail = set(dropped), set(lay.tail)
    unit_of = {i: u.indices for u in lay.units for i in u.indices}
    for first in range(len(lay.head), len(messages)):
        if first in out:
            continue
        if messages[first].get("role") == "user" or first in tail or first not in unit_of:
            break
        out.update(unit_of[first])
    return out


def budget_error(
    protected: int, budget: int, window: int, buffer: int, settings: str
) -> BudgetError:
    return BudgetError(
        f"the protected part of the request (system prompt, recent turns and the marker "
        f"for dropped messages) is {protected} tokens, over the budget of {budget} "
        f"({window} window - {buffer} output buffer); raise the window, lower {settings}, "
        "or shorten the system prompt",
        protected_tokens=protected,
        budget_tokens=budget,
    )

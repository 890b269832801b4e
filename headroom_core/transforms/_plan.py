"""What a compaction plan is made of: settings, the plan itself, the history's model calls,
what is pinned, and the :class:`Planner` the fit step (:mod:`._fitting`) works on."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..messages import Message, content_text
from ._fit import Layout, Protection, Unit, lead_with_user

if TYPE_CHECKING:
    from ..billing import CacheRates
    from ..tokens import Tokenizer
    from ._supersede import Stale

_SUMMARY = re.compile(
    r"^\s*(?:This session is being continued from a previous conversation"
    r"|Here is a summary of the conversation to date"
    r"|\[headroom: summary)",
    re.IGNORECASE,
)

#: Droppable units in the order a fit drops them (the fitter's choice).
DropOrder = Callable[[Sequence[Message], list[Unit]], list[Unit]]
#: ``(messages, layout, dropped, tokenizer, room) -> dropped``: makes the kept part start
#: with a user message (``room``: tokens left under the target).
Widen = Callable[[list[Message], Layout, set[int], "Tokenizer", int], set[int]]


def widen_to_user(
    messages: list[Message], lay: Layout, dropped: set[int], tok: Tokenizer, room: int
) -> set[int]:
    return lead_with_user(messages, lay, dropped)


def oldest_first(messages: Sequence[Message], units: list[Unit]) -> list[Unit]:
    """Tool units oldest first, then the other units oldest first."""
    return [u for u in units if u.is_tool] + [u for u in units if not u.is_tool]


@dataclass(frozen=True, slots=True)
class Settings:
    budget: int | None  # tokens the request must fit (window - output buffer); None: no fit
    quantum: float  # a fit leaves the request at most (1 - quantum) x budget
    drop_quantum: float  # ... and at most (1 - drop_quantum) x budget when it drops units
    rates: CacheRates
    horizon: int
    min_saving: int
    collapse: bool
    floor: int  # min_output_tokens
    keep: Protection
    keep_first: float = 0.0  # share of the budget kept right after the task when dropping
    pin_task: bool = True  # False when the task is in a frozen prefix, not in these messages
    frozen: int = 0  # the first N messages are never touched
    window: int | None = None  # for the BudgetError message


@dataclass(slots=True)
class Plan:
    """What the request shows at the last compaction point."""

    collapsed: dict[int, Stale] = field(default_factory=dict)
    caps: dict[int, int] = field(default_factory=dict)  # tool message -> content token cap
    dropped: set[int] = field(default_factory=set)
    runs: list[tuple[int, ...]] = field(default_factory=list)  # dropped, one entry per drop
    frontier: int = 0  # tool outputs before it have been cut by a fit
    hosted: bool = True  # runs of dropped messages are named in place (False: one system note)
    points: list[tuple[int, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.collapsed or self.caps or self.dropped)


def boundaries(messages: Sequence[Message]) -> list[int]:
    """Where the agent called the model: before each assistant message that follows a user
    or tool message, and at the end."""
    n = len(messages)
    out = [
        j
        for j in range(1, n)
        if messages[j].get("role") == "assistant"
        and messages[j - 1].get("role") in ("user", "tool")
    ]
    out.append(n)
    return out


def pinned_indices(messages: Sequence[Message], keep_system: bool, task: bool = True) -> set[int]:
    """The leading system messages, the task (first user message) and summary messages."""
    pinned: set[int] = set()
    i = 0
    if keep_system:
        while i < len(messages) and messages[i].get("role") in ("system", "developer"):
            pinned.add(i)
            i += 1
    first = next((j for j, m in enumerate(messages) if m.get("role") == "user"), None)
    if task and first is not None:
        pinned.add(first)
    for j, m in enumerate(messages):
        if m.get("role") in ("user", "system") and _SUMMARY.match(content_text(m)[:200]):
            pinned.add(j)
    return pinned


class Planner(Protocol):
    """What the fit step reads and calls on the planner of one history."""

    msgs: list[Message]
    tok: Tokenizer
    s: Settings
    base: list[int]  # tokens of each message as first-sight compression left it
    content: list[int]  # tokens of each tool message's content (0 for the others)
    pinned: set[int]
    drop_order: DropOrder
    widen: Widen

    def eff(self, p: Plan, i: int) -> int: ...

    def total(self, p: Plan, end: int) -> int: ...

    def is_output(self, p: Plan, i: int) -> bool: ...

    def collapse(self, p: Plan, stale: Sequence[Stale], least: int) -> None: ...


__all__ = [
    "DropOrder",
    "Plan",
    "Planner",
    "Settings",
    "Widen",
    "boundaries",
    "oldest_first",
    "pinned_indices",
    "widen_to_user",
]

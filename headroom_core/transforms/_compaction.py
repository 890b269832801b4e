"""Compaction points: when a growing session is rewritten, and what the rewrite does.

``compress()`` is stateless: each call gets the whole history. So the points where the
history was rewritten are a pure function of the history itself. The requests an agent sent
end where a model call was made (:func:`boundaries`: before each assistant message that
follows a user or tool message, and at the end); :meth:`Compactor.plan` walks them in order
and decides at each one, from the messages before it only, whether it is a compaction
point. The plan at the last point is what the request shows; between two points every
request is the previous one plus the new messages, byte for byte, so the provider's prompt
cache holds all of it.

At a boundary, in order:

1. **Fit.** When the request is over its budget it is rewritten to fit ``(1 - quantum) x
   budget``: superseded outputs collapse to pointers; then tool outputs are cut (a *frontier*
   moves from the oldest uncut output forwards; the outputs it passes are cut to the largest
   equal share, at least ``min_output_tokens``, that fits); then every output is cut to that
   floor; then whole units are dropped (oldest first, or the fitter's order) behind one
   marker; then every output is cut to its note alone. Still over:
   :class:`~headroom_core.errors.BudgetError` (the system prompt, the pinned task and the
   user and assistant text of the protected turns alone exceed the budget).
2. **Collapse.** Otherwise, superseded outputs (:mod:`._supersede`) collapse to pointers
   when the tokens saved, read from the cache on each of ``horizon`` later requests, outweigh
   the one-time cost of writing the rewritten part again, and they are at least
   ``min_saving`` tokens: ``(horizon + 1) x cached x saved >= (write - cached) x rewritten``.

The task (the first user message) and summaries of earlier compactions are pinned like the
system prompt. Every pointer, cut and marker names a ref that retrieves the exact original.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..messages import Message, content_text, find_tool_units
from ..tokens import REPLY_PRIMING
from ._fit import Layout, Protection, Unit, budget_error, layout, lead_with_user
from ._supersede import Stale, find_stale

if TYPE_CHECKING:
    from ..billing import CacheRates
    from ..tokens import Tokenizer

MARKER_TOKENS = 70  # the one system note standing for dropped messages (upper bound)
NOTE_ONLY = 60  # content tokens of an output cut to its note alone (upper bound)
MIN_ITEM_SAVING = 16  # a pointer must save at least this much over what it replaces
_SUMMARY = re.compile(
    r"^\s*(?:This session is being continued from a previous conversation"
    r"|Here is a summary of the conversation to date"
    r"|\[headroom: summary)",
    re.IGNORECASE,
)
_SETTINGS = "the fitter's recent turns / tool units, output_buffer_tokens"

#: Droppable units in the order a fit drops them (the fitter's choice).
DropOrder = Callable[[Sequence[Message], list[Unit]], list[Unit]]


def oldest_first(messages: Sequence[Message], units: list[Unit]) -> list[Unit]:
    """Tool units oldest first, then the other units oldest first."""
    return [u for u in units if u.is_tool] + [u for u in units if not u.is_tool]


@dataclass(frozen=True, slots=True)
class Settings:
    budget: int | None  # tokens the request must fit (window - output buffer); None: no fit
    quantum: float  # a fit leaves the request at most (1 - quantum) x budget
    rates: CacheRates
    horizon: int
    min_saving: int
    collapse: bool
    floor: int  # min_output_tokens
    keep: Protection
    pin_task: bool = True  # False when the task is in a frozen prefix, not in these messages
    frozen: int = 0  # the first N messages are never touched
    window: int | None = None  # for the BudgetError message


@dataclass(slots=True)
class Plan:
    """What the request shows at the last compaction point."""

    collapsed: dict[int, Stale] = field(default_factory=dict)
    caps: dict[int, int] = field(default_factory=dict)  # tool message -> content token cap
    dropped: set[int] = field(default_factory=set)
    frontier: int = 0  # tool outputs before it have been cut by a fit
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


class Compactor:
    """Plans the compaction points of one history (see the module docstring)."""

    def __init__(
        self,
        messages: Sequence[Message],
        tokenizer: Tokenizer,
        settings: Settings,
        *,
        originals: Sequence[Message] | None = None,
        drop_order: DropOrder = oldest_first,
        protected: Sequence[int] = (),
        pointer_tokens: Callable[[Stale], int] | None = None,
    ) -> None:
        self.msgs = list(messages)
        self.tok = tokenizer
        self.s = settings
        self.drop_order = drop_order
        self.n = len(self.msgs)
        self.base = [tokenizer.count_message(m) for m in self.msgs]
        self.content = [
            tokenizer.count_text(content_text(m)) if m.get("role") == "tool" else 0
            for m in self.msgs
        ]
        self.pinned = pinned_indices(self.msgs, settings.keep.keep_system, settings.pin_task)
        self.pinned |= set(protected)
        wanted = settings.collapse or settings.budget is not None
        self.stale = find_stale(self.msgs, originals) if wanted else []
        self._pointer_tokens = pointer_tokens or (lambda s: 40)
        self._pointer_cache: dict[int, int] = {}

    # --- tokens under a plan ------------------------------------------------------------

    def pointer(self, stale: Stale) -> int:
        i = stale.index
        if i not in self._pointer_cache:
            self._pointer_cache[i] = self.base[i] - self.content[i] + self._pointer_tokens(stale)
        return self._pointer_cache[i]

    def eff(self, p: Plan, i: int) -> int:
        if i in p.dropped:
            return 0
        stale = p.collapsed.get(i)
        if stale is not None:
            return self.pointer(stale)
        cap = p.caps.get(i)
        if cap is not None and self.content[i] > cap:
            return self.base[i] - self.content[i] + cap
        return self.base[i]

    def total(self, p: Plan, end: int) -> int:
        marker = MARKER_TOKENS if any(i < end for i in p.dropped) else 0
        return REPLY_PRIMING + marker + sum(self.eff(p, i) for i in range(end))

    def _is_output(self, p: Plan, i: int) -> bool:
        return (
            self.msgs[i].get("role") == "tool"
            and i >= self.s.frozen
            and i not in p.dropped
            and i not in p.collapsed
        )

    # --- the walk -----------------------------------------------------------------------

    def plan(self) -> Plan:
        p = Plan()
        events = self.stale
        ev = 0
        pending: dict[int, Stale] = {}
        prev = 0
        total = REPLY_PRIMING
        for b in boundaries(self.msgs):
            total += sum(self.eff(p, i) for i in range(prev, b))
            while ev < len(events) and events[ev].at < b:
                if events[ev].index >= self.s.frozen:
                    pending[events[ev].index] = events[ev]
                ev += 1
            budget = self.s.budget
            if budget is not None and total > budget:
                total = self._fit(p, b, pending)
                p.points.append((b, "fit"))
            elif self.s.collapse and pending and self._worth(p, b, prev, pending):
                self._collapse(p, list(pending.values()), MIN_ITEM_SAVING)
                pending.clear()
                total = self.total(p, b)
                p.points.append((b, "collapse"))
            prev = b
        return p

    def _savings(self, p: Plan, stale: Sequence[Stale], least: int) -> dict[int, int]:
        out = {}
        for s in stale:
            if s.index in p.dropped or s.index in p.collapsed:
                continue
            gain = self.eff(p, s.index) - self.pointer(s)
            if gain >= least:
                out[s.index] = gain
        return out

    def _collapse(self, p: Plan, stale: Sequence[Stale], least: int) -> None:
        gains = self._savings(p, stale, least)
        for s in stale:
            if s.index in gains:
                p.collapsed[s.index] = s

    def _worth(self, p: Plan, b: int, prev: int, pending: dict[int, Stale]) -> bool:
        gains = self._savings(p, list(pending.values()), MIN_ITEM_SAVING)
        saved = sum(gains.values())
        if not gains or saved < self.s.min_saving:
            return False
        first = min(gains)
        rewritten = sum(self.eff(p, i) for i in range(first, prev))
        rewritten -= sum(g for i, g in gains.items() if i < prev)
        c, w = self.s.rates.cached, self.s.rates.write
        return (self.s.horizon + 1) * c * saved >= (w - c) * max(0, rewritten)

    # --- fitting ------------------------------------------------------------------------

    def _fit(self, p: Plan, b: int, pending: dict[int, Stale]) -> int:
        budget = self.s.budget
        assert budget is not None  # noqa: S101 - only called with a budget
        target = budget - int(budget * self.s.quantum)
        ahead = [s for s in pending.values() if s.index >= p.frontier]
        self._collapse(p, ahead, 1)
        for s in ahead:
            pending.pop(s.index, None)
        total = self.total(p, b)
        if total <= target:
            return total
        total = self._advance_frontier(p, b, total, target)
        if total <= target:
            return total
        for i in range(b):  # every output down to the floor, the newest included
            if self._is_output(p, i):
                p.caps[i] = min(p.caps.get(i, self.s.floor), self.s.floor)
        p.frontier = max(p.frontier, b)
        total = self.total(p, b)
        if total > target:
            total = self._drop(p, b, target)
        if total > budget:
            for i in range(b):
                if self._is_output(p, i):
                    p.caps[i] = NOTE_ONLY
            total = self.total(p, b)
        if total > budget:
            window = self.s.window if self.s.window is not None else budget
            buffer = self.s.keep.output_buffer_tokens
            raise budget_error(total, budget, window, buffer, _SETTINGS)
        return total

    def _advance_frontier(self, p: Plan, b: int, total: int, target: int) -> int:
        """Cut the outputs from the frontier on, as few as fit, to the largest equal share."""
        floor = self.s.floor
        outs = [i for i in range(max(p.frontier, self.s.frozen), b) if self._is_output(p, i)]
        gain = 0
        region: list[int] = []
        for i in outs:
            region.append(i)
            gain += self.eff(p, i) - self._capped(p, i, floor)
            if total - gain <= target:
                break
        else:
            return total  # not enough: the caller cuts everything to the floor
        rest = total - sum(self.eff(p, i) for i in region)
        lo, hi = floor, max(self.content[i] for i in region)
        while lo < hi:  # the largest cap that fits
            mid = (lo + hi + 1) // 2
            if rest + sum(self._capped(p, i, mid) for i in region) <= target:
                lo = mid
            else:
                hi = mid - 1
        for i in region:
            if self.content[i] > lo:
                p.caps[i] = lo
        p.frontier = region[-1] + 1
        return self.total(p, b)

    def _capped(self, p: Plan, i: int, cap: int) -> int:
        now = self.eff(p, i)
        return min(now, self.base[i] - self.content[i] + cap)

    def _drop(self, p: Plan, b: int, target: int) -> int:
        part = self.msgs[:b]
        lay = layout(part, self.tok, self.s.keep)
        units = [
            u
            for u in lay.units
            if not set(u.indices) & self.pinned
            and min(u.indices) >= self.s.frozen
            and not set(u.indices) <= p.dropped
        ]
        total = self.total(p, b)
        for unit in self.drop_order(part, units):
            if total <= target:
                break
            p.dropped.update(unit.indices)
            total = self.total(p, b)
        widened = lead_with_user(part, _keep_pinned(lay, self.pinned), set(p.dropped))
        p.dropped = widened
        for i in widened:
            p.collapsed.pop(i, None)
            p.caps.pop(i, None)
        return self.total(p, b)


def _keep_pinned(lay: Layout, pinned: set[int]) -> Layout:
    """The layout with pinned units moved to the tail (never widened into)."""
    units = tuple(u for u in lay.units if not set(u.indices) & pinned)
    moved = {i for u in lay.units if set(u.indices) & pinned for i in u.indices}
    tail = tuple(sorted(set(lay.tail) | moved))
    return Layout(lay.head, units, tail)


def dropped_tool_units(messages: Sequence[Message], dropped: set[int]) -> int:
    return sum(1 for u in find_tool_units(messages) if u.call_index in dropped)


__all__ = [
    "Compactor",
    "DropOrder",
    "Plan",
    "Settings",
    "boundaries",
    "dropped_tool_units",
    "oldest_first",
    "pinned_indices",
]

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

1. **Fit.** When the request is over its budget it is rewritten to fit: the new tool outputs
   are cut, or, when that is not enough, superseded outputs collapse, older outputs are cut,
   and only then are whole units dropped (:mod:`._fitting` has the steps). When what must
   be kept does not fit on its own: :class:`~headroom_core.errors.BudgetError`.
2. **Collapse.** Otherwise, superseded outputs (:mod:`._supersede`) collapse to pointers
   when the tokens saved, read from the cache on each of ``horizon`` later requests, outweigh
   the one-time cost of writing the rewritten part again, and they are at least
   ``min_saving`` tokens: ``(horizon + 1) x cached x saved >= (write - cached) x rewritten``.

The task (the first user message) and summaries of earlier compactions are pinned like the
system prompt. Every pointer, cut and marker names a ref that retrieves the exact original.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..messages import Message, content_text, find_tool_units
from ..tokens import REPLY_PRIMING
from ._fitting import cut_arrivals, dropped_overhead, fit
from ._plan import (
    DropOrder,
    Plan,
    Settings,
    Widen,
    boundaries,
    oldest_first,
    pinned_indices,
    widen_to_user,
)
from ._supersede import Stale, find_stale

if TYPE_CHECKING:
    from ..tokens import Tokenizer

MIN_ITEM_SAVING = 16  # a pointer must save at least this much over what it replaces


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
        widen: Widen = widen_to_user,
        protected: Sequence[int] = (),
        pointer_tokens: Callable[[Stale], int] | None = None,
    ) -> None:
        self.msgs = list(messages)
        self.tok = tokenizer
        self.s = settings
        self.drop_order = drop_order
        self.widen = widen
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
        runs = [kept for kept in (tuple(i for i in r if i < end) for r in p.runs) if kept]
        notes = dropped_overhead(self, self.msgs[:end], runs, p.hosted) if runs else 0
        return REPLY_PRIMING + notes + sum(self.eff(p, i) for i in range(end))

    def is_output(self, p: Plan, i: int) -> bool:
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
                cut = cut_arrivals(self, p, prev, b, total, budget - int(budget * self.s.quantum))
                if cut is not None:
                    total = cut
                    p.points.append((b, "cut new outputs"))
                else:
                    total = fit(self, p, b, pending)
                    p.points.append((b, "fit"))
            elif self.s.collapse and pending:
                chosen = self._worth(p, prev, pending)
                if chosen:
                    self.collapse(p, [pending.pop(i) for i in chosen], MIN_ITEM_SAVING)
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

    def collapse(self, p: Plan, stale: Sequence[Stale], least: int) -> None:
        gains = self._savings(p, stale, least)
        for s in stale:
            if s.index in gains:
                p.collapsed[s.index] = s

    def _worth(self, p: Plan, prev: int, pending: dict[int, Stale]) -> list[int]:
        """The pending outputs worth collapsing now: those from the start position that
        nets the most (saving on the later requests minus the cache write of everything
        from that position to the end of the previous request); none if nothing nets
        above zero with at least ``min_saving`` tokens saved."""
        for i in [i for i in pending if i in p.dropped or i in p.collapsed]:
            del pending[i]
        gains = self._savings(p, list(pending.values()), MIN_ITEM_SAVING)
        if sum(gains.values()) < self.s.min_saving:
            return []
        c, w = self.s.rates.cached, self.s.rates.write
        weight = (self.s.horizon + 1) * c
        starts = sorted(gains, reverse=True)  # latest start first
        best: tuple[float, int] | None = None
        saved = 0
        rewritten = 0  # tokens of [start, prev) after the collapse
        pos = prev
        for start in starts:
            if start < prev:
                rewritten += sum(self.eff(p, i) for i in range(start, pos)) - gains[start]
                pos = start
            saved += gains[start]
            net = weight * saved - (w - c) * rewritten
            if saved >= self.s.min_saving and net >= 0 and (best is None or net > best[0]):
                best = (net, start)
        if best is None:
            return []
        return sorted(i for i in gains if i >= best[1])


def dropped_tool_units(messages: Sequence[Message], dropped: set[int]) -> int:
    return sum(1 for u in find_tool_units(messages) if u.call_index in dropped)


__all__ = [
    "Compactor",
    "DropOrder",
    "Plan",
    "Settings",
    "Widen",
    "boundaries",
    "dropped_tool_units",
    "oldest_first",
    "pinned_indices",
    "widen_to_user",
]

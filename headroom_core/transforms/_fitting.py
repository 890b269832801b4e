"""Fitting a request at a compaction point (the fit step of :mod:`._compaction`).

In order, each step only when the one before was not enough to reach the target
(``(1 - quantum) x budget``):

1. superseded outputs from the cut frontier on collapse to pointers;
2. the *frontier* moves over the oldest uncut outputs after the early window, as few as
   fit, cutting them to the largest equal share that fits (at least ``floor`` tokens);
3. every output after the early window is cut to the floor;
4. only when that is still over the budget, whole units are dropped (the fitter's order,
   oldest first by default) down to a deeper target (``drop_quantum``: RollingWindow frees
   half the budget, so drops, which rewrite the most, come rarely), and the cut outputs
   still shown get back what room is left;
5. the early window is dropped too; every output is cut to its note alone; the dropped runs
   are named by one system note instead of in place; still over the budget:
   :class:`~headroom_core.errors.BudgetError`.

The *early window* is the run of units right after the task, up to ``keep_first`` of the
budget: kept while anything else can go, so a drop leaves the provider's cache the system
prompt, the task and that window (the drops happen after it).

Dropped messages leave one note per run, in place: the run's tool call with the smallest
call message is kept as it was and its result names the ref of the whole run (a run without
a tool call is named by a system note after the system prompt). So the request changes
from the run on, not from the top.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..messages import Message, ToolUnit, find_tool_units
from ._fit import Layout, Unit, budget_error, layout, marker_text

if TYPE_CHECKING:
    from ._plan import Plan, Planner
    from ._supersede import Stale

NOTE_ONLY = 60  # content tokens of an output cut to its note alone (upper bound)
_SETTINGS = "the fitter's recent turns / tool units, output_buffer_tokens"


@dataclass(frozen=True, slots=True)
class Region:
    """A run of dropped messages and the tool unit that carries its note (or None)."""

    indices: tuple[int, ...]
    host: ToolUnit | None


def regions(
    messages: Sequence[Message],
    runs: Sequence[Sequence[int]],
    base: Sequence[int],
    hosted: bool = True,
) -> list[Region]:
    """The notes for dropped messages: per drop (``runs``, in the order they were made),
    each stretch of consecutive indices with its host, the tool unit inside it whose call
    message is smallest (earliest on ties). A later drop next to an earlier one gets a note
    of its own, so the earlier note, and everything before it, stays as it was. Not
    ``hosted``: one region for everything, named by a system note."""
    if not runs:
        return []
    if not hosted:
        return [Region(tuple(sorted(i for run in runs for i in run)), None)]
    dropped = {i for run in runs for i in run}
    units = [u for u in find_tool_units(messages) if u.call_index in dropped]
    out: list[Region] = []
    for run_indices in runs:
        stretch: list[int] = []
        for i in sorted(run_indices):
            if stretch and i != stretch[-1] + 1:
                out.append(_region(stretch, units, base))
                stretch = []
            stretch.append(i)
        if stretch:
            out.append(_region(stretch, units, base))
    return out


def _region(run: list[int], units: list[ToolUnit], base: Sequence[int]) -> Region:
    inside = set(run)
    hosts = [u for u in units if set(u.indices) <= inside and u.result_indices]
    host = min(hosts, key=lambda u: (base[u.call_index], u.call_index)) if hosts else None
    return Region(tuple(run), host)


def hosted_note(count: int, calls: int, ref: str) -> str:
    return (
        f"[headroom: {count} messages ({calls} tool calls, this result too) left out here to "
        f"fit the context window; headroom_retrieve ref={ref}]"
    )


def extra_note(ref: str) -> str:
    return f"[headroom: left out; ref={ref}]"


_REF_TOKENS = 16  # a ref is 16 hex characters: at most one token each


def dropped_overhead(
    c: Planner, messages: Sequence[Message], runs: Sequence[Sequence[int]], hosted: bool = True
) -> int:
    """Tokens the notes for ``dropped`` add (host call messages and their note results, or
    the one system note), an upper bound."""
    total = 0
    loose: list[int] = []
    units = find_tool_units(messages)
    for region in regions(messages, runs, c.base, hosted):
        host = region.host
        if host is None:
            loose += region.indices
            continue
        calls = sum(1 for u in units if u.call_index in region.indices)
        total += c.base[host.call_index]
        for k, r in enumerate(host.result_indices):
            text = hosted_note(len(region.indices), calls, "") if k == 0 else extra_note("")
            total += c.base[r] - c.content[r] + c.tok.count_text(text) + _REF_TOKENS
    if loose:
        calls = sum(1 for u in units if u.call_index in loose)
        text = marker_text(len(loose), calls, "")
        total += c.tok.count_message({"role": "system", "content": text}) + _REF_TOKENS
    return total


def early_window(c: Planner, part: Sequence[Message], lay: Layout) -> list[Unit]:
    """The units right after the task, up to ``keep_first`` of the budget."""
    room = int((c.s.budget or 0) * c.s.keep_first)
    task = next((i for i, m in enumerate(part) if m.get("role") == "user"), None)
    if task is None or task not in c.pinned:
        return []
    out: list[Unit] = []
    for unit in lay.units:
        if unit.indices[0] <= task or set(unit.indices) & c.pinned:
            continue
        if room < unit.tokens:
            break
        out.append(unit)
        room -= unit.tokens
    return out


def widen_runs(
    messages: Sequence[Message], lay: Layout, dropped: set[int], tok: object, room: int
) -> set[int]:
    """``dropped`` plus every droppable answer (a unit of assistant replies, not a tool call)
    whose question (the last user message before it) is dropped: shown alone it would
    mislead."""
    out = set(dropped)
    for unit in lay.units:
        first = unit.indices[0]
        if unit.is_tool or first in out or messages[first].get("role") == "user":
            continue
        asked = max((j for j in range(first) if messages[j].get("role") == "user"), default=None)
        if asked is not None and asked in out:
            out.update(unit.indices)
    return out


def fit(c: Planner, p: Plan, b: int, pending: dict[int, Stale]) -> int:
    """Rewrite the request ending at ``b`` to fit (see the module docstring); its tokens."""
    budget = c.s.budget
    assert budget is not None  # noqa: S101 - only called with a budget
    target = budget - int(budget * c.s.quantum)
    p.hosted = True
    part = c.msgs[:b]
    lay = layout(part, c.tok, c.s.keep)
    early = early_window(c, part, lay)
    early_idx = {i for u in early for i in u.indices}
    after_early = max([0, *(u.indices[-1] + 1 for u in early)])
    start = max(p.frontier, after_early)
    ahead = [s for s in pending.values() if s.index >= start]
    c.collapse(p, ahead, 1)
    for s in ahead:
        pending.pop(s.index, None)
    total = c.total(p, b)
    if total <= target:
        return total
    total = _advance_frontier(c, p, b, start, total, target)
    if total <= target:
        return total
    for i in range(after_early, b):  # every output after the early window down to the floor
        if c.is_output(p, i) and c.content[i] > c.s.floor:
            p.caps[i] = min(p.caps.get(i, c.s.floor), c.s.floor)
    p.frontier = max(p.frontier, b)
    total = c.total(p, b)
    if total > budget:  # cutting is not enough: turns go, down to a deeper target
        deep = budget - int(budget * max(c.s.quantum, c.s.drop_quantum))
        total = _drop(c, p, b, lay, early_idx, deep)
        total = _relax(c, p, b, total, deep)
    if total > budget:  # last resorts: the early window; every output cut to its note;
        total = _drop(c, p, b, lay, set(), budget, units=early)  # one note, not in place
    if total > budget:
        for i in range(b):
            if c.is_output(p, i) and c.content[i] > NOTE_ONLY:
                p.caps[i] = NOTE_ONLY
        total = c.total(p, b)
    if total > budget:
        p.hosted = False
        total = c.total(p, b)
    if total > budget:
        window = c.s.window if c.s.window is not None else budget
        raise budget_error(total, budget, window, c.s.keep.output_buffer_tokens, _SETTINGS)
    return total


def cut_arrivals(c: Planner, p: Plan, prev: int, b: int, total: int, budget: int) -> int | None:
    """Fit by cutting only the outputs new since the previous request (``[prev, b)``), to the
    largest equal share, at least the floor: the cached prefix stays whole. None when that is
    not enough (a fit is needed)."""
    new = [i for i in range(max(prev, c.s.frozen), b) if c.is_output(p, i)]
    if not new:
        return None
    rest = total - sum(c.eff(p, i) for i in new)

    def size(cap: int) -> int:
        return rest + sum(_capped(c, p, i, cap) for i in new)

    lo = _largest(c.s.floor, max(c.content[i] for i in new), lambda cap: size(cap) <= budget)
    if lo is None:
        return None
    for i in new:
        if c.content[i] > lo:
            p.caps[i] = lo
    return c.total(p, b)


def _advance_frontier(c: Planner, p: Plan, b: int, start: int, total: int, target: int) -> int:
    """Cut the outputs from the frontier on, as few as fit, to the largest equal share."""
    floor = c.s.floor
    outs = [i for i in range(max(start, c.s.frozen), b) if c.is_output(p, i)]
    gain = 0
    region: list[int] = []
    for i in outs:
        region.append(i)
        gain += c.eff(p, i) - _capped(c, p, i, floor)
        if total - gain <= target:
            break
    else:
        return total  # not enough: the caller cuts everything to the floor
    rest = total - sum(c.eff(p, i) for i in region)
    top = max(c.content[i] for i in region)
    found = _largest(
        floor, top, lambda cap: rest + sum(_capped(c, p, i, cap) for i in region) <= target
    )
    lo = floor if found is None else found  # at the floor it fits: the loop above checked
    for i in region:
        if c.content[i] > lo:
            p.caps[i] = lo
    p.frontier = region[-1] + 1
    return c.total(p, b)


def _largest(lo: int, hi: int, fits: Callable[[int], bool]) -> int | None:
    """The largest value in ``lo..hi`` that ``fits`` (monotone: true up to some value),
    or None when even ``lo`` does not."""
    if not fits(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _capped(c: Planner, p: Plan, i: int, cap: int) -> int:
    return min(c.eff(p, i), c.base[i] - c.content[i] + cap)


def _relax(c: Planner, p: Plan, b: int, total: int, target: int) -> int:
    """After drops freed room: raise the caps of the cut outputs still shown, evenly, as
    far as the target allows (a dropped unit leaves the newest outputs room)."""
    cut = [i for i in p.caps if i < b and c.eff(p, i) < c.base[i]]
    if not cut or total >= target:
        return total
    rest = total - sum(c.eff(p, i) for i in cut)

    def size(level: int) -> int:
        return rest + sum(
            min(c.base[i], c.base[i] - c.content[i] + max(p.caps[i], level)) for i in cut
        )

    lo = _largest(
        min(p.caps[i] for i in cut),
        max(c.content[i] for i in cut),
        lambda level: size(level) <= target,
    )
    if lo is None:
        return total
    for i in cut:
        p.caps[i] = max(p.caps[i], lo)
        if p.caps[i] >= c.content[i]:
            del p.caps[i]  # whole again
    return c.total(p, b)


def _drop(
    c: Planner,
    p: Plan,
    b: int,
    lay: Layout,
    keep: set[int],
    target: int,
    units: Sequence[Unit] | None = None,
) -> int:
    """Drop units (the fitter's order; or ``units`` in order) until ``target`` holds."""
    part = c.msgs[:b]
    if units is None:
        units = c.drop_order(
            part,
            [
                u
                for u in lay.units
                if not set(u.indices) & (c.pinned | keep)
                and min(u.indices) >= c.s.frozen
                and not set(u.indices) <= p.dropped
            ],
        )
    before = set(p.dropped)
    earlier = list(p.runs)
    total = c.total(p, b)
    for unit in units:
        if total <= target:
            break
        p.dropped.update(unit.indices)
        p.runs = [*earlier, tuple(sorted(p.dropped - before))]
        total = c.total(p, b)
    shown = _kept(lay, c.pinned | keep)
    room = (c.s.budget or target) - total  # a restored question may use the quantum's room
    widened = c.widen(part, shown, set(p.dropped), c.tok, room)
    p.dropped = widen_runs(part, shown, widened, c.tok, room)
    added = tuple(sorted(p.dropped - before))
    p.runs = [*earlier, added] if added else earlier
    if added and earlier and c.total(p, b) > target:  # one note for all: fewer tokens
        p.runs = [tuple(sorted(p.dropped))]
    for i in added:
        p.collapsed.pop(i, None)
        p.caps.pop(i, None)
    return c.total(p, b)


def _kept(lay: Layout, kept: set[int]) -> Layout:
    """The layout with the units holding ``kept`` indices moved to the tail."""
    units = tuple(u for u in lay.units if not set(u.indices) & kept)
    moved = {i for u in lay.units if set(u.indices) & kept for i in u.indices}
    return Layout(lay.head, units, tuple(sorted(set(lay.tail) | moved)))


__all__ = [
    "Region",
    "dropped_overhead",
    "extra_note",
    "fit",
    "hosted_note",
    "regions",
    "widen_runs",
]

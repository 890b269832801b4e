"""What both context fitters run: plan the compaction points of a history, render the plan.

:func:`compact` is the whole step; :func:`settings_for` reads the fitter's config, the
compaction config and the model's cache prices into :class:`~._compaction.Settings`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..billing import CacheRates, rates_for_model
from ._compaction import Compactor
from ._fit import protection
from ._keep import KeepOrReport
from ._plan import DropOrder, Plan, Settings, Widen, oldest_first, widen_to_user
from ._render import Renderer

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import (
        CompactionConfig,
        IntelligentContextConfig,
        RollingWindowConfig,
        SmartCrusherConfig,
    )
    from ..messages import Message
    from ..tokens import Tokenizer
    from ._base import TransformContext


def rates(model: str, config: CompactionConfig) -> CacheRates:
    base = rates_for_model(model)
    cached = base.cached if config.cached_price_ratio is None else config.cached_price_ratio
    write = base.write if config.write_price_ratio is None else config.write_price_ratio
    return CacheRates(base.name, cached, write, base.min_prefix_tokens)


def settings_for(
    fitter: RollingWindowConfig | IntelligentContextConfig,
    compaction: CompactionConfig,
    model: str,
    window: int | None,
    *,
    pin_task: bool = True,
    drop_quantum: float = 0.0,
) -> Settings:
    """``drop_quantum``: the share of the budget a fit that drops whole units frees at
    least (RollingWindow: 0.5; the quantum when lower)."""
    keep = protection(fitter)
    return Settings(
        budget=None if window is None else window - keep.output_buffer_tokens,
        quantum=keep.cut_quantum,
        drop_quantum=drop_quantum,
        rates=rates(model, compaction),
        horizon=compaction.horizon_requests,
        min_saving=compaction.min_saving_tokens,
        collapse=compaction.enabled,
        floor=compaction.min_output_tokens,
        keep=keep,
        keep_first=compaction.keep_first_share,
        pin_task=pin_task,
        window=window,
    )


def fit_in_context(
    messages: list[Message],
    ctx: TransformContext,
    fitter: RollingWindowConfig | IntelligentContextConfig,
    store: OriginalStore,
    names: tuple[str, str],
    *,
    drop_order: DropOrder = oldest_first,
    widen: Widen = widen_to_user,
    protected: Sequence[int] = (),
    drop_quantum: float = 0.0,
    window: int | None = None,
) -> list[Message]:
    """A fitter's pipeline step: compact and fit ``messages`` as ``ctx`` says (window
    ``window`` or else ``ctx.max_tokens``, the model of ``ctx.tokenizer``,
    ``ctx.config.compaction``); record what it did; ``messages`` itself when nothing
    changes."""
    task_frozen = any(m.get("role") == "user" for m in ctx.prefix)
    settings = settings_for(
        fitter,
        ctx.config.compaction,
        ctx.tokenizer.model,
        window if window is not None else ctx.max_tokens,
        pin_task=not task_frozen,
        drop_quantum=drop_quantum,
    )
    out, plan = compact(
        messages,
        settings,
        ctx.tokenizer,
        store=KeepOrReport(store, ctx.failures),
        crusher=ctx.config.smart_crusher,
        query_for=lambda i: ctx.query_for(messages, i),
        originals=ctx.original,
        drop_order=drop_order,
        widen=widen,
        protected=protected,
    )
    if plan.empty:
        return messages
    for label in labels(plan, names):
        ctx.record(label)
    return out


def compact(
    messages: Sequence[Message],
    settings: Settings,
    tokenizer: Tokenizer,
    *,
    store: OriginalStore,
    crusher: SmartCrusherConfig,
    query_for: Callable[[int], str | None],
    originals: Sequence[Message] | None = None,
    drop_order: DropOrder = oldest_first,
    widen: Widen = widen_to_user,
    protected: Sequence[int] = (),
) -> tuple[list[Message], Plan]:
    """The request to send for ``messages`` and the plan it shows. ``originals``: the
    messages as the caller gave them (same length), stored under the refs."""
    originals = originals if originals is not None else messages
    renderer = Renderer(messages, originals, tokenizer, store, crusher, query_for)
    planner = Compactor(
        messages,
        tokenizer,
        settings,
        originals=originals,
        drop_order=drop_order,
        widen=widen,
        protected=protected,
        pointer_tokens=renderer.pointer_tokens,
    )
    plan = planner.plan()
    if plan.empty:
        return list(messages), plan
    return renderer.render(plan, planner.base), plan


def labels(plan: Plan, names: tuple[str, str]) -> list[str]:
    """What ``transforms_applied`` reports: ``superseded:N`` (outputs collapsed to
    pointers), then ``names`` = (dropped label, cut label) with the messages dropped and the
    outputs cut."""
    dropped, cut = names
    out = []
    if plan.collapsed:
        out.append(f"superseded:{len(plan.collapsed)}")
    if plan.caps:
        out.append(f"{cut}:{len(plan.caps)}")
    if plan.dropped:
        out.append(f"{dropped}:{len(plan.dropped)}")
    return out


__all__ = ["compact", "fit_in_context", "labels", "rates", "settings_for"]

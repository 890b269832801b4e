"""RollingWindow: fit a request into its token budget by dropping the oldest units.

Order: the oldest tool units first (an assistant tool call goes with all its results),
then the oldest turns. The system prompt, the user messages of the last
``preserve_recent_turns`` turns and their last ``preserve_recent_tool_units`` tool units are
never dropped (an agent task is one long turn: its older tool calls may go), and a cut
never leaves the kept part starting with an answer whose question is gone. Everything
dropped is replaced by ONE system note naming a ref under which the dropped messages are
stored (``headroom_retrieve`` reads them back). If the
protected part alone is over budget: :class:`~headroom_core.errors.BudgetError` with the
numbers, never an oversize request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, overload

from ..tokens import REPLY_PRIMING
from ._base import Transform, direct_context
from ._fit import (
    MARKER_ALLOWANCE,
    assemble,
    budget_error,
    layout,
    lead_with_user,
    protection,
    quantised_need,
)

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import RollingWindowConfig
    from ..messages import Message
    from ..tokens import Tokenizer
    from ._base import TransformContext


_SETTINGS = "preserve_recent_turns / preserve_recent_tool_units / output_buffer_tokens"


class RollingWindow(Transform):
    name = "rolling_window"

    def __init__(
        self, config: RollingWindowConfig | None = None, store: OriginalStore | None = None
    ) -> None:
        from ..config import RollingWindowConfig

        self.config = config or RollingWindowConfig()
        self._store = store

    @property
    def store(self) -> OriginalStore:
        if self._store is None:
            from ..ccr import get_default_store

            return get_default_store()
        return self._store

    @overload
    def apply(self, messages: list[Message], ctx: TransformContext) -> list[Message]: ...

    @overload
    def apply(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> list[Message]: ...

    def apply(
        self,
        messages: list[Message],
        ctx: TransformContext | None = None,
        *,
        max_tokens: int | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> list[Message]:
        """Fit ``messages`` into the window minus the output buffer; returns ``messages``
        itself when they fit. In a pipeline the window is ``ctx.max_tokens`` (None: no
        fitting); called directly, ``max_tokens`` (the reference API's
        ``window.apply(messages, max_tokens=100000)``). ``config.max_tokens``, when set,
        caps the window and stands in for a missing one."""
        cap = self.config.max_tokens
        if ctx is None:
            given = max_tokens if max_tokens is not None else cap
            ctx = direct_context("RollingWindow", max_tokens=given, tokenizer=tokenizer)
        window = ctx.max_tokens
        if cap is not None:
            window = cap if window is None else min(window, cap)
        if window is None:
            return messages
        return self._fit(messages, ctx, window)

    def _fit(self, messages: list[Message], ctx: TransformContext, window: int) -> list[Message]:
        tok = ctx.tokenizer
        cfg = self.config
        keep = protection(cfg)
        budget = window - keep.output_buffer_tokens
        total = tok.count_messages(messages)
        if total <= budget:
            return messages
        lay = layout(messages, tok, keep)
        protected = REPLY_PRIMING + sum(
            tok.count_message(messages[i]) for i in (*lay.head, *lay.tail)
        )
        if protected + MARKER_ALLOWANCE > budget:
            raise budget_error(
                protected + MARKER_ALLOWANCE, budget, window, keep.output_buffer_tokens, _SETTINGS
            )
        need = quantised_need(total + MARKER_ALLOWANCE, budget, keep.cut_quantum)
        order = [u for u in lay.units if u.is_tool] + [u for u in lay.units if not u.is_tool]
        dropped: set[int] = set()
        freed = 0
        for unit in order:
            if freed >= need:
                break
            dropped.update(unit.indices)
            freed += unit.tokens
        dropped = lead_with_user(messages, lay, dropped)
        out = assemble(messages, lay, dropped, self.store)
        if tok.count_messages(out) > budget:  # everything droppable is gone and still too big
            raise budget_error(
                protected + MARKER_ALLOWANCE, budget, window, keep.output_buffer_tokens, _SETTINGS
            )
        ctx.record(f"{self.name}:{len(dropped)}")
        return out

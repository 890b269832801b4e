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

from typing import TYPE_CHECKING

from ..tokens import REPLY_PRIMING, get_tokenizer
from ._fit import assemble, budget_error, layout, lead_with_user, quantised_need

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import RollingWindowConfig
    from ..messages import Message
    from ..pipeline import TransformContext
    from ..tokens import Tokenizer


_SETTINGS = "preserve_recent_turns / preserve_recent_tool_units / output_buffer_tokens"


class RollingWindow:
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

    def apply(
        self,
        messages: list[Message],
        ctx: TransformContext | None = None,
        *,
        max_tokens: int | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> list[Message]:
        """Fit ``messages`` into ``max_tokens`` minus the output buffer (as a pipeline
        transform: the pipeline's window). Returns ``messages`` itself when they fit."""
        window = max_tokens if max_tokens is not None else (ctx.max_tokens if ctx else None)
        if window is None:
            return messages
        tok = tokenizer or (ctx.tokenizer if ctx else get_tokenizer())
        cfg = self.config
        budget = window - cfg.output_buffer_tokens
        total = tok.count_messages(messages)
        if total <= budget:
            return messages
        lay = layout(
            messages,
            tok,
            cfg.keep_system,
            cfg.preserve_recent_turns,
            cfg.preserve_recent_tool_units,
        )
        protected = REPLY_PRIMING + sum(
            tok.count_message(messages[i]) for i in (*lay.head, *lay.tail)
        )
        marker_allowance = 60  # the one marker message that stands for what is dropped
        if protected + marker_allowance > budget:
            raise budget_error(
                protected + marker_allowance, budget, window, cfg.output_buffer_tokens, _SETTINGS
            )
        need = quantised_need(total + marker_allowance, budget, cfg.cut_quantum)
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
                protected + marker_allowance, budget, window, cfg.output_buffer_tokens, _SETTINGS
            )
        if ctx is not None:
            ctx.record(f"{self.name}:{len(dropped)}")
        return out

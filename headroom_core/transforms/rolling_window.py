"""RollingWindow: the default context fitter, at compaction points only.

A growing history is rewritten only at compaction points (see :mod:`._compaction`): when
collapsing superseded tool outputs pays for the cache write it causes, or when the request
no longer fits ``max_tokens`` minus ``output_buffer_tokens``. To fit, it collapses
superseded outputs, then cuts tool outputs (the newest included; errors, the question's
terms, head and tail kept, every cut retrievable), and only then drops whole units, oldest
first: the oldest tool units (an assistant tool call with all its results), then the oldest
turns. The system prompt, the task (the first user message), summaries of earlier
compactions and the user and assistant messages of the last ``preserve_recent_turns`` turns
are never dropped, and a cut never leaves the kept part starting with an answer whose
question is gone. Dropped messages are replaced by ONE system note naming a ref. If what
must be kept exceeds the budget on its own: :class:`~headroom_core.errors.BudgetError` with
the numbers, never an oversize request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, overload

from ._base import Transform, TransformContext
from ._session import fit_in_context

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import RollingWindowConfig
    from ..messages import Message
    from ..tokens import Tokenizer


#: A fit that must drop whole units frees at least half the budget: drops rewrite the most
#: of a request, so they should come rarely (``tests/benchmarks/bench_compaction.py --part
#: budget``, the hard-budget replay: prefix reuse 0.944 at 0.2, 0.952 at 0.5 and at 0.7).
DROP_QUANTUM = 0.5


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
        max_tokens: int | None,
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
        """The request to send for ``messages``: compacted at the history's compaction points
        and fitted into the window minus the output buffer. In a pipeline the window is
        ``ctx.max_tokens`` (None: compaction without fitting); called directly,
        ``max_tokens`` (the reference API's ``window.apply(messages, max_tokens=100000)``).
        ``config.max_tokens``, when set, caps the window and stands in for a missing one.
        Returns ``messages`` itself when nothing changes."""
        cap = self.config.max_tokens
        if ctx is None:
            from ..config import HeadroomConfig
            from ..tokens import get_tokenizer

            given = max_tokens if max_tokens is not None else cap
            ctx = TransformContext(
                tokenizer=tokenizer or get_tokenizer(),
                config=HeadroomConfig(),
                model_limit=given,
                max_tokens=given,
            )
        window = ctx.max_tokens
        if cap is not None:
            window = cap if window is None else min(window, cap)
        names = (self.name, "cut_to_fit")
        return fit_in_context(
            messages, ctx, self.config, self.store, names, window=window, drop_quantum=DROP_QUANTUM
        )

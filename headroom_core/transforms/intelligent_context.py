"""IntelligentContextManager: the context fitter that drops the least important units first.

It compacts and fits as :class:`~.rolling_window.RollingWindow` does (see
:mod:`._compaction`: collapse superseded outputs, cut tool outputs, and only then drop whole
units, at compaction points only), with one difference: when units must be dropped, they go
lowest score first (:class:`~._scoring.MessageScorer`: recency, similarity to the recent
turns, learned importance, errors, forward references, token density; oldest on ties), and a
kept old unit whose question was dropped gets its question back when it fits. System
prompt, task, the last ``keep_last_turns`` turns and any ``protected`` index stay.
``transforms_applied`` reports ``intelligent_compress:N`` (outputs cut) and
``intelligent_cap:N`` (messages dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

from ..errors import ConfigError
from ..messages import content_text
from ..tokens import Tokenizer
from ._base import Transform, TransformContext
from ._fit import MARKER_ALLOWANCE, Layout, Unit, lead_with_user
from ._scoring import Embedder, Importance, MessageScorer
from ._session import fit_in_context

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import CompactionConfig, IntelligentContextConfig
    from ..messages import Message


@dataclass(frozen=True, slots=True)
class FitResult:
    messages: list[Message]
    tokens_before: int
    tokens_after: int
    transforms_applied: tuple[str, ...]


class IntelligentContextManager(Transform):
    name = "intelligent_context"
    labels = ("intelligent_cap", "intelligent_compress")

    def __init__(
        self,
        config: IntelligentContextConfig | None = None,
        toin: Importance | None = None,
        *,
        store: OriginalStore | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        from ..config import IntelligentContextConfig

        self.config = config or IntelligentContextConfig(enabled=True)
        if toin is not None and not self.config.toin_integration:
            raise ConfigError(
                "IntelligentContextManager: a toin was given but config.toin_integration is "
                "False; pass toin=None, or set toin_integration=True to rank by it"
            )
        self.scorer = MessageScorer(
            self.config.scoring_weights,
            recency_decay_rate=self.config.recency_decay_rate,
            toin=toin,
            embedder=embedder,
        )
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
        ctx: Tokenizer,
        *,
        model_limit: int,
        protected: tuple[int, ...] = (),
        query: str | None = None,
    ) -> FitResult: ...

    def apply(
        self,
        messages: list[Message],
        ctx: TransformContext | Tokenizer,
        *,
        model_limit: int | None = None,
        protected: tuple[int, ...] = (),
        query: str | None = None,
    ) -> list[Message] | FitResult:
        """As a pipeline transform, ``apply(messages, ctx)`` -> messages (window:
        ``ctx.max_tokens``; None: compaction without fitting). The reference API's direct
        call, ``apply(messages, tokenizer, model_limit=N)`` -> :class:`FitResult`, is
        :meth:`fit`."""
        if isinstance(ctx, Tokenizer):
            if model_limit is None:
                raise ConfigError("IntelligentContextManager.apply: pass model_limit=<window>")
            return self.fit(
                messages, ctx, model_limit=model_limit, protected=protected, query=query
            )
        return self._run(messages, ctx, protected)

    def fit(
        self,
        messages: list[Message],
        tokenizer: Tokenizer,
        *,
        model_limit: int,
        protected: tuple[int, ...] = (),
        query: str | None = None,
        compaction: CompactionConfig | None = None,
    ) -> FitResult:
        """Fit ``messages`` into ``model_limit`` minus the output buffer. ``compaction``: the
        compaction and cutting settings (default ``CompactionConfig()``)."""
        from ..config import CompactionConfig, HeadroomConfig

        ctx = TransformContext(
            tokenizer=tokenizer,
            config=HeadroomConfig(compaction=compaction or CompactionConfig()),
            query=query,
            model_limit=model_limit,
            explicit_query=query is not None,
            max_tokens=model_limit,
        )
        out = self._run(messages, ctx, protected)
        before = tokenizer.count_messages(messages)
        after = before if out is messages else tokenizer.count_messages(out)
        return FitResult(out, before, after, tuple(ctx.applied))

    def _run(
        self, messages: list[Message], ctx: TransformContext, protected: Sequence[int]
    ) -> list[Message]:
        query = ctx.query if ctx.explicit_query else None

        def drop_order(part: Sequence[Message], units: list[Unit]) -> list[Unit]:
            if not self.config.use_importance_scoring or not units:
                return list(units)
            tail_start = max(u.indices[-1] for u in units) + 1
            recent = query or " ".join(content_text(m) for m in part[tail_start:])
            scores = self.scorer.score_units(part, units, recent)
            ranked = sorted(range(len(units)), key=lambda k: (scores[k], k))
            return [units[k] for k in ranked]

        return fit_in_context(
            messages,
            ctx,
            self.config,
            self.store,
            self.labels,
            drop_order=drop_order,
            widen=_with_question,
            protected=protected,
        )


def _with_question(
    messages: list[Message], lay: Layout, dropped: set[int], tok: Tokenizer, room: int
) -> set[int]:
    """Scores may keep an old unit (an error, say) whose turn's question was dropped. Where
    such a unit follows a dropped run, restore the question's unit when ``room`` (tokens
    left under the target) holds it; otherwise an answer goes too (the kept part never
    starts with, and no note is followed by, an answer whose question is gone)."""
    out = (
        lead_with_user(messages, lay, dropped)
        if _starts_with_answer(messages, lay, dropped)
        else set(dropped)
    )
    unit_of = {i: u for u in lay.units for i in u.indices}
    for start in sorted(out):
        nxt = start + 1
        unit = unit_of.get(nxt)
        if nxt in out or unit is None or unit.indices[0] != nxt:
            continue
        if messages[nxt].get("role") == "user":
            continue
        asked = max((i for i in range(nxt) if messages[i].get("role") == "user"), default=None)
        if asked is None or asked not in out:
            continue  # its question is shown
        question = unit_of.get(asked)
        if question is not None and question.tokens + MARKER_ALLOWANCE <= room:
            out -= set(question.indices)
            room -= question.tokens + MARKER_ALLOWANCE
    return out


def _starts_with_answer(messages: list[Message], lay: Layout, dropped: set[int]) -> bool:
    first = next((i for i in range(len(lay.head), len(messages)) if i not in dropped), None)
    return first is not None and messages[first].get("role") != "user" and first not in lay.tail

"""IntelligentContextManager: fit a request into its budget, least important units first.

Units (see :mod:`._fit`) are scored by :class:`~._scoring.MessageScorer`. Over budget,
tool outputs of units scoring below ``compress_threshold`` are compressed first (head kept,
rest behind a ref); if still over, units are dropped lowest score first (oldest on ties)
behind one marker with a ref. System prompt, the last ``keep_last_turns`` turns and any
``protected`` index stay. ``transforms_applied`` reports ``intelligent_compress:N`` and
``intelligent_cap:N``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

from ..errors import ConfigError
from ..messages import content_text
from ..tokens import REPLY_PRIMING, Tokenizer
from ._base import Transform
from ._fit import (
    MARKER_ALLOWANCE,
    Layout,
    Unit,
    assemble,
    budget_error,
    layout,
    lead_with_user,
    protection,
    quantised_need,
)
from ._scoring import Embedder, Importance, MessageScorer
from ._toolmsg import rewrite_tool_texts

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import IntelligentContextConfig
    from ..messages import Message
    from ._base import TransformContext

_HEAD_CHARS = 600
_SETTINGS = "keep_last_turns / keep_last_tool_units / output_buffer_tokens"


@dataclass(frozen=True, slots=True)
class FitResult:
    messages: list[Message]
    tokens_before: int
    tokens_after: int
    transforms_applied: tuple[str, ...]


class IntelligentContextManager(Transform):
    name = "intelligent_context"

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
        ``ctx.max_tokens``; None: no fitting). The reference API's direct call,
        ``apply(messages, tokenizer, model_limit=N)`` -> :class:`FitResult`, is
        :meth:`fit`."""
        if isinstance(ctx, Tokenizer):
            if model_limit is None:
                raise ConfigError("IntelligentContextManager.apply: pass model_limit=<window>")
            return self.fit(
                messages, ctx, model_limit=model_limit, protected=protected, query=query
            )
        if ctx.max_tokens is None:
            return messages
        result = self.fit(messages, ctx.tokenizer, model_limit=ctx.max_tokens, query=ctx.query)
        for label in result.transforms_applied:
            ctx.record(label)
        return result.messages

    def fit(
        self,
        messages: list[Message],
        tokenizer: Tokenizer,
        *,
        model_limit: int,
        protected: tuple[int, ...] = (),
        query: str | None = None,
    ) -> FitResult:
        cfg = self.config
        keep = protection(cfg)
        budget = model_limit - keep.output_buffer_tokens
        total = tokenizer.count_messages(messages)
        if total <= budget:
            return FitResult(messages, total, total, ())
        lay = layout(messages, tokenizer, keep)
        units = [u for u in lay.units if not set(u.indices) & set(protected)]
        kept_always = (
            set(lay.head)
            | set(lay.tail)
            | {i for u in lay.units if set(u.indices) & set(protected) for i in u.indices}
        )
        protected_tokens = REPLY_PRIMING + sum(
            tokenizer.count_message(messages[i]) for i in kept_always
        )
        protected_tokens += MARKER_ALLOWANCE
        if protected_tokens > budget:
            raise budget_error(
                protected_tokens, budget, model_limit, keep.output_buffer_tokens, _SETTINGS
            )
        recent = query or " ".join(content_text(messages[i]) for i in lay.tail)
        scores = (
            self.scorer.score_units(messages, units, recent)
            if cfg.use_importance_scoring
            else [float(k) for k in range(len(units))]
        )
        ranked = sorted(range(len(units)), key=lambda k: (scores[k], k))
        need = quantised_need(total + MARKER_ALLOWANCE, budget, keep.cut_quantum)
        current, compressed = self._compress_low(messages, units, ranked, scores, need, tokenizer)
        labels: list[str] = []
        if compressed:
            labels.append(f"intelligent_compress:{compressed}")
        now = tokenizer.count_messages(current)
        if now > budget:
            lay = layout(current, tokenizer, keep)
            by_start = {u.indices[0]: u for u in lay.units}
            dropped: set[int] = set()
            freed, still = 0, quantised_need(now + MARKER_ALLOWANCE, budget, keep.cut_quantum)
            for k in ranked:
                unit = by_start.get(units[k].indices[0])
                if unit is None or freed >= still:
                    continue
                dropped.update(unit.indices)
                freed += unit.tokens
            dropped = _with_question(current, lay, dropped, tokenizer, budget - (now - freed))
            current = assemble(current, lay, dropped, self.store)
            labels.append(f"intelligent_cap:{sum(1 for u in lay.units if u.indices[0] in dropped)}")
            if tokenizer.count_messages(current) > budget:
                raise budget_error(
                    protected_tokens, budget, model_limit, keep.output_buffer_tokens, _SETTINGS
                )
        return FitResult(current, total, tokenizer.count_messages(current), tuple(labels))

    def _compress_low(
        self,
        messages: list[Message],
        units: list[Unit],
        ranked: list[int],
        scores: list[float],
        need: int,
        tok: Tokenizer,
    ) -> tuple[list[Message], int]:
        """Cut the tool outputs of low-scoring units to their head (rest behind a ref)."""
        targets: set[int] = set()
        freed = 0
        for k in ranked:
            if scores[k] >= self.config.compress_threshold or freed >= need:
                break
            unit = units[k]
            if not unit.is_tool:
                continue
            gain = sum(
                max(0, tok.count_text(content_text(messages[i])) - _HEAD_CHARS // 3)
                for i in unit.indices[1:]
            )
            if gain > 0:
                targets.update(unit.indices[1:])
                freed += gain
        if not targets:
            return messages, 0
        store = self.store
        done = 0

        def cut(text: str, tool: str | None, index: int) -> str | None:
            nonlocal done
            if index not in targets or len(text) <= _HEAD_CHARS * 2:
                return None
            ref = store.put(text, tool=tool, kind="text")
            done += 1
            rest = len(text) - _HEAD_CHARS
            return (
                f"{text[:_HEAD_CHARS]}\n[headroom: {rest} more chars of this low-priority "
                f"tool output cut; ref={ref}]"
            )

        out = rewrite_tool_texts(messages, cut)
        return out, done


def _with_question(
    messages: list[Message], lay: Layout, dropped: set[int], tok: Tokenizer, room: int
) -> set[int]:
    """Scores may keep an old unit (an error, say) whose turn's question was dropped; the
    kept part must still start with a user message. Restore that question's unit when
    ``room`` (tokens left under the budget, the marker's allowance included) holds it,
    else widen the cut (:func:`~._fit.lead_with_user`)."""
    first = next((i for i in range(len(lay.head), len(messages)) if i not in dropped), None)
    if first is None or messages[first].get("role") == "user" or first in lay.tail:
        return dropped
    unit_of = {i: u for u in lay.units for i in u.indices}
    asked = [i for i in dropped if i < first and messages[i].get("role") == "user"]
    if asked:
        unit = unit_of[max(asked)]
        if unit.tokens + MARKER_ALLOWANCE <= room:
            return dropped - set(unit.indices)
    return lead_with_user(messages, lay, dropped)

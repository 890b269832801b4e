"""SmartCrusher: compress JSON tool outputs, lossless first, lossy only when it pays.

1. Lossless: compact JSON, then the table / constant-column / repeat forms of
   :mod:`~headroom_core.transforms.json_codec` where they have fewer tokens. A document
   whose lossless form is under ``lossless_below_tokens`` is never cut.
2. Lossy (only with ``reversible``, the default: a caller that cannot retrieve gets the
   lossless forms only), above it, and only where it pays (at least
   :data:`LOSSY_MIN_GAIN` fewer tokens than the lossless form): arrays longer than
   ``max_items_after_crush`` keep every row the question's conditions select
   (:mod:`._conditions`), the items chosen by :mod:`._select` (errors, query matches,
   anomalies, change points, head, tail, evenly spaced fill), in order, and end with a
   marker ``{"__headroom_truncated": N, "of": M, "omitted": "3-250,252-990", "ref":
   "<ref>", "omitted_stats": {...}}``; strings over ``max_string_chars`` are cut with a
   marker naming the ref. The whole original is stored in the reversible store under
   that ref.
3. A budget (``ctx.budget_tokens``: a tool profile's ``max_tokens`` or the caller's) is a
   hard cap: over it, cuts go further (fewer items per array, shorter strings; errors,
   the question's rows, head and tail go last) for up to :data:`BUDGET_ROUNDS` rounds.
   What still does not fit is the router's to cut (:func:`~.router.fit_text`).

The output is never more tokens than compact JSON of the same data. Called directly,
``SmartCrusher().crush(data, query)`` returns a :class:`CrushResult` with the compressed
value and an :class:`Omission` per cut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from .._json import parse_json_strict
from . import json_codec
from ._base import Transform
from ._content import Compressed, ContentContext
from ._crush import Crush
from ._crush_result import CrushResult, Omission, crush_result
from ._lossless import LosslessForms
from ._tool_outputs import compress_tool_outputs

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import SmartCrusherConfig
    from ..messages import Message
    from ..relevance import Scorer
    from ._base import TransformContext


LOSSY_MIN_GAIN = 0.10  # a lossy cut is made only if it saves this share over the lossless form
BUDGET_ROUNDS = 6  # attempts at meeting a hard budget before the router's generic cut


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode()


class SmartCrusher(Transform):
    """JSON tool-output compressor; a ContentCompressor and a pipeline Transform."""

    name = "smart_crusher"

    def __init__(
        self,
        config: SmartCrusherConfig | None = None,
        store: OriginalStore | None = None,
        scorer: Scorer | None = None,
    ) -> None:
        """``scorer`` ranks array items against the query (BM25 when None; any
        :class:`~headroom_core.relevance.Scorer`, e.g. an embedding scorer, fits)."""
        from ..config import SmartCrusherConfig

        self.config = config or SmartCrusherConfig()
        self._store = store
        self.scorer = scorer

    @property
    def store(self) -> OriginalStore:
        if self._store is None:
            from ..ccr import get_default_store

            return get_default_store()
        return self._store

    def detect(self, text: str) -> bool:
        stripped = text.lstrip()
        return stripped[:1] in ("{", "[")

    def _max_items(self, tool: str | None) -> int:
        profile = self.config.tool_profiles.get(tool or "", {})
        return int(
            profile.get(
                "max_array_items",
                profile.get("max_items_after_crush", self.config.max_items_after_crush),
            )
        )

    def crush(
        self, data: Any, query: str | None = None, *, tool_name: str | None = None
    ) -> CrushResult:
        """Compress parsed JSON ``data`` (the reference API's direct call): the compressed
        value, the text to send and every cut (:class:`~._crush_result.CrushResult`). Data
        left as it is (already holding ``__headroom`` keys, or an integer beyond 64 bits)
        comes back unchanged with nothing omitted. Tokens are counted for gpt-4o."""
        from ..tokens import get_tokenizer

        count = get_tokenizer().count_text
        ctx = ContentContext(count, self.config, self.store, query, tool_name)
        return crush_result(data, self._crush(data, ctx), count)

    def compress(self, text: str, ctx: ContentContext) -> Compressed | None:
        if not self.detect(text):
            return None
        try:
            data = parse_json_strict(text.strip())
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, (dict, list)):
            return None
        result = self._crush(data, ctx, original=text)
        if result is None or ctx.count(result.text) >= ctx.count(text):
            return None
        return result

    def _crush(
        self, data: Any, ctx: ContentContext, original: str | None = None
    ) -> Compressed | None:
        """``original``: the text as the tool gave it, stored byte for byte for retrieval
        (compact JSON of ``data`` when only parsed data was given)."""
        try:
            compact = _dumps(data)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits: left to JSONCompactor
            return None
        if f'"{json_codec.PREFIX}' in compact:  # a key may start with __headroom: look
            if json_codec.is_ours(data):
                return None  # our own output already (or an exact imitation of it: not trusted)
            if json_codec.has_reserved_keys(data):
                data = json_codec.escape(data)  # a tool's own __headroom* keys, kept apart
                compact = _dumps(data)
        cfg = self.config
        forms = LosslessForms(data, compact, ctx.count)
        budget = ctx.budget_tokens
        threshold, floor = cfg.lossless_below_tokens, cfg.min_tokens_to_crush
        over = forms.tokens_satisfy(lambda t: t >= threshold) and forms.compact_satisfies(
            lambda t: t > floor
        )
        if not ctx.config.reversible or (
            not over and (budget is None or not forms.tokens_satisfy(lambda t: t > budget))
        ):
            return Compressed(forms.best()[0], False)
        from ..ccr import ref_for

        source = ctx.original if ctx.original is not None else (original or compact)
        ref = ref_for(source)
        best: tuple[str, int, int] | None = None  # text, tokens, dropped
        memo: dict[tuple[str, int], Any] = {}  # what every pass over `data` shares
        if over:
            cut = self._cut(data, ctx, ref, self._max_items(ctx.tool_name), memo=memo)
            if cut is not None and forms.tokens_satisfy(
                lambda t: cut[1] < (1 - LOSSY_MIN_GAIN) * t
            ):
                best = cut
        if budget is not None and (
            best[1] > budget if best else forms.tokens_satisfy(lambda t: t > budget)
        ):
            best = self._fit(data, ctx, ref, budget, best, memo)
        if best is None:
            return Compressed(forms.best()[0], False)
        stored = ctx.store.put(source, tool=ctx.tool_name, kind="json", meta=ctx.stored_meta())
        if stored != ref:  # a store with refs of its own
            best = best[0].replace(ref, stored), best[1], best[2]
        return Compressed(best[0], True, (stored,), best[2])

    def _cut(
        self,
        data: Any,
        ctx: ContentContext,
        ref: str,
        max_items: int,
        limit: int | None = None,
        max_string_chars: int | None = None,
        memo: dict[tuple[str, int], Any] | None = None,
    ) -> tuple[str, int, int] | None:
        """One lossy pass: (text, tokens, items dropped), or None when nothing was cut.
        ``memo``: shared by the passes over one ``data`` (see :class:`._crush.Crush`)."""
        crush = Crush(
            self.config,
            ctx.query,
            max_items,
            ref,
            self.scorer,
            ctx.learned_fields,
            limit=limit,
            max_string_chars=max_string_chars,
            memo=memo,
        )
        cut = crush.run(data)
        if not crush.dropped:
            return None
        text, tokens = LosslessForms(cut, _dumps(cut), ctx.count).best()
        return text, tokens, crush.dropped

    def _fit(
        self,
        data: Any,
        ctx: ContentContext,
        ref: str,
        budget: int,
        best: tuple[str, int, int] | None,
        memo: dict[tuple[str, int], Any],
    ) -> tuple[str, int, int] | None:
        """Cut harder until the text is within ``budget`` (or the rounds run out): fewer
        items per array, shorter strings. Returns the smallest attempt."""
        items = self._max_items(ctx.tool_name)
        chars = self.config.max_string_chars
        tokens = best[1] if best else ctx.count(_dumps(data))
        for _ in range(BUDGET_ROUNDS):
            share = budget / max(tokens, 1)
            items = max(1, min(items - 1, int(items * share * 0.9)))
            chars = max(64, min(chars - 1, int(chars * share * 0.9)))
            cut = self._cut(data, ctx, ref, items, limit=items, max_string_chars=chars, memo=memo)
            if cut is None:
                break
            if best is None or cut[1] < best[1]:
                best = cut
            tokens = cut[1]
            if tokens <= budget or (items == 1 and chars == 64):
                break
        return best

    def apply(self, messages: list[Message], ctx: TransformContext) -> list[Message]:
        """The pipeline step (``TransformPipeline([SmartCrusher(), ...])``): JSON tool
        outputs only, through the same code as the router."""
        return compress_tool_outputs(
            messages, ctx, [self], self.config, self.store, every_text=False
        )


__all__ = ["CrushResult", "Omission", "SmartCrusher"]

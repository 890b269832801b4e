"""SmartCrusher: compress JSON tool outputs, lossless first, lossy only when it pays.

1. Lossless: compact JSON, then the table / constant-column / repeat forms of
   :mod:`~headroom_core.transforms.json_codec` where they have fewer tokens.
2. Lossy (only with ``reversible``, the default), only when the compact text is over
   ``min_tokens_to_crush``: arrays longer than
   ``max_items_after_crush`` keep the items chosen by :mod:`~._select` (errors, query
   matches, anomalies, change points, head, tail, evenly spaced fill), in order, and end
   with a marker ``{"__headroom_truncated": N, "of": M, "omitted": "3-250,252-990",
   "ref": "<ref>"}``; strings over ``max_string_chars`` are cut with a marker naming the
   ref. The whole original is stored in the reversible store under that ref.

The output is never more tokens than compact JSON of the same data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from .._json import parse_json_strict
from . import json_codec
from ._base import Transform
from ._content import Compressed, ContentContext
from ._crush import Crush
from ._tool_outputs import compress_tool_outputs

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import SmartCrusherConfig
    from ..messages import Message
    from ..relevance import Scorer
    from ._base import TransformContext


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
    ) -> Compressed | None:
        """Compress parsed JSON ``data``; None when it holds reserved keys (already ours) or
        a value the fast encoder cannot write exactly (an integer beyond 64 bits)."""
        from ..tokens import get_tokenizer

        ctx = ContentContext(get_tokenizer().count_text, self.config, self.store, query, tool_name)
        return self._crush(data, ctx)

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
        if json_codec.has_reserved_keys(data):
            return None
        try:
            compact = _dumps(data)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits: left to JSONCompactor
            return None
        compact_tokens = ctx.count(compact)
        budget = ctx.budget_tokens
        over = compact_tokens > self.config.min_tokens_to_crush
        cut_allowed = ctx.config.reversible
        if cut_allowed and (over or (budget is not None and compact_tokens > budget)):
            ref = ctx.store.put(original or compact, tool=ctx.tool_name, kind="json")
            max_items = self._max_items(ctx.tool_name)
            crush = Crush(self.config, ctx.query, max_items, ref, self.scorer, ctx.learned_fields)
            cut = crush.run(data)
            if crush.dropped:
                cut_text, cut_tokens = self._lossless(cut, _dumps(cut), ctx)
                # A cut must beat compact JSON clearly, or the lossless forms, to be made:
                # markers that cost more than they save are never sent.
                if cut_tokens < 0.9 * compact_tokens or cut_tokens < min(
                    compact_tokens, self._lossless(data, compact, ctx, compact_tokens)[1]
                ):
                    return Compressed(cut_text, True, (ref,), crush.dropped)
        text, _ = self._lossless(data, compact, ctx, compact_tokens)
        return Compressed(text, False)

    def _lossless(
        self, data: Any, compact: str, ctx: ContentContext, compact_tokens: int | None = None
    ) -> tuple[str, int]:
        """The fewer-token of compact JSON and the encoded forms, with its token count."""
        tokens = ctx.count(compact) if compact_tokens is None else compact_tokens
        encoded = _dumps(json_codec.encode(data))
        if encoded != compact:
            encoded_tokens = ctx.count(encoded)
            if encoded_tokens < tokens:
                return encoded, encoded_tokens
        return compact, tokens

    def apply(self, messages: list[Message], ctx: TransformContext) -> list[Message]:
        """The pipeline step (``TransformPipeline([SmartCrusher(), ...])``): JSON tool
        outputs only, through the same code as the router."""
        return compress_tool_outputs(messages, ctx, [self], self.config, self.store)

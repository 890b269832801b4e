"""Route each tool output to the compressor for its content type.

Order matters: the first compressor whose ``detect`` fires gets the text; if it declines
(returns None) the text stays as it is. Diffs and stack traces are never cut: they go
to no compressor. Tools in ``never_compress_tools`` are skipped; ``tool_profiles`` may set
``max_tokens`` (a per-call budget) and the SmartCrusher item cap per tool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._base import Transform
from ._content import ContentCompressor, ContentContext
from ._tool_outputs import compress_tool_outputs, route

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import SmartCrusherConfig
    from ..messages import Message
    from ..relevance import Scorer
    from ._base import TransformContext


def _smart_crusher(cfg: SmartCrusherConfig, scorer: Scorer | None = None) -> ContentCompressor:
    from .smart_crusher import SmartCrusher

    return SmartCrusher(cfg, scorer=scorer)


def _log(cfg: SmartCrusherConfig) -> ContentCompressor:
    from .log_compressor import LogCompressor

    return LogCompressor()


def _search(cfg: SmartCrusherConfig) -> ContentCompressor:
    from .search_compressor import SearchCompressor

    return SearchCompressor()


def _code(cfg: SmartCrusherConfig) -> ContentCompressor:
    from .code_compressor import CodeCompressor

    return CodeCompressor()


def _text(cfg: SmartCrusherConfig) -> ContentCompressor:
    from .text_compressor import TextCompressor

    return TextCompressor()


# name -> factory, in detection order.
COMPRESSORS: dict[str, Callable[[SmartCrusherConfig], ContentCompressor]] = {
    "smart_crusher": _smart_crusher,
    "search": _search,
    "log": _log,
    "code": _code,
    "text": _text,
}


class ToolOutputRouter(Transform):
    """Pipeline transform: compress every tool output with the compressor for its type.

    Learning from retrievals: every lossy cut is counted in the process's TOIN
    (:func:`headroom_core.toin.get_toin`), every ``headroom_retrieve`` feeds it, and the
    fields the model fetched back for a tool are spared in later cuts of that tool.
    """

    name = "tool_outputs"

    def __init__(
        self,
        config: SmartCrusherConfig,
        store: OriginalStore | None = None,
        scorer: Scorer | None = None,
    ) -> None:
        """``scorer`` ranks JSON items against the query (BM25 when None)."""
        self.config = config
        self._store = store
        self.compressors = [
            _smart_crusher(config, scorer) if name == "smart_crusher" else make(config)
            for name, make in COMPRESSORS.items()
        ]

    @property
    def store(self) -> OriginalStore:
        if self._store is None:
            from ..ccr import get_default_store

            return get_default_store()
        return self._store

    def compress_text(self, text: str, ctx: ContentContext) -> tuple[str, str] | None:
        """(compressor name, new text) or None to keep ``text``. Lossy cuts are counted
        in the TOIN."""
        return route(text, ctx, self.compressors)

    def apply(self, messages: list[Message], ctx: TransformContext) -> list[Message]:
        return compress_tool_outputs(messages, ctx, self.compressors, self.config, self.store)


@dataclass(frozen=True, slots=True)
class CompressedText:
    """What :func:`compress_text` made of one text."""

    text: str
    compressor: str  # the compressor that changed it ("smart_crusher", "log", ...)
    tokens_before: int
    tokens_after: int


def compress_text(
    text: str,
    *,
    query: str | None = None,
    tool: str | None = None,
    budget: int | None = None,
    store: OriginalStore | None = None,
    model: str = "gpt-4o",
    config: SmartCrusherConfig | None = None,
    scorer: Scorer | None = None,
) -> CompressedText | None:
    """Compress one tool output (or any text) with the compressor for its content type, as
    :func:`~headroom_core.compress` does inside a request; None when nothing would change.

    ``query`` ranks what a lossy cut keeps; ``tool`` selects the tool's profile and what was
    learned about it; ``budget`` caps the output in tokens (as a tool profile's
    ``max_tokens``); ``store`` keeps the originals of lossy cuts (default: the process's
    store); ``model`` picks the token counter. Errors propagate: callers that must not fail
    wrap the call in :func:`~headroom_core.boundary.fail_open`.
    """
    from ..config import SmartCrusherConfig
    from ..toin import get_toin
    from ..tokens import get_tokenizer

    cfg = config or SmartCrusherConfig()
    router = ToolOutputRouter(cfg, store, scorer=scorer)
    count = get_tokenizer(model).count_text
    if budget is None:
        budget = cfg.tool_profiles.get(tool or "", {}).get("max_tokens")
    ctx = ContentContext(
        count, cfg, router.store, query, tool, budget, learned_fields=get_toin().fields_for(tool)
    )
    routed = router.compress_text(text, ctx)
    if routed is None or routed[1] == text:
        return None
    return CompressedText(routed[1], routed[0], count(text), count(routed[1]))


__all__ = ["COMPRESSORS", "CompressedText", "ToolOutputRouter", "compress_text"]

"""Route each tool output to the compressor for its content type.

Order matters: the first compressor whose ``detect`` fires gets the text; if it declines
(returns None) the text stays as it is. Diffs and stack traces are never cut: they go
to no compressor. Tools in ``never_compress_tools`` are skipped; ``tool_profiles`` may set
``max_tokens`` (a per-call budget) and the SmartCrusher item cap per tool.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..toin import get_toin
from ._content import ContentCompressor, ContentContext
from ._detect import is_diff, is_stack_trace
from ._toolmsg import rewrite_tool_texts

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import SmartCrusherConfig
    from ..messages import Message
    from ..pipeline import TransformContext
    from ..relevance import Scorer


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
# A text holding a stack trace goes only to these (which keep trace lines verbatim).
TRACE_SAFE = frozenset({"log"})


_learning_attached = False


def _attach_learning() -> None:
    """Feed every retrieval into the process's TOIN (once per process)."""
    global _learning_attached
    if not _learning_attached:
        from ..toin import attach

        attach()
        _learning_attached = True


class ToolOutputRouter:
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
        _attach_learning()

    @property
    def store(self) -> OriginalStore:
        if self._store is None:
            from ..ccr import get_default_store

            return get_default_store()
        return self._store

    def compress_text(self, text: str, ctx: ContentContext) -> tuple[str, str] | None:
        """(compressor name, new text) or None to keep ``text``. Lossy cuts are counted
        in the TOIN."""
        if is_diff(text):
            return None
        trace = is_stack_trace(text)
        for compressor in self.compressors:
            if trace and compressor.name not in TRACE_SAFE:
                continue
            if compressor.detect(text):
                result = compressor.compress(text, ctx)
                if result is not None:
                    if result.lossy:
                        get_toin().record_compression(ctx.tool_name, compressor.name)
                    return compressor.name, result.text
        return None

    def apply(self, messages: list[Message], ctx: TransformContext) -> list[Message]:
        cfg = self.config
        store = self.store
        used: Counter[str] = Counter()

        def rewrite(text: str, tool: str | None, index: int) -> str | None:
            profile = cfg.tool_profiles.get(tool or "", {})
            content_ctx = ContentContext(
                ctx.tokenizer.count_text,
                cfg,
                store,
                ctx.query_for(messages, index),
                tool,
                profile.get("max_tokens"),
                learned_fields=get_toin().fields_for(tool),
            )
            routed = self.compress_text(text, content_ctx)
            if routed is None:
                return None
            used[routed[0]] += 1
            return routed[1]

        out = rewrite_tool_texts(messages, rewrite, frozenset(cfg.never_compress_tools))
        for name in sorted(used):
            ctx.record(f"{name}:{used[name]}")
        return out

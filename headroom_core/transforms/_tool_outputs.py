"""Compress every tool output of a request with a list of content compressors.

The one implementation behind :class:`~.router.ToolOutputRouter` (every compressor, by
content type) and :class:`~.smart_crusher.SmartCrusher` used as a pipeline step (JSON only).
Each tool output is handled inside its own fail-open boundary: a value one compressor
cannot handle leaves that output unchanged (recorded in ``ctx.failures``) and the others
are compressed as usual.

Learning from retrievals: every lossy cut is counted in the process's TOIN
(:func:`headroom_core.toin.get_toin`), and the fields the model fetched back for a tool are
spared in later cuts of that tool.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..toin import get_toin
from ._content import ContentCompressor, ContentContext
from ._detect import is_diff, is_stack_trace
from ._toolmsg import rewrite_tool_texts

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import SmartCrusherConfig
    from ..messages import Message
    from ._base import TransformContext

__all__ = ["TRACE_SAFE", "compress_tool_outputs", "route"]

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


def route(
    text: str, ctx: ContentContext, compressors: Sequence[ContentCompressor]
) -> tuple[str, str] | None:
    """(compressor name, new text) from the first compressor that detects ``text`` and
    compresses it, or None to keep it. Diffs are never cut; a stack trace goes only to the
    trace-safe compressors. Lossy cuts are counted in the TOIN."""
    if is_diff(text):
        return None
    trace = is_stack_trace(text)
    for compressor in compressors:
        if trace and compressor.name not in TRACE_SAFE:
            continue
        if compressor.detect(text):
            result = compressor.compress(text, ctx)
            if result is not None:
                if result.lossy:
                    get_toin().record_compression(ctx.tool_name, compressor.name)
                return compressor.name, result.text
    return None


def compress_tool_outputs(
    messages: list[Message],
    ctx: TransformContext,
    compressors: Sequence[ContentCompressor],
    config: SmartCrusherConfig,
    store: OriginalStore,
) -> list[Message]:
    """Every tool output routed through ``compressors``; records ``<compressor>:<count>``."""
    _attach_learning()
    used: Counter[str] = Counter()

    def rewrite(text: str, tool: str | None, index: int) -> str | None:
        profile = config.tool_profiles.get(tool or "", {})
        content_ctx = ContentContext(
            ctx.tokenizer.count_text,
            config,
            store,
            ctx.query_for(messages, index),
            tool,
            profile.get("max_tokens"),
            learned_fields=get_toin().fields_for(tool),
        )
        routed = route(text, content_ctx, compressors)
        if routed is None:
            return None
        used[routed[0]] += 1
        return routed[1]

    skip = frozenset(config.never_compress_tools)
    out = rewrite_tool_texts(messages, rewrite, skip, failures=ctx.failures)
    for name in sorted(used):
        ctx.record(f"{name}:{used[name]}")
    return out

"""Compress every tool output of a request with a list of content compressors.

The one implementation behind :class:`~.router.ToolOutputRouter` (every compressor, by
content type) and :class:`~.smart_crusher.SmartCrusher` used as a pipeline step (JSON only).
Each tool output is handled inside its own fail-open boundary: a value one compressor
cannot handle leaves that output unchanged (recorded in ``ctx.failures``) and the others
are compressed as usual.

Learning from retrievals: every lossy cut is counted in the process's TOIN
(:func:`headroom_core.toin.get_toin`), and the fields the model fetched back for a tool are
spared in later cuts of that tool.

Before routing, terminal output is normalised (:mod:`._terminal`: escape sequences and
carriage-return redraws resolved), so the model sees the text a terminal would show and
the compressors see words, not ``\x1b[1;34mINFO\x1b[m``; refs give back the text as the
tool wrote it. A line-numbered file view (``     1→...``, what a coding agent's read tool
returns) is never cut: the agent edits against it; only its gutter loses its padding
(:mod:`._file_view`, lossless).

**A budget is a hard cap.** With ``ContentContext.budget_tokens`` set (a tool profile's
``max_tokens``, or a context fitter's per-output budget), :func:`route` returns text of at
most that many tokens: the compressor's own cut when it meets the budget, else the
generic cut of :mod:`._cut` (errors, query matches, head and tail go last; the text as a
whole is stored under the ref its markers name). Only a budget too small for a single
marker cannot be met: then ``Routed.fits`` is False.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import _gc
from ..toin import get_toin
from . import _file_view, _terminal
from ._content import ContentCompressor, ContentContext
from ._cut import cut_to_budget
from ._detect import is_diff, is_stack_trace
from ._first_sight import fields_at_first_sight
from ._toolmsg import rewrite_tool_texts

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import SmartCrusherConfig
    from ..messages import Message
    from ._base import TransformContext

__all__ = ["STRAIGHT_TO_CUT", "TRACE_SAFE", "Routed", "compress_tool_outputs", "route"]

# A text holding a stack trace goes only to these (which keep trace lines verbatim).
TRACE_SAFE = frozenset({"log"})
# Over this many estimated tokens per budget token, a text that is not JSON is cut without
# being compressed first (grouping a log shrinks it 2-25x on real logs, not 50x: the
# compressor could not get there, and the cut alone is faster). JSON is always crushed:
# SmartCrusher cuts by items to any size.
STRAIGHT_TO_CUT = 50.0


@dataclass(frozen=True, slots=True)
class Routed:
    """What :func:`route` made of one tool text.

    ``compressor`` names what changed it: a compressor's name, ``"terminal"`` (escape
    sequences and redraws resolved, nothing cut), ``"file_view"`` (a file view's gutter
    unpadded) or ``"cut"`` (the generic budget cut). ``tokens`` is exact when a budget was
    given (None otherwise); ``fits`` is False only when the budget could not be met."""

    text: str
    compressor: str
    lossy: bool
    refs: tuple[str, ...] = ()
    tokens: int | None = None
    fits: bool = True


_learning_attached = False


def _attach_learning() -> None:
    """Feed every retrieval into the process's TOIN (once per process)."""
    global _learning_attached
    if not _learning_attached:
        from ..toin import attach

        attach()
        _learning_attached = True


def route(
    text: str,
    ctx: ContentContext,
    compressors: Sequence[ContentCompressor],
    *,
    every_text: bool = True,
) -> Routed | None:
    """``text`` compressed by the first of ``compressors`` that detects and compresses it
    (after terminal normalisation), or None to keep it. Diffs are never cut; a stack trace
    goes only to the trace-safe compressors; file views keep every line. Lossy cuts are
    counted in the TOIN. With ``ctx.budget_tokens`` set, the result is at most that many
    tokens (None only when ``text`` already fits): see the module docstring.

    ``every_text=False`` (SmartCrusher as a pipeline step): only texts one of
    ``compressors`` detects are touched, as they are (no normalisation, no file views)."""
    budget = ctx.budget_tokens
    if not every_text:
        if not any(c.detect(text) for c in compressors):
            return None
        routed = _compress(text, ctx, compressors)
        return routed if budget is None else _fit(text, text, routed, ctx, budget)
    if _file_view.is_file_view(text):
        view = _file_view.encode(text)
        routed = None
        if view is not None and ctx.count(view) < ctx.count(text):
            routed = Routed(view, "file_view", False)
        return routed if budget is None else _fit(text, text, routed, ctx, budget)
    norm = _terminal.normalise(text)
    if norm is not text:
        ctx.original = text
    huge = (
        budget is not None
        and norm.lstrip()[:1] not in ("{", "[")
        and ctx.estimate(norm) > STRAIGHT_TO_CUT * budget
    )
    routed = None if huge else _compress(norm, ctx, compressors)
    if routed is None and norm is not text and ctx.count(norm) < ctx.count(text):
        routed = Routed(norm, "terminal", False)
    if budget is None:
        return routed
    return _fit(text, norm, routed, ctx, budget)


def _compress(
    text: str, ctx: ContentContext, compressors: Sequence[ContentCompressor]
) -> Routed | None:
    with _gc.paused(len(text)):
        return _compress_with(text, ctx, compressors)


def _compress_with(
    text: str, ctx: ContentContext, compressors: Sequence[ContentCompressor]
) -> Routed | None:
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
                return Routed(result.text, compressor.name, result.lossy, result.refs)
    return None


def _fit(
    text: str, norm: str, routed: Routed | None, ctx: ContentContext, budget: int
) -> Routed | None:
    """``routed`` (or ``norm``) when within ``budget``, else the generic cut."""
    candidate = routed.text if routed is not None else norm
    if ctx.estimate(candidate) <= 2 * budget:
        tokens = ctx.count(candidate)
        if tokens <= budget:
            if routed is None:
                return None if norm is text else Routed(norm, "terminal", False, (), tokens)
            return Routed(routed.text, routed.compressor, routed.lossy, routed.refs, tokens)
    # JSON stays one compact line: cut the crusher's best attempt, not the pretty original
    source = candidate if routed is not None and routed.compressor == "smart_crusher" else norm
    ref = ctx.keep(text, "text")
    cut = cut_to_budget(source, budget, ctx.count, ref, query=ctx.query)
    get_toin().record_compression(ctx.tool_name, "cut")
    if not cut.fits:
        ctx.notes.append(f"cut: {cut.tokens} tokens, over the budget of {budget}")
    return Routed(cut.text, "cut", True, (ref,), cut.tokens, cut.fits)


def compress_tool_outputs(
    messages: list[Message],
    ctx: TransformContext,
    compressors: Sequence[ContentCompressor],
    config: SmartCrusherConfig,
    store: OriginalStore,
    *,
    every_text: bool = True,
) -> list[Message]:
    """Every tool output routed through ``compressors``; records ``<compressor>:<count>``.
    ``every_text``: see :func:`route`."""
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
            learned_fields=fields_at_first_sight(text, tool, store),
        )
        routed = route(text, content_ctx, compressors, every_text=every_text)
        if routed is None:
            return None
        used[routed.compressor] += 1
        return routed.text

    skip = frozenset(config.never_compress_tools)
    out = rewrite_tool_texts(messages, rewrite, skip, failures=ctx.failures)
    for name in sorted(used):
        ctx.record(f"{name}:{used[name]}")
    return out

"""Route each tool output to the compressor for its content type; cut it to a budget.

Order matters: the first compressor whose ``detect`` fires gets the text; if it declines
(returns None) the next one whose ``detect`` fires is tried, and the text stays as it is
when none changes it. Diffs and stack traces are never cut: they go
to no compressor. Tools in ``never_compress_tools`` are skipped; ``tool_profiles`` may set
``max_tokens`` (a per-call budget, a hard cap) and the SmartCrusher item cap per tool.
Terminal output is normalised and file views keep every line (see :mod:`._tool_outputs`).

Two public calls for one text: :func:`compress_text` (what ``compress()`` does to a tool
output, ``budget`` optional) and :func:`fit_text` (the context fitters' primitive: with
the request's own token counter, always a :class:`Routed`, at most ``budget_tokens``
tokens unless ``fits`` says it could not be done).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._base import Transform
from ._content import ContentCompressor, ContentContext
from ._tool_outputs import Routed, compress_tool_outputs, route

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


def _pyrepr(cfg: SmartCrusherConfig) -> ContentCompressor:
    from ._pyrepr import make

    return make(cfg)


def _search(cfg: SmartCrusherConfig) -> ContentCompressor:
    from .search_compressor import SearchCompressor

    return SearchCompressor()


def _code(cfg: SmartCrusherConfig) -> ContentCompressor:
    from .code_compressor import CodeCompressor

    return CodeCompressor()


def _text(cfg: SmartCrusherConfig) -> ContentCompressor:
    from .text_compressor import TextCompressor

    return TextCompressor()


# name -> factory, in detection order. "pyrepr" (Python-repr data, str(list_of_dicts))
# comes right after JSON, before the text compressors could take it for prose.
COMPRESSORS: dict[str, Callable[[SmartCrusherConfig], ContentCompressor]] = {
    "smart_crusher": _smart_crusher,
    "pyrepr": _pyrepr,
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
        in the TOIN. With ``ctx.budget_tokens`` set, see :meth:`route`."""
        routed = self.route(text, ctx)
        return None if routed is None else (routed.compressor, routed.text)

    def route(self, text: str, ctx: ContentContext) -> Routed | None:
        """``text`` compressed for its type, or None to keep it. With ``ctx.budget_tokens``
        set, at most that many tokens (``Routed.fits`` False when that cannot be done)."""
        return route(text, ctx, self.compressors)

    def apply(self, messages: list[Message], ctx: TransformContext) -> list[Message]:
        return compress_tool_outputs(messages, ctx, self.compressors, self.config, self.store)


@dataclass(frozen=True, slots=True)
class CompressedText:
    """What :func:`compress_text` made of one text."""

    text: str
    compressor: str  # what changed it ("smart_crusher", "log", ..., "terminal", "cut")
    tokens_before: int
    tokens_after: int
    lossy: bool = False  # True when something was cut (its refs retrieve the original)
    fits: bool = True  # False only when a budget was given and could not be met


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
    learned about it; ``budget`` caps the output in tokens, a hard cap (as a tool profile's
    ``max_tokens``: check ``fits``); ``store`` keeps the originals of lossy cuts (default:
    the process's store); ``model`` picks the token counter. Errors propagate: callers that
    must not fail wrap the call in :func:`~headroom_core.boundary.fail_open`.
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
    routed = router.route(text, ctx)
    if routed is None or routed.text == text:
        return None
    after = routed.tokens if routed.tokens is not None else count(routed.text)
    return CompressedText(
        routed.text, routed.compressor, count(text), after, routed.lossy, routed.fits
    )


def fit_text(
    text: str,
    budget_tokens: int,
    *,
    count: Callable[[str], int],
    query: str | None = None,
    tool_name: str | None = None,
    config: SmartCrusherConfig | None = None,
    store: OriginalStore | None = None,
) -> Routed:
    """``text`` (one tool output) compressed for its type and cut to at most
    ``budget_tokens`` tokens by ``count`` (the request's own counter); the primitive a
    context fitter calls to make an oversize request fit. Check ``fits``: False only when
    the budget is too small for a single marker line. Everything cut is stored under the
    refs its markers name (``store``, default: the process's store of originals)."""
    from ..config import SmartCrusherConfig
    from ..toin import get_toin

    cfg = config or SmartCrusherConfig()
    router = ToolOutputRouter(cfg, store=store)
    ctx = ContentContext(
        count,
        cfg,
        router.store,
        query,
        tool_name,
        budget_tokens,
        learned_fields=get_toin().fields_for(tool_name),
    )
    routed = router.route(text, ctx)
    if routed is None:
        return Routed(text, "none", False, (), count(text), True)
    return routed


__all__ = [
    "COMPRESSORS",
    "CompressedText",
    "Routed",
    "ToolOutputRouter",
    "compress_text",
    "fit_text",
]

"""Transforms, one module each, and the registry the default pipeline is built from."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ._scoring import MessageScore, MessageScorer
from .cache_aligner import CacheAligner
from .intelligent_context import IntelligentContextManager
from .json_compact import JSONCompactor
from .rolling_window import RollingWindow
from .router import Routed, ToolOutputRouter, fit_text
from .smart_crusher import CrushResult, Omission, SmartCrusher

if TYPE_CHECKING:
    from ..config import HeadroomConfig
    from ..relevance import EmbeddingScorer, Scorer
    from ..toin import Toin
    from ._base import Transform

# name -> (enabled?, factory). Order here is pipeline order.
Factory = tuple["Callable[[HeadroomConfig], bool]", "Callable[[HeadroomConfig], Transform]"]
REGISTRY: dict[str, Factory] = {
    CacheAligner.name: (lambda c: c.cache_aligner.enabled, lambda c: CacheAligner(c.cache_aligner)),
    ToolOutputRouter.name: (
        lambda c: c.smart_crusher.enabled,
        lambda c: ToolOutputRouter(c.smart_crusher, scorer=_explicit_scorer(c)),
    ),
    JSONCompactor.name: (lambda c: c.smart_crusher.enabled, lambda c: JSONCompactor()),
    IntelligentContextManager.name: (
        lambda c: c.fitter == "intelligent_context",
        lambda c: IntelligentContextManager(
            c.intelligent_context,
            _default_toin() if c.intelligent_context.toin_integration else None,
            embedder=_embedder(c),
        ),
    ),
    RollingWindow.name: (
        lambda c: c.fitter == "rolling_window",
        lambda c: RollingWindow(c.rolling_window),
    ),
}


def _explicit_scorer(config: HeadroomConfig) -> Scorer | None:
    """The configured scorer for tool-output cuts; None (BM25) unless one is named, so the
    default path never loads torch."""
    if config.relevance.scorer_type in ("auto", "bm25"):
        return None
    from ..relevance import create_scorer

    return create_scorer(config=config.relevance)


def _embedder(config: HeadroomConfig) -> EmbeddingScorer | None:
    """Embeddings for the context manager's similarity signal, when asked for by name
    (``auto`` is BM25: no torch on the default path)."""
    from ..relevance import EmbeddingScorer

    wanted = config.relevance.scorer_type in ("embedding", "hybrid")
    return EmbeddingScorer(config.relevance.embedding_model) if wanted else None


def _default_toin() -> Toin:
    from ..toin import get_toin

    return get_toin()


def build_transforms(config: HeadroomConfig) -> list[Transform]:
    return [make(config) for enabled, make in REGISTRY.values() if enabled(config)]


__all__ = [
    "REGISTRY",
    "CacheAligner",
    "CrushResult",
    "IntelligentContextManager",
    "JSONCompactor",
    "MessageScore",
    "MessageScorer",
    "Omission",
    "RollingWindow",
    "Routed",
    "SmartCrusher",
    "ToolOutputRouter",
    "build_transforms",
    "fit_text",
]

"""``create_scorer``: a scorer by name, from a registry of factories.

``auto`` picks the hybrid scorer when the ``embeddings`` extra and its model are present and
falls back to BM25 otherwise, logging one warning per process. Asking for ``embedding`` or
``hybrid`` explicitly without the extra raises :class:`ConfigError` with the install hint.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .bm25 import BM25Scorer
from .embedding import INSTALL_HINT, EmbeddingScorer, _missing_libraries, embedding_available
from .hybrid import HybridScorer

if TYPE_CHECKING:
    from ..config import RelevanceScorerConfig
    from ._base import Scorer

logger = logging.getLogger(__name__)

_fallback_warned = False
_fallback_lock = threading.Lock()


def _warn_fallback_once(model: str) -> None:
    global _fallback_warned
    with _fallback_lock:
        if _fallback_warned:
            return
        _fallback_warned = True
    if _missing_libraries():
        logger.warning("embeddings extra not installed; using BM25 (%s)", INSTALL_HINT)
    else:
        logger.warning("embedding model %r not found locally; using BM25", model)


def _bm25(cfg: RelevanceScorerConfig) -> Scorer:
    return BM25Scorer(k1=cfg.bm25_k1, b=cfg.bm25_b)


def _embedding(cfg: RelevanceScorerConfig) -> Scorer:
    return EmbeddingScorer(cfg.embedding_model)


def _hybrid(cfg: RelevanceScorerConfig) -> Scorer:
    return HybridScorer(cfg.hybrid_alpha, bm25=_bm25(cfg), embedding=_embedding(cfg))


def _auto(cfg: RelevanceScorerConfig) -> Scorer:
    if embedding_available(cfg.embedding_model):
        return _hybrid(cfg)
    _warn_fallback_once(cfg.embedding_model)
    return _bm25(cfg)


_REGISTRY: dict[str, Callable[[RelevanceScorerConfig], Scorer]] = {
    "auto": _auto,
    "bm25": _bm25,
    "embedding": _embedding,
    "hybrid": _hybrid,
}


def create_scorer(
    scorer_type: str | None = None,
    config: RelevanceScorerConfig | None = None,
    *,
    alpha: float | None = None,
) -> Scorer:
    """A scorer for ``scorer_type`` (default: ``config.scorer_type``, which defaults to auto).

    ``config`` supplies the BM25 parameters, the embedding model and the hybrid weight;
    ``alpha`` (the reference's name) overrides that weight, ``config.hybrid_alpha``.
    """
    from ..config import RelevanceScorerConfig

    if config is None:
        config = RelevanceScorerConfig()
    if alpha is not None:
        config = RelevanceScorerConfig(**{**config.model_dump(), "hybrid_alpha": alpha})
    name = config.scorer_type if scorer_type is None else scorer_type
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ConfigError(f"scorer_type must be one of {sorted(_REGISTRY)}, got {name!r}")
    return factory(config)

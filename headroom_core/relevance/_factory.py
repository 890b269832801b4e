"""``create_scorer``: a scorer by name, from a registry of factories.

``auto`` is BM25: milliseconds per query where the MiniLM hybrid takes seconds on a CPU,
and torch is never loaded (``tests/benchmarks/bench_scorers.py`` measures what that costs
in ranking). Embeddings are used when asked for by name (``embedding`` or ``hybrid``);
asking for them without the ``embeddings`` extra raises :class:`ConfigError` with the
install hint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .bm25 import BM25Scorer
from .embedding import EmbeddingScorer
from .hybrid import HybridScorer

if TYPE_CHECKING:
    from ..config import RelevanceScorerConfig
    from ._base import Scorer


def _bm25(cfg: RelevanceScorerConfig) -> Scorer:
    return BM25Scorer(k1=cfg.bm25_k1, b=cfg.bm25_b)


def _embedding(cfg: RelevanceScorerConfig) -> Scorer:
    return EmbeddingScorer(cfg.embedding_model)


def _hybrid(cfg: RelevanceScorerConfig) -> Scorer:
    return HybridScorer(cfg.hybrid_alpha, bm25=_bm25(cfg), embedding=_embedding(cfg))


_REGISTRY: dict[str, Callable[[RelevanceScorerConfig], Scorer]] = {
    "auto": _bm25,  # fast and torch-free; embeddings only when named
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

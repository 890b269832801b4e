"""Hybrid relevance: a weighted sum of BM25 (exact terms, ids) and embeddings (meaning).

``alpha * bm25 + (1 - alpha) * embedding``, both in [0, 1], so the sum is too. BM25 is
normalised by the best item (the top lexical match scores 1.0) while the embedding score is
an absolute cosine, so an item needs both kinds of evidence to score near 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .bm25 import BM25Scorer
from .embedding import EmbeddingScorer

if TYPE_CHECKING:
    from ._base import Scorer


class HybridScorer:
    """``alpha`` weighs BM25 (``hybrid_alpha`` in RelevanceScorerConfig); any scorers fit.

    ``embedding`` defaults to :class:`EmbeddingScorer` with the bundled MiniLM, which needs
    the ``embeddings`` extra (ConfigError with the install hint otherwise). A side whose
    weight is 0 is not computed.
    """

    name = "hybrid"

    def __init__(
        self,
        alpha: float = 0.5,
        bm25: Scorer | None = None,
        embedding: Scorer | None = None,
    ) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"hybrid_alpha must be between 0 and 1, got {alpha!r}")
        self.alpha = alpha
        self.bm25: Scorer = bm25 if bm25 is not None else BM25Scorer()
        self.embedding: Scorer = embedding if embedding is not None else EmbeddingScorer()

    def score_items(self, items: Sequence[str], query: str) -> list[float]:
        if not items:
            return []
        zeros = [0.0] * len(items)
        lexical = self.bm25.score_items(items, query) if self.alpha > 0 else zeros
        semantic = self.embedding.score_items(items, query) if self.alpha < 1 else zeros
        a = self.alpha
        return [
            min(1.0, max(0.0, a * lx + (1 - a) * sm))
            for lx, sm in zip(lexical, semantic, strict=True)
        ]

"""Relevance scorers: rank items (tool-output rows, passages, messages) against a query.

Every scorer has ``score_items(items, query) -> list[float]`` with scores in [0, 1].
:class:`BM25Scorer` needs nothing; :class:`EmbeddingScorer` and :class:`HybridScorer` need
the ``embeddings`` extra (torch and sentence-transformers, imported on first use only).
:func:`create_scorer` builds one by name from :class:`~headroom_core.config.RelevanceScorerConfig`.
"""

from __future__ import annotations

from ._base import Scorer
from ._factory import create_scorer
from .bm25 import BM25Scorer, tokenize
from .embedding import EmbeddingCacheInfo, EmbeddingScorer, embedding_available
from .hybrid import HybridScorer

__all__ = [
    "BM25Scorer",
    "EmbeddingCacheInfo",
    "EmbeddingScorer",
    "HybridScorer",
    "Scorer",
    "create_scorer",
    "embedding_available",
    "tokenize",
]

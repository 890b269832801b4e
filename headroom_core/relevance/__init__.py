"""Relevance scorers: rank items (tool-output rows, passages, messages) against a query.

Every scorer has ``score_items(items, query) -> list[float]`` with scores in [0, 1].
"""

from __future__ import annotations

from .bm25 import BM25Scorer, tokenize

__all__ = ["BM25Scorer", "tokenize"]

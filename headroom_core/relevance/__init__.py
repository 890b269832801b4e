"""Relevance scorers: rank items (tool-output rows, passages, messages) against a query.

Every scorer has ``score_items(items, query) -> list[float]`` with scores in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .bm25 import BM25Scorer, tokenize


@runtime_checkable
class Scorer(Protocol):
    """Ranks items against a query; scores in [0, 1], one per item, in item order."""

    def score_items(self, items: Sequence[str], query: str) -> list[float]: ...


__all__ = ["BM25Scorer", "Scorer", "tokenize"]

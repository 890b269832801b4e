"""The scorer protocol every relevance scorer implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Scorer(Protocol):
    """Ranks items against a query; scores in [0, 1], one per item, in item order."""

    def score_items(self, items: Sequence[str], query: str) -> list[float]: ...

"""MessageScorer: how much each droppable unit of a history is worth keeping.

Six signals, each in [0, 1], mixed by :class:`~headroom_core.config.ScoringWeights`
(normalised):

- ``recency``: ``exp(-recency_decay_rate * age)``, age = units after this one;
- ``semantic_similarity``: similarity of the unit to the recent turns (embeddings when an
  embedder is given, else BM25 against the recent text);
- ``toin_importance``: how often the model fetched back cut output of this unit's tools
  (learning from retrievals), 0 without it;
- ``error_indicator``: 1 when the unit reports an error or failure;
- ``forward_reference``: ids, names and paths of the unit that later messages mention;
- ``token_density``: distinct terms per term (repetitive output scores low).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..messages import Message, content_text
from ..relevance.bm25 import BM25Scorer, tokenize
from ._select import _ERROR_TEXT

if TYPE_CHECKING:
    from ..config import ScoringWeights
    from ._fit import Unit

_IDENT = re.compile(r"[A-Za-z0-9_]*(?:\d|[_./-])[A-Za-z0-9_./-]*")


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class Importance(Protocol):
    def importance(self, tool: str | None) -> float: ...


def unit_text(messages: Sequence[Message], unit: Unit) -> str:
    parts = []
    for i in unit.indices:
        m = messages[i]
        parts.append(content_text(m))
        for call in m.get("tool_calls") or ():
            fn = call.get("function") or {}
            parts.append(f"{fn.get('name', '')} {fn.get('arguments', '')}")
    return "\n".join(parts)


def unit_tools(messages: Sequence[Message], unit: Unit) -> list[str]:
    first = messages[unit.indices[0]]
    return [str((c.get("function") or {}).get("name")) for c in first.get("tool_calls") or ()]


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return max(0.0, dot / (na * nb)) if na and nb else 0.0


class MessageScorer:
    def __init__(
        self,
        weights: ScoringWeights,
        *,
        recency_decay_rate: float = 0.1,
        toin: Importance | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.weights = weights.normalized()
        self.decay = recency_decay_rate
        self.toin = toin
        self.embedder = embedder

    def components(
        self, messages: Sequence[Message], units: Sequence[Unit], recent: str
    ) -> list[dict[str, float]]:
        texts = [unit_text(messages, u) for u in units]
        semantic = self._semantic(texts, recent)
        out = []
        for k, (unit, text) in enumerate(zip(units, texts, strict=True)):
            later = " ".join(content_text(m) for m in messages[unit.indices[-1] + 1 :])
            out.append(
                {
                    "recency": math.exp(-self.decay * (len(units) - 1 - k)),
                    "semantic_similarity": semantic[k],
                    "toin_importance": self._toin(messages, unit),
                    "error_indicator": 1.0 if _ERROR_TEXT.search(text) else 0.0,
                    "forward_reference": _forward(text, later),
                    "token_density": _density(text),
                }
            )
        return out

    def score_units(
        self, messages: Sequence[Message], units: Sequence[Unit], recent: str
    ) -> list[float]:
        w: dict[str, Any] = self.weights.model_dump()
        return [
            sum(w[name] * value for name, value in parts.items())
            for parts in self.components(messages, units, recent)
        ]

    def _semantic(self, texts: list[str], recent: str) -> list[float]:
        if not texts or not recent.strip():
            return [0.0] * len(texts)
        if self.embedder is not None:
            vectors = self.embedder.embed([recent, *texts])
            return [_cosine(vectors[0], v) for v in vectors[1:]]
        return BM25Scorer().score_items(texts, recent)

    def _toin(self, messages: Sequence[Message], unit: Unit) -> float:
        if self.toin is None or not unit.is_tool:
            return 0.0
        return max((self.toin.importance(t) for t in unit_tools(messages, unit)), default=0.0)


def _forward(text: str, later: str) -> float:
    idents = {t for t in _IDENT.findall(text) if len(t) >= 4}
    if not idents or not later:
        return 0.0
    hits = sum(1 for t in idents if t in later)
    return min(1.0, hits / 3)


def _density(text: str) -> float:
    terms = tokenize(text)
    return len(set(terms)) / len(terms) if terms else 0.0

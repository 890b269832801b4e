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

:class:`~.intelligent_context.IntelligentContextManager` scores its droppable units with
:meth:`MessageScorer.score_units`; :meth:`MessageScorer.score_messages` (the reference
API's direct call) scores a whole history with the same signals and returns one
:class:`MessageScore` per message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError, InputError
from ..messages import Message, content_text, find_tool_units
from ..relevance.bm25 import BM25Scorer, tokenize
from ._select import _ERROR_TEXT

if TYPE_CHECKING:
    from ..config import ScoringWeights

_IDENT = re.compile(r"[A-Za-z0-9_]*(?:\d|[_./-])[A-Za-z0-9_./-]*")


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class Importance(Protocol):
    def importance(self, tool: str | None) -> float: ...


class Unit(Protocol):
    """What is scored as one: a tool call with its results, or a run of other messages."""

    @property
    def indices(self) -> tuple[int, ...]: ...

    @property
    def is_tool(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class _Group:
    indices: tuple[int, ...]
    is_tool: bool


@dataclass(frozen=True, slots=True)
class MessageScore:
    """How much one message is worth keeping (every score in [0, 1]).

    ``total_score`` mixes the six signals by the normalised :class:`ScoringWeights`; a tool
    call and its results are scored as one unit (``unit_indices``) and share their scores.
    ``is_protected``: the caller's ``protected_indices`` hold it, so the context manager
    never drops it, whatever its score."""

    message_index: int
    total_score: float
    recency_score: float
    semantic_score: float
    toin_score: float
    error_score: float
    reference_score: float
    density_score: float
    is_protected: bool
    unit_indices: tuple[int, ...]


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
    """Scores units of a history. ``toin``: learned importance per tool (None: that signal
    is 0); ``embedder`` (the reference's ``embedding_provider``): anything with
    ``embed(texts)`` for the similarity signal (None: BM25)."""

    def __init__(
        self,
        weights: ScoringWeights | None = None,
        *,
        recency_decay_rate: float = 0.1,
        toin: Importance | None = None,
        embedder: Embedder | None = None,
        embedding_provider: Embedder | None = None,
    ) -> None:
        from ..config import ScoringWeights

        if embedder is not None and embedding_provider is not None:
            raise ConfigError(
                "MessageScorer: embedding_provider is another name for embedder: pass one"
            )
        if recency_decay_rate < 0:
            raise ConfigError(
                f"MessageScorer.recency_decay_rate: expected >= 0, got {recency_decay_rate!r}"
            )
        self.weights = (weights or ScoringWeights()).normalized()
        self.decay = recency_decay_rate
        self.toin = toin
        self.embedder = embedder if embedder is not None else embedding_provider

    def components(
        self, messages: Sequence[Message], units: Sequence[Unit], recent: str
    ) -> list[dict[str, float]]:
        texts = [unit_text(messages, u) for u in units]
        semantic = self._semantic(texts, recent)
        later = _later_idents(messages)
        out = []
        for k, (unit, text) in enumerate(zip(units, texts, strict=True)):
            out.append(
                {
                    "recency": math.exp(-self.decay * (len(units) - 1 - k)),
                    "semantic_similarity": semantic[k],
                    "toin_importance": self._toin(messages, unit),
                    "error_indicator": 1.0 if _ERROR_TEXT.search(text) else 0.0,
                    "forward_reference": _forward(text, later[unit.indices[-1] + 1]),
                    "token_density": _density(text),
                }
            )
        return out

    def score_units(
        self, messages: Sequence[Message], units: Sequence[Unit], recent: str
    ) -> list[float]:
        return [self._total(parts) for parts in self.components(messages, units, recent)]

    def _total(self, parts: dict[str, float]) -> float:
        w: dict[str, float] = self.weights.model_dump()
        return sum(w[name] * value for name, value in parts.items())

    def score_messages(
        self,
        messages: Sequence[Message],
        protected_indices: Iterable[int] | None = None,
        tool_unit_indices: Iterable[int] | None = None,
        *,
        recent: str | None = None,
    ) -> list[MessageScore]:
        """One :class:`MessageScore` per message, in order, by the signals the context
        manager ranks with. A tool call and its results form one unit (found from the
        messages; ``tool_unit_indices``, when given, must all lie in such units); every
        other message is a unit of its own, and recency counts units. ``recent``: the text
        similarity is measured against (default: the last user message and what follows)."""
        msgs = list(messages)
        protected = _indices("protected_indices", protected_indices, len(msgs))
        groups = _groups(msgs, _indices("tool_unit_indices", tool_unit_indices, len(msgs)))
        if recent is None:
            recent = _last_turn_text(msgs)
        scores: list[MessageScore] = []
        for group, parts in zip(groups, self.components(msgs, groups, recent), strict=True):
            total = self._total(parts)
            for i in group.indices:
                scores.append(
                    MessageScore(
                        message_index=i,
                        total_score=total,
                        recency_score=parts["recency"],
                        semantic_score=parts["semantic_similarity"],
                        toin_score=parts["toin_importance"],
                        error_score=parts["error_indicator"],
                        reference_score=parts["forward_reference"],
                        density_score=parts["token_density"],
                        is_protected=i in protected,
                        unit_indices=group.indices,
                    )
                )
        return sorted(scores, key=lambda s: s.message_index)

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


def _idents(text: str) -> set[str]:
    return {t for t in _IDENT.findall(text) if len(t) >= 4}


def _later_idents(messages: Sequence[Message]) -> list[frozenset[str]]:
    """Per position i, the identifiers the messages from i on mention (one pass)."""
    out: list[frozenset[str]] = [frozenset()] * (len(messages) + 1)
    acc: set[str] = set()
    for i in range(len(messages) - 1, -1, -1):
        acc |= _idents(content_text(messages[i]))
        out[i] = frozenset(acc)
    return out


def _forward(text: str, later: frozenset[str]) -> float:
    """Ids, names and paths of the unit (identifiers with a digit or ``_./-``) that later
    messages mention."""
    idents = _idents(text)
    if not idents or not later:
        return 0.0
    hits = len(idents & later)
    return min(1.0, hits / 3)


def _density(text: str) -> float:
    terms = tokenize(text)
    return len(set(terms)) / len(terms) if terms else 0.0


def _indices(name: str, given: Iterable[int] | None, n: int) -> set[int]:
    out = set(given or ())
    bad = sorted(i for i in out if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n)
    if bad:
        raise InputError(f"{name}: not message indices of these {n} messages: {bad}")
    return out


def _groups(messages: list[Message], tool_indices: set[int]) -> list[_Group]:
    """Tool calls with their results, and every other message alone, in message order."""
    unit_of: dict[int, tuple[int, ...]] = {}
    for tool_unit in find_tool_units(messages):
        for i in tool_unit.indices:
            unit_of[i] = tool_unit.indices
    loose = sorted(tool_indices - set(unit_of))
    if loose:
        raise InputError(
            f"tool_unit_indices: messages {loose} are neither an assistant tool call nor "
            "one of its results"
        )
    groups: list[_Group] = []
    for i in range(len(messages)):
        indices = unit_of.get(i)
        if indices is None:
            groups.append(_Group((i,), False))
        elif indices[0] == i:
            groups.append(_Group(indices, True))
    return groups


def _last_turn_text(messages: list[Message]) -> str:
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    start = users[-1] if users else max(0, len(messages) - 1)
    return " ".join(content_text(m) for m in messages[start:])

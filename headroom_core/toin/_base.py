"""The ``Toin`` protocol, the ``ToolStats`` record, field derivation and shared checks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import orjson

from headroom_core.errors import ConfigError, InputError
from headroom_core.relevance.bm25 import STOPWORDS, tokenize

__all__ = [
    "IMPORTANCE_PRIOR",
    "MAX_FIELDS_PER_RETRIEVAL",
    "MAX_FIELD_CHARS",
    "Toin",
    "ToolStats",
    "importance_of",
    "named_keys",
    "query_terms",
]

#: Compressions added to the denominator of :func:`importance_of`: a tool needs evidence
#: before it looks important (one retrieval out of zero compressions gives 0.5, not 1.0).
IMPORTANCE_PRIOR = 2
#: Fields longer than this are not learned (a pasted blob is not a field name).
MAX_FIELD_CHARS = 100
#: At most this many fields are learned from one retrieval, so one long query cannot
#: flood a tool's fields.
MAX_FIELDS_PER_RETRIEVAL = 32


@dataclass(frozen=True, slots=True)
class ToolStats:
    """What TOIN learned about one tool (``tool`` is None for outputs without a tool name).

    ``fields`` maps each learned field to the number of retrievals that needed it, most
    needed first (ties by name); the ``*_by_kind`` maps are sorted by kind.
    """

    tool: str | None
    compressions: int
    retrievals: int
    importance: float
    fields: dict[str, int] = field(default_factory=dict)
    compressions_by_kind: dict[str, int] = field(default_factory=dict)
    retrievals_by_kind: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class Toin(Protocol):
    """Learns, from what the model retrieves, which tools and fields a compressor should spare.

    ``record_compression`` is called when a lossy cut leaves a marker for a tool's output;
    ``record_retrieval`` when the model fetches such an original back. The reads turn the
    counts into advice: :meth:`fields_for` and :meth:`importance`.
    """

    def record_compression(self, tool: str | None, kind: str) -> None:
        """One lossy cut of ``tool``'s output (``kind`` as given to the store of originals)."""
        ...

    def record_retrieval(
        self, tool: str | None, kind: str, query: str | None, fields: Iterable[str] = ()
    ) -> None:
        """The model fetched an original of ``tool`` back; ``fields`` and the query's terms
        are counted as needed once each."""
        ...

    def fields_for(self, tool: str | None) -> frozenset[str]:
        """Fields retrieved for ``tool`` at least ``min_field_count`` times."""
        ...

    def importance(self, tool: str | None) -> float:
        """How often cutting ``tool``'s output had to be undone, in [0, 1]."""
        ...

    def stats(self) -> dict[str | None, ToolStats]:
        """Everything learned, per tool: the tool None first, then by name."""
        ...

    def reset(self, tool: str | None = None) -> None:
        """Forget ``tool`` (``""``: outputs without a tool name), or everything when None."""
        ...

    def close(self) -> None:
        """Release the backend's resources (``with toin:`` calls it on the way out)."""
        ...

    def __enter__(self) -> Toin: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def importance_of(compressions: int, retrievals: int) -> float:
    """``retrievals / (compressions + IMPORTANCE_PRIOR)``, capped at 1.0."""
    return min(1.0, retrievals / (compressions + IMPORTANCE_PRIOR))


def check_min_count(owner: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{owner}.min_field_count: expected an int >= 1, got {value!r}")
    return value


def check_tool(method: str, tool: object) -> str | None:
    """``tool`` normalised: None and ``""`` are the same unknown tool (None)."""
    if tool is not None and not isinstance(tool, str):
        raise InputError(f"{method}: tool must be a str or None, got {type(tool).__name__}")
    return tool or None


def check_kind(method: str, kind: object) -> str:
    if not isinstance(kind, str) or not kind:
        raise InputError(f"{method}: kind must be a non-empty str, got {kind!r}")
    return kind


def check_reset(tool: object) -> tuple[bool, str | None]:
    """(everything?, tool) for ``reset(tool)``: None is everything, ``""`` the unknown tool."""
    if tool is None:
        return True, None
    return False, check_tool("reset", tool)


def query_terms(query: str | None) -> list[str]:
    """Lowercased terms of ``query`` minus stopwords, first occurrence order, no repeats.

    Terms are those of :func:`headroom_core.relevance.tokenize`: ``dep-1027`` gives
    ``dep-1027``, ``dep`` and ``1027``.
    """
    if not query:
        return []
    return [t for t in dict.fromkeys(tokenize(query)) if t not in STOPWORDS]


def learned_fields(query: str | None, fields: Iterable[str]) -> list[str]:
    """What one retrieval teaches: ``fields`` (sorted) then the query's terms, deduplicated,
    empty or over-long ones dropped, at most ``MAX_FIELDS_PER_RETRIEVAL``."""
    if query is not None and not isinstance(query, str):
        raise InputError(f"record_retrieval: query must be a str or None, got {query!r}")
    if isinstance(fields, (str, bytes)) or not isinstance(fields, Iterable):
        raise InputError(
            f"record_retrieval: fields must be an iterable of str, got {type(fields).__name__}"
        )
    given = list(fields)
    bad = [f for f in given if not isinstance(f, str)]
    if bad:
        raise InputError(f"record_retrieval: fields must be str, got {bad[0]!r}")
    out = dict.fromkeys(f for f in [*sorted(given), *query_terms(query)])
    kept = [f for f in out if f and len(f) <= MAX_FIELD_CHARS]
    return kept[:MAX_FIELDS_PER_RETRIEVAL]


def _parse(text: str) -> Any:
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return orjson.loads(stripped)
    except orjson.JSONDecodeError:
        pass
    try:  # NaN, integers beyond 64 bits: the stdlib reads what orjson refuses
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return None


def named_keys(original: str, query: str | None) -> list[str]:
    """Keys of the JSON objects in ``original`` (at any depth) that the query names, sorted.

    A key is named when its lowercase form is one of :func:`query_terms`, so ``status``
    names the key ``status`` and ``statusCode`` names ``statusCode``. Text that is not a
    JSON object or array names nothing.
    """
    terms = set(query_terms(query))
    if not terms or not isinstance(original, str):
        return []
    found: set[str] = set()
    stack = [_parse(original)]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            found.update(k for k in node if isinstance(k, str) and k.lower() in terms)
            stack.extend(v for v in node.values() if isinstance(v, (Mapping, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (Mapping, list)))
    return sorted(found)


def build_stats(
    counts: Iterable[tuple[str | None, str, int, int]],
    fields: Iterable[tuple[str | None, str, int]],
) -> dict[str | None, ToolStats]:
    """Assemble :class:`ToolStats` from (tool, kind, compressions, retrievals) rows and
    (tool, field, count) rows, in the documented order."""
    by_kind: dict[str | None, list[tuple[str, int, int]]] = {}
    for tool, kind, c, r in counts:
        by_kind.setdefault(tool, []).append((kind, c, r))
    learned: dict[str | None, list[tuple[str, int]]] = {}
    for tool, name, n in fields:
        learned.setdefault(tool, []).append((name, n))
    out: dict[str | None, ToolStats] = {}
    for tool in sorted(by_kind.keys() | learned.keys(), key=lambda t: (t is not None, t or "")):
        kinds = sorted(by_kind.get(tool, []))
        c_total = sum(c for _, c, _ in kinds)
        r_total = sum(r for _, _, r in kinds)
        out[tool] = ToolStats(
            tool=tool,
            compressions=c_total,
            retrievals=r_total,
            importance=importance_of(c_total, r_total),
            fields=dict(sorted(learned.get(tool, []), key=lambda fn: (-fn[1], fn[0]))),
            compressions_by_kind={k: c for k, c, _ in kinds if c},
            retrievals_by_kind={k: r for k, _, r in kinds if r},
        )
    return out

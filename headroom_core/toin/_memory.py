"""``MemoryToin``: what TOIN learns, kept in this process only."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

from headroom_core._closing import ClosingContext
from headroom_core.toin._base import (
    ToolStats,
    build_stats,
    check_kind,
    check_min_count,
    check_reset,
    check_tool,
    importance_of,
    learned_fields,
)

__all__ = ["MemoryToin"]


class MemoryToin(ClosingContext):
    """Counts in dicts behind a lock; thread-safe; lost on exit.

    ``min_field_count`` is how many retrievals must have needed a field before
    :meth:`fields_for` returns it.
    """

    __slots__ = ("_counts", "_fields", "_lock", "min_field_count")

    def __init__(self, *, min_field_count: int = 1) -> None:
        self.min_field_count = check_min_count("MemoryToin", min_field_count)
        # (tool, kind) -> [compressions, retrievals]
        self._counts: dict[tuple[str | None, str], list[int]] = {}
        self._fields: dict[str | None, Counter[str]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        with self._lock:
            tools = len({tool for tool, _ in self._counts} | self._fields.keys())
        return f"MemoryToin(<{tools} tools>, min_field_count={self.min_field_count})"

    def record_compression(self, tool: str | None, kind: str) -> None:
        """Count one lossy cut of ``tool``'s output."""
        key = (check_tool("record_compression", tool), check_kind("record_compression", kind))
        with self._lock:
            self._counts.setdefault(key, [0, 0])[0] += 1

    def record_retrieval(
        self, tool: str | None, kind: str, query: str | None, fields: Iterable[str] = ()
    ) -> None:
        """Count one retrieval, and once each ``fields`` and the query's terms as needed."""
        key = (check_tool("record_retrieval", tool), check_kind("record_retrieval", kind))
        learned = learned_fields(query, fields)
        with self._lock:
            self._counts.setdefault(key, [0, 0])[1] += 1
            if learned:
                self._fields.setdefault(key[0], Counter()).update(learned)

    def fields_for(self, tool: str | None) -> frozenset[str]:
        """Fields needed by at least ``min_field_count`` retrievals of ``tool``."""
        tool = check_tool("fields_for", tool)
        with self._lock:
            counts = self._fields.get(tool, Counter())
            return frozenset(f for f, n in counts.items() if n >= self.min_field_count)

    def importance(self, tool: str | None) -> float:
        """``retrievals / (compressions + 2)`` for ``tool``, capped at 1.0."""
        tool = check_tool("importance", tool)
        with self._lock:
            rows = [v for (t, _), v in self._counts.items() if t == tool]
        return importance_of(sum(c for c, _ in rows), sum(r for _, r in rows))

    def stats(self) -> dict[str | None, ToolStats]:
        """Everything learned, per tool: the tool None first, then by name."""
        with self._lock:
            counts = [(t, k, c, r) for (t, k), (c, r) in self._counts.items()]
            fields = [(t, f, n) for t, fc in self._fields.items() for f, n in fc.items()]
        return build_stats(counts, fields)

    def reset(self, tool: str | None = None) -> None:
        """Forget ``tool`` (``""``: outputs without a tool name), or everything when None."""
        everything, name = check_reset(tool)
        with self._lock:
            if everything:
                self._counts.clear()
                self._fields.clear()
                return
            for key in [k for k in self._counts if k[0] == name]:
                del self._counts[key]
            self._fields.pop(name, None)

    def close(self) -> None:
        """Nothing to release; the instance stays usable and keeps what it learned."""

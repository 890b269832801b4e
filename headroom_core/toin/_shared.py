"""``SharedToin``: what TOIN learns, on a server shared by every process and host.

One class over two backends (:mod:`._redis`, :mod:`._postgres`). TOIN sits on the request
path (every tool output asks :meth:`~SharedToin.fields_for`, every lossy cut calls
:meth:`~SharedToin.record_compression`), so it fails open:

- a count that cannot be written within ``timeout_ms`` waits in memory (bounded,
  ``buffer`` rows) and is written by a background thread when the server is back;
- a read that fails answers with the last value this process read for that tool (nothing
  learned, importance 0.0, for a tool it never read);
- :meth:`~SharedToin.stats` and :meth:`~SharedToin.reset` (off the request path) raise
  StorageError when the server cannot be reached.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Protocol

from headroom_core._closing import ClosingContext
from headroom_core._health import Pending
from headroom_core._outbox import Outbox
from headroom_core._remote import Breaker, RemoteOptions, StoreStats
from headroom_core.errors import StorageError
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

__all__ = ["Backend", "Count", "SharedToin"]

#: One event to count: (event id, tool key, kind, retrieval?, fields learned); tool None is
#: "". The id lets a backend apply an event once however often it is sent (Redis).
Count = tuple[str, str, str, bool, tuple[str, ...]]


class Backend(Protocol):
    """Where a :class:`SharedToin` keeps its counts (``bounded`` calls within timeout_ms)."""

    label: str
    breaker: Breaker
    options: RemoteOptions

    def add(
        self,
        counts: list[Count],
        *,
        bounded: bool,
        on_late_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Apply ``counts``; ``bounded``: within timeout_ms (Pending: still running, and
        ``on_late_failure`` hears if it then fails)."""
        ...

    def fields(self, tool: str) -> dict[str, int]: ...

    def totals(self, tool: str) -> tuple[int, int]: ...

    def rows(
        self,
    ) -> tuple[list[tuple[str, str, int, int]], list[tuple[str, str, int]]]: ...

    def reset(self, tool: str | None) -> None: ...

    def close(self) -> None: ...


def _key(tool: str | None) -> str:
    return tool or ""


class SharedToin(ClosingContext):
    """A :class:`~headroom_core.toin.Toin` on a shared server (see the module docstring)."""

    def __init__(self, backend: Backend, *, min_field_count: int = 1) -> None:
        self.min_field_count = check_min_count(type(self).__name__, min_field_count)
        self._backend = backend
        opts = backend.options
        self._lock = threading.Lock()
        self._fields: dict[str, dict[str, int]] = {}  # last read, per tool key
        self._totals: dict[str, tuple[int, int]] = {}
        self._outbox: Outbox[Count] = Outbox(
            f"TOIN on {backend.label}",
            self._write,
            backend.breaker,
            capacity=opts.buffer,
            batch=opts.batch,
            flush_s=opts.flush_ms / 1000.0,
            put_wait_s=opts.timeout_s,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._backend.label!r}, "
            f"min_field_count={self.min_field_count})"
        )

    def _write(self, counts: list[Count]) -> int:
        self._backend.add(counts, bounded=False)
        return 0

    def _count(self, count: Count) -> None:
        def late(exc: BaseException) -> None:
            self._outbox.put(count)

        try:
            self._backend.add([count], bounded=True, on_late_failure=late)
        except Pending:
            pass  # still running; a late failure queues it
        except StorageError:
            self._outbox.put(count)

    def record_compression(self, tool: str | None, kind: str) -> None:
        """Count one lossy cut of ``tool``'s output."""
        key = _key(check_tool("record_compression", tool))
        self._count((uuid.uuid4().hex, key, check_kind("record_compression", kind), False, ()))

    def record_retrieval(
        self, tool: str | None, kind: str, query: str | None, fields: Iterable[str] = ()
    ) -> None:
        """Count one retrieval, and once each ``fields`` and the query's terms as needed."""
        key = _key(check_tool("record_retrieval", tool))
        kind = check_kind("record_retrieval", kind)
        self._count((uuid.uuid4().hex, key, kind, True, tuple(learned_fields(query, fields))))

    def fields_for(self, tool: str | None) -> frozenset[str]:
        """Fields needed by at least ``min_field_count`` retrievals of ``tool``."""
        key = _key(check_tool("fields_for", tool))
        try:
            counts = self._backend.fields(key)
            with self._lock:
                self._fields[key] = counts
        except StorageError:
            with self._lock:
                counts = self._fields.get(key, {})
        return frozenset(f for f, n in counts.items() if n >= self.min_field_count)

    def importance(self, tool: str | None) -> float:
        """``retrievals / (compressions + 2)`` for ``tool``, capped at 1.0."""
        key = _key(check_tool("importance", tool))
        try:
            totals = self._backend.totals(key)
            with self._lock:
                self._totals[key] = totals
        except StorageError:
            with self._lock:
                totals = self._totals.get(key, (0, 0))
        return importance_of(*totals)

    def stats(self) -> dict[str | None, ToolStats]:
        """Everything learned, per tool: the tool None first, then by name (StorageError if
        the server cannot be reached)."""
        self.flush()
        counts, fields = self._backend.rows()
        return build_stats(
            ((t or None, k, c, r) for t, k, c, r in counts),
            ((t or None, f, n) for t, f, n in fields),
        )

    def reset(self, tool: str | None = None) -> None:
        """Forget ``tool`` (``""``: outputs without a tool name), or everything when None
        (for every process sharing the server)."""
        everything, name = check_reset(tool)
        self.flush()
        self._backend.reset(None if everything else _key(name))
        with self._lock:
            if everything:
                self._fields.clear()
                self._totals.clear()
            else:
                self._fields.pop(_key(name), None)
                self._totals.pop(_key(name), None)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until counts buffered during an outage are written (True)."""
        return self._outbox.flush(
            self._backend.options.read_timeout_s if timeout is None else timeout
        )

    def store_stats(self) -> StoreStats:
        """Health and counts of this TOIN's server in this process."""
        box = self._outbox
        return self._backend.breaker.stats(
            pending=box.pending, written=box.written, dropped=box.dropped
        )

    def close(self) -> None:
        """Write buffered counts (within ``read_timeout_s``), then release. Idempotent."""
        self._outbox.close(self._backend.options.read_timeout_s)
        self._backend.close()

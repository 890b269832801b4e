"""Opening a metrics store from a URL, and the in-memory store.

URLs follow SQLAlchemy's slash convention: after ``scheme://`` one slash starts the
path, so three slashes give a relative path and four an absolute one::

    sqlite:///headroom.db           ./headroom.db (relative to the working directory)
    sqlite:////var/lib/headroom.db  /var/lib/headroom.db
    jsonl:///logs/metrics.jsonl     ./logs/metrics.jsonl
    memory://                       in this process only; for tests and simulate()
    postgresql://user@host:5432/db  shared by every process and host (extra "postgres");
                                    options as query parameters, see _remote.RemoteOptions
"""

from __future__ import annotations

import threading
from datetime import datetime

from headroom_core._closing import ClosingContext
from headroom_core._store_url import DEFAULT_METRICS_URL, StoreRegistry, file_path, no_path
from headroom_core.errors import InputError, StorageError
from headroom_core.metrics._base import (
    MetricsStore,
    check_query,
    dumps,
    select,
    summarize,
)
from headroom_core.metrics._jsonl import JSONLMetricsStore
from headroom_core.metrics._sqlite import SQLiteMetricsStore
from headroom_core.metrics.records import RequestMetrics, Summary

__all__ = [
    "DEFAULT_METRICS_URL",
    "DEFAULT_URL",
    "MemoryMetricsStore",
    "MetricsStore",
    "open_store",
    "store_schemes",
]

DEFAULT_URL = DEFAULT_METRICS_URL  # the name this module has always exported


class MemoryMetricsStore(ClosingContext):
    """Records kept in a list in this process; thread-safe; lost on exit."""

    __slots__ = ("_closed", "_lock", "_records")

    def __init__(self) -> None:
        self._records: list[RequestMetrics] = []
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryMetricsStore(<{len(self._records)} records>)"

    def _snapshot(self) -> list[RequestMetrics]:
        with self._lock:
            if self._closed:
                raise StorageError("in-memory metrics store is closed")
            return list(self._records)

    def record(self, m: RequestMetrics) -> None:
        """Add one record."""
        if not isinstance(m, RequestMetrics):
            raise InputError(f"record: expected RequestMetrics, got {type(m).__name__}")
        dumps(m.to_dict(), m)  # same contract as the file stores: JSON-serialisable or refused
        with self._lock:
            if self._closed:
                raise StorageError("in-memory metrics store is closed")
            self._records.append(m)

    def get_metrics(
        self,
        limit: int | None = 100,
        *,
        since: datetime | None = None,
        model: str | None = None,
    ) -> list[RequestMetrics]:
        """Records newest first (ties: the later-recorded first)."""
        check_query(limit, since)
        return select(self._snapshot(), limit, since, model)

    def get_summary(self, *, since: datetime | None = None) -> Summary:
        """Totals over the records at or after ``since``."""
        return summarize(self._snapshot(), since)

    def close(self) -> None:
        """Drop the records. Idempotent."""
        with self._lock:
            self._closed = True
            self._records.clear()


def _open_sqlite(url: str, rest: str) -> MetricsStore:
    return SQLiteMetricsStore(file_path(_WHAT, url, rest, "scheme"))


def _open_jsonl(url: str, rest: str) -> MetricsStore:
    return JSONLMetricsStore(file_path(_WHAT, url, rest, "scheme"))


def _open_memory(url: str, rest: str) -> MetricsStore:
    no_path(_WHAT, url, rest)
    return MemoryMetricsStore()


def _open_postgres(url: str, rest: str) -> MetricsStore:
    from headroom_core.metrics._postgres import PostgresMetricsStore  # psycopg: lazily

    return PostgresMetricsStore(url)


_WHAT = "metrics store"
# scheme -> factory(url, text after "scheme://"). A new store is one new entry here.
_REGISTRY: StoreRegistry[MetricsStore] = StoreRegistry(
    _WHAT,
    {
        "sqlite": _open_sqlite,
        "jsonl": _open_jsonl,
        "memory": _open_memory,
        "postgresql": _open_postgres,
        "postgres": _open_postgres,
    },
)


def store_schemes() -> tuple[str, ...]:
    """The URL schemes ``open_store`` knows."""
    return _REGISTRY.schemes()


def open_store(url: str = DEFAULT_URL) -> MetricsStore:
    """Open (creating if needed, with parent directories) the store that ``url`` names.

    Raises ConfigError for a malformed URL or an unknown scheme, StorageError when the
    file cannot be opened or is not a store of that kind.
    """
    return _REGISTRY.open(url)

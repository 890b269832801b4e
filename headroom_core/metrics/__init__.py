"""Request metrics and where they are kept.

``RequestMetrics`` is one request's record; ``open_store(url)`` opens a ``MetricsStore``
(``sqlite:///headroom.db``, ``jsonl:///metrics.jsonl``, ``memory://``) to record and
query them. Standard library and orjson only; ``postgresql://`` loads psycopg when opened.
``store_stats(store)`` reports the health of a shared store (None for a local one).
"""

from __future__ import annotations

from headroom_core._health import StoreStats, store_stats
from headroom_core.metrics._base import MetricsStore
from headroom_core.metrics._jsonl import JSONLMetricsStore
from headroom_core.metrics._sqlite import SQLiteMetricsStore
from headroom_core.metrics.records import RequestMetrics, Summary
from headroom_core.metrics.store import DEFAULT_METRICS_URL, MemoryMetricsStore, open_store

__all__ = [
    "DEFAULT_METRICS_URL",
    "JSONLMetricsStore",
    "MemoryMetricsStore",
    "MetricsStore",
    "RequestMetrics",
    "SQLiteMetricsStore",
    "StoreStats",
    "Summary",
    "open_store",
    "store_stats",
]

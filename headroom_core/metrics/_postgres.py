"""``PostgresMetricsStore``: metrics shared by every process and host that opens one URL.

``record`` never waits on the network: the row is checked, queued in memory (bounded,
``buffer`` rows) and written in batches by a background thread
(:class:`~headroom_core._outbox.Outbox`). Rows carry (writer, sequence) keys with a unique
index, so a batch retried after a lost acknowledgement is not written twice. While the
server is down rows wait; when the queue is full new rows are dropped, counted in
``stats().dropped`` and ``get_summary().dropped_records``, and logged.

Reads (``get_metrics``, ``get_summary``, the report's aggregates) first wait for this
process's queued rows, then run as SQL in the server; they raise StorageError when the
server cannot be reached. Besides the record's own fields each row keeps a few columns
derived from it (waste per category, projected saving, prefix hashes, ...) with the same
readers the report uses, so the report runs as SQL aggregates and agrees with the other
stores.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson

from headroom_core._closing import ClosingContext
from headroom_core._outbox import Outbox
from headroom_core._postgres import Database, database, psycopg
from headroom_core._remote import StoreStats, redact
from headroom_core.errors import InputError, StorageError
from headroom_core.metrics._aggregates import ReportAggregates
from headroom_core.metrics._base import check_query
from headroom_core.metrics._pg_report import report_aggregates
from headroom_core.metrics._pg_schema import (
    INSERT,
    MIGRATIONS,
    SELECT_RECORD,
    record_of,
    row_of,
    summary_in,
)
from headroom_core.metrics.records import RequestMetrics, Summary

__all__ = ["PostgresMetricsStore"]

_WHAT = "metrics store"


class PostgresMetricsStore(ClosingContext):
    """Metrics in PostgreSQL (see the module docstring). ``url``: ``postgresql://user@host:
    port/db`` with options as query parameters (``timeout_ms``, ``buffer``, ``batch``,
    ``flush_ms``, ``retry_s``, ``read_timeout_s``, ``pool_max``); other parameters go to libpq.
    """

    def __init__(self, url: str) -> None:
        self._db: Database = database(_WHAT, url, "metrics", MIGRATIONS)
        self._url = url
        self._writer = uuid.uuid4().hex
        self._seq = itertools.count(1)
        self._closed = False
        opts = self._db.options
        self._outbox: Outbox[tuple[Any, ...]] = Outbox(
            f"metrics on {self._db.label}",
            self._write,
            self._db.breaker,
            capacity=opts.buffer,
            batch=opts.batch,
            flush_s=opts.flush_ms / 1000.0,
            put_wait_s=opts.timeout_s,
        )

    def __repr__(self) -> str:
        return f"PostgresMetricsStore({redact(self._url)!r})"

    @property
    def database(self) -> Database:
        return self._db

    # -- writes ----------------------------------------------------------------------------

    def record(self, m: RequestMetrics) -> None:
        """Queue one record (never waits on the network; see ``stats()``)."""
        row = row_of(m)
        if self._closed:
            raise StorageError(f"metrics store {self._db.label} is closed")
        self._outbox.put((self._writer, next(self._seq), *row))

    def _write(self, rows: list[tuple[Any, ...]]) -> int:
        def insert(conn: psycopg.Connection[Any]) -> int:
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(INSERT, rows)
                return 0
            except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError):
                pass  # a bad row in the batch: write them one by one, drop the bad ones
            refused = 0
            for row in rows:
                try:
                    with conn.transaction():
                        conn.execute(INSERT, row)
                except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError):
                    refused += 1
            return refused

        return self._db.background(insert)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until this process's queued rows are written (True), a write fails or
        ``timeout`` (default ``read_timeout_s``) passes (False)."""
        return self._outbox.flush(self._db.options.read_timeout_s if timeout is None else timeout)

    # -- reads -----------------------------------------------------------------------------

    def _read(self, fn: Any) -> Any:
        if self._closed:
            raise StorageError(f"metrics store {self._db.label} is closed")
        self.flush()
        return self._db.read(fn)

    def get_metrics(
        self,
        limit: int | None = 100,
        *,
        since: datetime | None = None,
        model: str | None = None,
    ) -> list[RequestMetrics]:
        """Records newest first (ties: the later-inserted first), filtered in SQL."""
        check_query(limit, since)
        sql = SELECT_RECORD + " WHERE (%(since)s::timestamptz IS NULL OR ts >= %(since)s)"
        params: dict[str, Any] = {"since": since, "model": model, "limit": limit}
        if model is not None:
            sql += " AND model = %(model)s"
        sql += " ORDER BY ts DESC, seq DESC"
        if limit is not None:
            sql += " LIMIT %(limit)s"
        rows = self._read(lambda c: c.execute(sql, params).fetchall())
        try:
            return [record_of(r) for r in rows]
        except (orjson.JSONDecodeError, InputError, TypeError) as exc:
            raise StorageError(f"cannot decode a row of {self._db.label}: {exc}") from exc

    def get_summary(self, *, since: datetime | None = None) -> Summary:
        """Totals computed by SQL aggregates in one snapshot (no rows are loaded);
        ``dropped_records``: rows this process could not write."""
        check_query(None, since)

        def query(c: psycopg.Connection[Any]) -> Summary:
            with c.transaction():
                c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                return summary_in(c, since)

        summary: Summary = self._read(query)
        return replace(summary, dropped_records=self._outbox.dropped)

    def report_aggregates(
        self,
        *,
        since: datetime | None,
        period: str,
        top: int,
        window_for: Callable[[str, str], int | None],
        price_for: Callable[[str, str], float | None],
    ) -> ReportAggregates:
        """The report's numbers as SQL aggregates in one snapshot (see :mod:`._pg_report`)."""
        check_query(None, since)
        if self._closed:
            raise StorageError(f"metrics store {self._db.label} is closed")
        self.flush()
        return report_aggregates(
            self._db,
            since=since,
            period=period,
            top=top,
            window_for=window_for,
            price_for=price_for,
        )

    def store_stats(self) -> StoreStats:
        """Health and counts of this store in this process."""
        box = self._outbox
        return self._db.breaker.stats(pending=box.pending, written=box.written, dropped=box.dropped)

    def close(self) -> None:
        """Write what is queued (within ``read_timeout_s``), then release. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._outbox.close(self._db.options.read_timeout_s)
        self._db.release()

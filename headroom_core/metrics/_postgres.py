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
from headroom_core.metrics._base import check_query, dumps
from headroom_core.metrics._fields import (
    extra_int,
    extra_str,
    extra_strs,
    projected_saved,
    sent_tokens,
    waste_tokens,
)
from headroom_core.metrics.records import RequestMetrics, Summary

__all__ = [
    "MIGRATIONS",
    "SELECT_RECORD",
    "TABLE",
    "PostgresMetricsStore",
    "record_of",
    "summary_in",
]

_WHAT = "metrics store"
TABLE = "headroom_request_metrics"

#: (version, statements): the schema of the ``metrics`` component, applied in order.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            f"""CREATE TABLE {TABLE} (
                seq                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                writer              TEXT             NOT NULL,
                wseq                BIGINT           NOT NULL,
                request_id          TEXT             NOT NULL,
                ts                  TIMESTAMPTZ      NOT NULL,
                model               TEXT             NOT NULL,
                mode                TEXT             NOT NULL,
                tokens_input_before BIGINT           NOT NULL,
                tokens_input_after  BIGINT           NOT NULL,
                tokens_output       BIGINT,
                cached_tokens       BIGINT,
                cost_before         DOUBLE PRECISION,
                cost_after          DOUBLE PRECISION,
                transforms_applied  TEXT             NOT NULL,  -- JSON, as recorded
                waste_signals       TEXT             NOT NULL,  -- JSON, as recorded
                stream              BOOLEAN          NOT NULL,
                provider            TEXT             NOT NULL,
                source              TEXT             NOT NULL,
                error               TEXT,
                extra               TEXT             NOT NULL,  -- JSON, as recorded
                -- derived from the record for the report's aggregates
                measured            BOOLEAN          NOT NULL,  -- has waste signals
                waste               JSONB            NOT NULL,  -- positive int waste per category
                waste_total         BIGINT           NOT NULL,
                projected_saved     BIGINT,                     -- audit rows only
                sent_tokens         BIGINT           NOT NULL,
                prefix_hash         TEXT,
                prefix_hash_aligned TEXT,
                prefix_tokens       BIGINT,
                dynamic_values      BIGINT,
                failures            TEXT[]           NOT NULL,
                UNIQUE (writer, wseq)
            )""",
            f"CREATE INDEX ix_{TABLE}_ts ON {TABLE} (ts, seq)",
            f"CREATE INDEX ix_{TABLE}_model_ts ON {TABLE} (model, ts)",
            f"CREATE INDEX ix_{TABLE}_prefix ON {TABLE} (source, provider, model, ts, seq) "
            "WHERE prefix_hash IS NOT NULL",
        ),
    ),
)

_RECORD_COLUMNS = (
    "request_id", "ts", "model", "mode", "tokens_input_before", "tokens_input_after",
    "tokens_output", "cached_tokens", "cost_before", "cost_after", "transforms_applied",
    "waste_signals", "stream", "provider", "source", "error", "extra",
)  # fmt: skip
_DERIVED_COLUMNS = (
    "measured", "waste", "waste_total", "projected_saved", "sent_tokens", "prefix_hash",
    "prefix_hash_aligned", "prefix_tokens", "dynamic_values", "failures",
)  # fmt: skip
_ALL = ("writer", "wseq", *_RECORD_COLUMNS, *_DERIVED_COLUMNS)
_INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(_ALL)}) VALUES ({', '.join('%s' for _ in _ALL)}) "
    "ON CONFLICT (writer, wseq) DO NOTHING"
)
SELECT_RECORD = f"SELECT {', '.join(_RECORD_COLUMNS)} FROM {TABLE}"

_SUMMARY = f"""
SELECT COUNT(*),
       COALESCE(SUM(tokens_input_before), 0),
       COALESCE(SUM(tokens_input_after), 0),
       COALESCE(SUM(GREATEST(tokens_input_before - tokens_input_after, 0)), 0),
       COALESCE(SUM(cost_before), 0),
       COALESCE(SUM(cost_after), 0),
       COALESCE(SUM(GREATEST(cost_before - cost_after, 0)), 0),
       MIN(ts),
       MAX(ts)
FROM {TABLE} WHERE (%(since)s::timestamptz IS NULL OR ts >= %(since)s)
"""
_BY_MODE = (
    f"SELECT mode, COUNT(*) FROM {TABLE} "
    "WHERE (%(since)s::timestamptz IS NULL OR ts >= %(since)s) GROUP BY mode"
)


def summary_in(c: psycopg.Connection[Any], since: datetime | None) -> Summary:
    """The Summary of the rows at or after ``since``, by two aggregate queries on ``c``."""
    params = {"since": since}
    totals = c.execute(_SUMMARY, params).fetchone()
    modes = c.execute(_BY_MODE, params).fetchall()
    count, before, after, saved, c_before, c_after, c_saved, first, last = totals or (
        (0,) * 7 + (None, None)
    )
    before, saved = int(before), int(saved)
    return Summary(
        requests=int(count),
        total_tokens_before=before,
        total_tokens_after=int(after),
        total_tokens_saved=saved,
        savings_percent=100.0 * saved / before if before > 0 else 0.0,
        total_cost_before=float(c_before),
        total_cost_after=float(c_after),
        cost_saved=float(c_saved),
        by_mode=dict(sorted((str(k), int(n)) for k, n in modes)),
        first_timestamp=first,
        last_timestamp=last,
    )


def _check_text(m: RequestMetrics, values: tuple[Any, ...]) -> None:
    """PostgreSQL text holds neither NUL nor lone surrogates: refuse such a record now
    (InputError) rather than lose it in the background."""
    for v in values:
        if isinstance(v, str):
            if "\x00" in v:
                raise InputError(
                    f"RequestMetrics {m.request_id}: PostgreSQL cannot store text holding "
                    "a NUL character"
                )
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError(
                    f"RequestMetrics {m.request_id}: text that is not valid Unicode: {exc}"
                ) from exc


def row_of(m: RequestMetrics) -> tuple[Any, ...]:
    """The record's columns then its derived columns (InputError if it cannot be stored)."""
    if not isinstance(m, RequestMetrics):
        raise InputError(f"record: expected RequestMetrics, got {type(m).__name__}")
    waste = waste_tokens(m)
    row = (
        m.request_id, m.timestamp, m.model, m.mode, m.tokens_input_before,
        m.tokens_input_after, m.tokens_output, m.cached_tokens, m.cost_before, m.cost_after,
        dumps(list(m.transforms_applied), m).decode(), dumps(dict(m.waste_signals), m).decode(),
        m.stream, m.provider, m.source, m.error, dumps(m.extra, m).decode(),
        bool(m.waste_signals), orjson.dumps(waste).decode(), sum(waste.values()),
        projected_saved(m), sent_tokens(m), extra_str(m, "prefix_hash"),
        extra_str(m, "prefix_hash_aligned"), extra_int(m, "prefix_tokens"),
        extra_int(m, "dynamic_values"), list(extra_strs(m, "failures")),
    )  # fmt: skip
    texts = (row[0], row[2], row[3], row[13], row[14], row[15], row[22], row[23])
    _check_text(m, (*texts, *row[26], *waste))
    if any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in (*row, *waste.values())):
        raise InputError(f"RequestMetrics {m.request_id}: a number beyond 64 bits")
    return row


def record_of(row: tuple[Any, ...]) -> RequestMetrics:
    v = dict(zip(_RECORD_COLUMNS, row, strict=True))
    v["timestamp"] = v.pop("ts")
    for name in ("transforms_applied", "waste_signals", "extra"):
        v[name] = orjson.loads(v[name])
    v["transforms_applied"] = tuple(v["transforms_applied"])
    return RequestMetrics(**v)


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
                    cur.executemany(_INSERT, rows)
                return 0
            except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError):
                pass  # a bad row in the batch: write them one by one, drop the bad ones
            refused = 0
            for row in rows:
                try:
                    with conn.transaction():
                        conn.execute(_INSERT, row)
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
        from headroom_core.metrics._pg_report import report_aggregates

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
        b = self._db.breaker
        return StoreStats(
            store=self._db.label,
            available=b.available,
            failures=b.failures,
            pending=self._outbox.pending,
            written=self._outbox.written,
            dropped=self._outbox.dropped,
            down_since=b.down_since,
            last_error=b.last_error,
        )

    def close(self) -> None:
        """Write what is queued (within ``read_timeout_s``), then release. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._outbox.close(self._db.options.read_timeout_s)
        self._db.release()

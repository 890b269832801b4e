"""``SQLiteMetricsStore``: metrics in one SQLite file, safe for many threads and processes.

Concurrency: the database runs in WAL mode with a 30 s busy timeout, so writers from
other processes wait for the lock instead of failing. Inside a process one connection
is shared by all threads behind a lock (SQLite serialises writers anyway; one connection
means nothing to leak when threads come and go). A forked child notices the new pid and
opens its own connection rather than reusing the parent's.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson

from headroom_core._sqlite import SQLiteFile
from headroom_core.errors import InputError, StorageError
from headroom_core.metrics._base import check_query, dumps
from headroom_core.metrics.records import (
    SENT_MODES,
    RequestMetrics,
    Summary,
    from_epoch_us,
    to_epoch_us,
)

__all__ = ["SCHEMA_VERSION", "SQLiteMetricsStore"]

#: Stored in ``PRAGMA user_version``; bumped when the table layout changes.
SCHEMA_VERSION = 1

_T = TypeVar("_T")

_COLUMNS = (
    "request_id", "ts_us", "model", "mode", "tokens_input_before", "tokens_input_after",
    "tokens_output", "cached_tokens", "cost_before", "cost_after", "transforms_applied",
    "waste_signals", "stream", "provider", "source", "error", "extra",
)  # fmt: skip

_SCHEMA = """
CREATE TABLE IF NOT EXISTS request_metrics (
    seq                 INTEGER PRIMARY KEY,
    request_id          TEXT    NOT NULL,
    ts_us               INTEGER NOT NULL,
    model               TEXT    NOT NULL,
    mode                TEXT    NOT NULL,
    tokens_input_before INTEGER NOT NULL,
    tokens_input_after  INTEGER NOT NULL,
    tokens_output       INTEGER,
    cached_tokens       INTEGER,
    cost_before         REAL,
    cost_after          REAL,
    transforms_applied  TEXT    NOT NULL,
    waste_signals       TEXT    NOT NULL,
    stream              INTEGER NOT NULL,
    provider            TEXT    NOT NULL,
    source              TEXT    NOT NULL,
    error               TEXT,
    extra               TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_request_metrics_ts ON request_metrics (ts_us);
CREATE INDEX IF NOT EXISTS ix_request_metrics_model_ts ON request_metrics (model, ts_us);
"""

_INSERT = (
    f"INSERT INTO request_metrics ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)

# Tokens, costs and savings count only requests that were sent (SENT_MODES): a
# 'simulate' record is a preview (see Summary); every record counts in COUNT and the times.
_SENT = "mode IN ({})".format(", ".join(f"'{m}'" for m in sorted(SENT_MODES)))
_SUMMARY = f"""
SELECT COUNT(*),
       COALESCE(SUM(CASE WHEN {_SENT} THEN tokens_input_before END), 0),
       COALESCE(SUM(CASE WHEN {_SENT} THEN tokens_input_after END), 0),
       COALESCE(SUM(CASE WHEN {_SENT}
                         THEN MAX(tokens_input_before - tokens_input_after, 0) END), 0),
       TOTAL(CASE WHEN {_SENT} THEN cost_before END),
       TOTAL(CASE WHEN {_SENT} THEN cost_after END),
       TOTAL(CASE WHEN {_SENT} AND cost_before IS NOT NULL AND cost_after IS NOT NULL
                  THEN MAX(cost_before - cost_after, 0.0) END),
       MIN(ts_us),
       MAX(ts_us)
FROM request_metrics WHERE ts_us >= ?
"""

_BY_MODE = "SELECT mode, COUNT(*) FROM request_metrics WHERE ts_us >= ? GROUP BY mode"

_MIN_US = -(2**63)


def _dumps(value: object, m: RequestMetrics) -> str:
    return dumps(value, m).decode()


def _row(m: RequestMetrics) -> tuple[Any, ...]:
    return (
        m.request_id, to_epoch_us(m.timestamp), m.model, m.mode, m.tokens_input_before,
        m.tokens_input_after, m.tokens_output, m.cached_tokens, m.cost_before, m.cost_after,
        _dumps(list(m.transforms_applied), m), _dumps(dict(m.waste_signals), m),
        int(m.stream), m.provider, m.source, m.error, _dumps(m.extra, m),
    )  # fmt: skip


def _from_row(row: Sequence[Any]) -> RequestMetrics:
    v = dict(zip(_COLUMNS, row, strict=True))
    return RequestMetrics(
        request_id=v["request_id"],
        timestamp=from_epoch_us(v["ts_us"]),
        model=v["model"],
        mode=v["mode"],
        tokens_input_before=v["tokens_input_before"],
        tokens_input_after=v["tokens_input_after"],
        tokens_output=v["tokens_output"],
        cached_tokens=v["cached_tokens"],
        cost_before=v["cost_before"],
        cost_after=v["cost_after"],
        transforms_applied=tuple(orjson.loads(v["transforms_applied"])),
        waste_signals=orjson.loads(v["waste_signals"]),
        stream=bool(v["stream"]),
        provider=v["provider"],
        source=v["source"],
        error=v["error"],
        extra=orjson.loads(v["extra"]),
    )


class SQLiteMetricsStore(SQLiteFile):
    """Metrics in a SQLite file (created with its parent directories if missing).

    A file that is not a SQLite database, a directory, or a path without permission
    raises StorageError naming the path, at construction.
    """

    __slots__ = ()
    what = "metrics database"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, hint="use open_store('memory://') for an in-memory store")

    def __repr__(self) -> str:
        return f"SQLiteMetricsStore({str(self._path)!r})"

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")  # one process creates the schema, the others wait
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"metrics database {self._path} has schema version {version}, newer than "
                    f"{SCHEMA_VERSION} which this version of headroom reads; upgrade headroom"
                )
            if version < SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def record(self, m: RequestMetrics) -> None:
        """Insert one record (waits up to 30 s for another writer's lock)."""
        if not isinstance(m, RequestMetrics):
            raise InputError(f"record: expected RequestMetrics, got {type(m).__name__}")
        row = _row(m)
        self._run("write to", lambda c: c.execute(_INSERT, row))

    def get_metrics(
        self,
        limit: int | None = 100,
        *,
        since: datetime | None = None,
        model: str | None = None,
    ) -> list[RequestMetrics]:
        """Records newest first (ties: the later-inserted first), filtered in SQL."""
        check_query(limit, since)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM request_metrics WHERE ts_us >= ?"
        params: list[Any] = [_MIN_US if since is None else to_epoch_us(since)]
        if model is not None:
            sql += " AND model = ?"
            params.append(model)
        sql += " ORDER BY ts_us DESC, seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._run("read", lambda c: c.execute(sql, params).fetchall())
        try:
            return [_from_row(r) for r in rows]
        except (orjson.JSONDecodeError, InputError, TypeError, KeyError) as exc:
            raise self._fail("decode a row of", exc) from exc

    def get_summary(self, *, since: datetime | None = None) -> Summary:
        """Totals computed by SQL aggregates (no rows are loaded)."""
        check_query(None, since)
        lo = _MIN_US if since is None else to_epoch_us(since)

        def query(c: sqlite3.Connection) -> tuple[tuple[Any, ...], list[tuple[str, int]]]:
            c.execute("BEGIN")  # one snapshot for both queries
            try:
                totals = c.execute(_SUMMARY, (lo,)).fetchone()
                modes = c.execute(_BY_MODE, (lo,)).fetchall()
            finally:
                c.execute("COMMIT")
            return totals, modes

        totals, modes = self._run("read", query)
        count, before, after, saved, c_before, c_after, c_saved, first, last = totals
        return Summary(
            requests=count,
            total_tokens_before=before,
            total_tokens_after=after,
            total_tokens_saved=saved,
            savings_percent=100.0 * saved / before if before > 0 else 0.0,
            total_cost_before=c_before,
            total_cost_after=c_after,
            cost_saved=c_saved,
            by_mode=dict(sorted(modes)),
            first_timestamp=None if first is None else from_epoch_us(first),
            last_timestamp=None if last is None else from_epoch_us(last),
        )

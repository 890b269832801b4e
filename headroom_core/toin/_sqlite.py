"""``SQLiteToin``: what TOIN learns, in one SQLite file shared by threads and processes.

Concurrency is that of :class:`headroom_core._sqlite.SQLiteFile`: WAL mode and a busy
timeout, so writers from other processes wait instead of failing; one connection per
process behind a lock; a forked child opens its own. Every count is an UPSERT that adds
one inside a write transaction, so concurrent writers never lose an increment.

Tables are prefixed ``toin_`` and the schema version lives in ``toin_schema``, so the
file can also hold the metrics and the originals. The tool None is stored as ``''``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable

from headroom_core._sqlite import SQLiteFile, immediate, versioned_schema
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

__all__ = ["SCHEMA_VERSION", "SQLiteToin"]

#: Stored in table ``toin_schema``; bumped when the layout changes.
SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE toin_counts (
        tool         TEXT    NOT NULL,  -- '' for outputs without a tool name
        kind         TEXT    NOT NULL,
        compressions INTEGER NOT NULL,
        retrievals   INTEGER NOT NULL,
        PRIMARY KEY (tool, kind)
    )""",
    """CREATE TABLE toin_fields (
        tool  TEXT    NOT NULL,
        field TEXT    NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (tool, field)
    )""",
)

_ADD_COMPRESSION = (
    "INSERT INTO toin_counts (tool, kind, compressions, retrievals) VALUES (?, ?, 1, 0) "
    "ON CONFLICT (tool, kind) DO UPDATE SET compressions = compressions + 1"
)
_ADD_RETRIEVAL = (
    "INSERT INTO toin_counts (tool, kind, compressions, retrievals) VALUES (?, ?, 0, 1) "
    "ON CONFLICT (tool, kind) DO UPDATE SET retrievals = retrievals + 1"
)
_ADD_FIELD = (
    "INSERT INTO toin_fields (tool, field, count) VALUES (?, ?, 1) "
    "ON CONFLICT (tool, field) DO UPDATE SET count = count + 1"
)


def _key(tool: str | None) -> str:
    return tool or ""


def _tool(key: str) -> str | None:
    return key or None


class SQLiteToin(SQLiteFile):
    """TOIN's counts in a SQLite file (created with its parent directories if missing).

    ``min_field_count`` is how many retrievals must have needed a field before
    :meth:`fields_for` returns it. A file that is not a SQLite database, a directory, or
    a path without permission raises StorageError naming the path, at construction.
    """

    __slots__ = ("min_field_count",)
    what = "TOIN database"

    def __init__(self, path: str | os.PathLike[str], *, min_field_count: int = 1) -> None:
        self.min_field_count = check_min_count("SQLiteToin", min_field_count)
        super().__init__(path, hint="use open_toin('memory://') for an in-memory TOIN")

    def __repr__(self) -> str:
        return f"SQLiteToin({str(self._path)!r}, min_field_count={self.min_field_count})"

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        versioned_schema(
            conn,
            table="toin_schema",
            version=SCHEMA_VERSION,
            statements=_SCHEMA,
            what=self.what,
            path=self._path,
        )

    def record_compression(self, tool: str | None, kind: str) -> None:
        """Count one lossy cut of ``tool``'s output (waits for other writers' locks)."""
        row = (
            _key(check_tool("record_compression", tool)),
            check_kind("record_compression", kind),
        )
        self._run("write to", lambda c: c.execute(_ADD_COMPRESSION, row))

    def record_retrieval(
        self, tool: str | None, kind: str, query: str | None, fields: Iterable[str] = ()
    ) -> None:
        """Count one retrieval, and once each ``fields`` and the query's terms as needed."""
        key = _key(check_tool("record_retrieval", tool))
        kind = check_kind("record_retrieval", kind)
        learned = [(key, f) for f in learned_fields(query, fields)]

        def write(c: sqlite3.Connection) -> None:
            with immediate(c):
                c.execute(_ADD_RETRIEVAL, (key, kind))
                c.executemany(_ADD_FIELD, learned)

        self._run("write to", write)

    def fields_for(self, tool: str | None) -> frozenset[str]:
        """Fields needed by at least ``min_field_count`` retrievals of ``tool``."""
        params = (_key(check_tool("fields_for", tool)), self.min_field_count)
        sql = "SELECT field FROM toin_fields WHERE tool = ? AND count >= ?"
        rows = self._run("read", lambda c: c.execute(sql, params).fetchall())
        return frozenset(f for (f,) in rows)

    def importance(self, tool: str | None) -> float:
        """``retrievals / (compressions + 2)`` for ``tool``, capped at 1.0."""
        key = _key(check_tool("importance", tool))
        sql = (
            "SELECT COALESCE(SUM(compressions), 0), COALESCE(SUM(retrievals), 0) "
            "FROM toin_counts WHERE tool = ?"
        )
        c, r = self._run("read", lambda conn: conn.execute(sql, (key,)).fetchone())
        return importance_of(c, r)

    def stats(self) -> dict[str | None, ToolStats]:
        """Everything learned, per tool: the tool None first, then by name."""

        def query(
            c: sqlite3.Connection,
        ) -> tuple[list[tuple[str, str, int, int]], list[tuple[str, str, int]]]:
            c.execute("BEGIN")  # one snapshot for both tables
            try:
                counts = c.execute(
                    "SELECT tool, kind, compressions, retrievals FROM toin_counts"
                ).fetchall()
                fields = c.execute("SELECT tool, field, count FROM toin_fields").fetchall()
            finally:
                c.execute("COMMIT")
            return counts, fields

        counts, fields = self._run("read", query)
        return build_stats(
            ((_tool(t), k, c, r) for t, k, c, r in counts),
            ((_tool(t), f, n) for t, f, n in fields),
        )

    def reset(self, tool: str | None = None) -> None:
        """Forget ``tool`` (``""``: outputs without a tool name), or everything when None."""
        everything, name = check_reset(tool)
        where, params = ("", ()) if everything else (" WHERE tool = ?", (_key(name),))

        def delete(c: sqlite3.Connection) -> None:
            with immediate(c):
                c.execute(f"DELETE FROM toin_counts{where}", params)
                c.execute(f"DELETE FROM toin_fields{where}", params)

        self._run("write to", delete)

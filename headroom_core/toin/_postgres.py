"""``PostgresToin``: TOIN's counts in PostgreSQL, shared by every process and host.

Tables ``headroom_toin_counts`` and ``headroom_toin_fields`` (as in the SQLite TOIN; the
tool None is ``''``); every count is an UPSERT that adds one, so concurrent writers never
lose an increment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from headroom_core._postgres import Database, database, psycopg
from headroom_core._remote import RemoteOptions
from headroom_core.toin._shared import Count, SharedToin

__all__ = ["MIGRATIONS", "PostgresToin"]

_WHAT = "TOIN"

#: (version, statements): the schema of the ``toin`` component, applied in order.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE headroom_toin_counts (
                tool         TEXT   NOT NULL,  -- '' for outputs without a tool name
                kind         TEXT   NOT NULL,
                compressions BIGINT NOT NULL,
                retrievals   BIGINT NOT NULL,
                PRIMARY KEY (tool, kind)
            )""",
            """CREATE TABLE headroom_toin_fields (
                tool  TEXT   NOT NULL,
                field TEXT   NOT NULL,
                count BIGINT NOT NULL,
                PRIMARY KEY (tool, field)
            )""",
        ),
    ),
)

_ADD_COUNT = (
    "INSERT INTO headroom_toin_counts AS t (tool, kind, compressions, retrievals) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (tool, kind) DO UPDATE SET "
    "compressions = t.compressions + EXCLUDED.compressions, "
    "retrievals = t.retrievals + EXCLUDED.retrievals"
)
_ADD_FIELD = (
    "INSERT INTO headroom_toin_fields AS f (tool, field, count) VALUES (%s, %s, %s) "
    "ON CONFLICT (tool, field) DO UPDATE SET count = f.count + EXCLUDED.count"
)


def _merged(counts: list[Count]) -> tuple[list[tuple[str, str, int, int]], list[Any]]:
    """The events summed per key, in a fixed order (so concurrent batches lock alike)."""
    per_kind: dict[tuple[str, str], list[int]] = {}
    per_field: dict[tuple[str, str], int] = {}
    for _, tool, kind, retrieval, fields in counts:
        per_kind.setdefault((tool, kind), [0, 0])[1 if retrieval else 0] += 1
        for name in fields:
            per_field[(tool, name)] = per_field.get((tool, name), 0) + 1
    rows = [(t, k, c, r) for (t, k), (c, r) in sorted(per_kind.items())]
    return rows, [(t, f, n) for (t, f), n in sorted(per_field.items())]


class _PostgresBackend:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.label = db.label
        self.breaker = db.breaker
        self.options: RemoteOptions = db.options

    def add(
        self,
        counts: list[Count],
        *,
        bounded: bool,
        on_late_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        rows, fields = _merged(counts)

        def write(c: psycopg.Connection[Any]) -> None:
            with c.transaction(), c.cursor() as cur:
                cur.executemany(_ADD_COUNT, rows)
                if fields:
                    cur.executemany(_ADD_FIELD, fields)

        if bounded:
            self._db.bounded(write, on_late_failure)
        else:
            self._db.background(write)

    def fields(self, tool: str) -> dict[str, int]:
        sql = "SELECT field, count FROM headroom_toin_fields WHERE tool = %s"
        rows = self._db.bounded(lambda c: c.execute(sql, (tool,)).fetchall())
        return {str(f): int(n) for f, n in rows}

    def totals(self, tool: str) -> tuple[int, int]:
        sql = (
            "SELECT COALESCE(SUM(compressions), 0), COALESCE(SUM(retrievals), 0) "
            "FROM headroom_toin_counts WHERE tool = %s"
        )
        row = self._db.bounded(lambda c: c.execute(sql, (tool,)).fetchone())
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def rows(self) -> tuple[list[tuple[str, str, int, int]], list[tuple[str, str, int]]]:
        def read(c: psycopg.Connection[Any]) -> tuple[list[Any], list[Any]]:
            with c.transaction():
                c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                counts = c.execute(
                    "SELECT tool, kind, compressions, retrievals FROM headroom_toin_counts"
                ).fetchall()
                fields = c.execute("SELECT tool, field, count FROM headroom_toin_fields").fetchall()
            return counts, fields

        counts, fields = self._db.read(read)
        return (
            [(t, k, int(c), int(r)) for t, k, c, r in counts],
            [(t, f, int(n)) for t, f, n in fields],
        )

    def reset(self, tool: str | None) -> None:
        where, params = ("", ()) if tool is None else (" WHERE tool = %s", (tool,))

        def delete(c: psycopg.Connection[Any]) -> None:
            with c.transaction():
                c.execute(f"DELETE FROM headroom_toin_counts{where}", params)
                c.execute(f"DELETE FROM headroom_toin_fields{where}", params)

        self._db.read(delete)

    def close(self) -> None:
        self._db.release()


class PostgresToin(SharedToin):
    """TOIN in PostgreSQL (see the module docstring). ``url``: ``postgresql://user@host:
    port/db`` with options as query parameters; other parameters go to libpq."""

    def __init__(self, url: str, *, min_field_count: int = 1) -> None:
        db = database(_WHAT, url, "toin", MIGRATIONS)
        super().__init__(_PostgresBackend(db), min_field_count=min_field_count)

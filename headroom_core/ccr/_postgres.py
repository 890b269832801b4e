"""``PostgresOriginalStore``: originals in PostgreSQL, shared by every process and host.

Bounded like :class:`~headroom_core.ccr.SQLiteOriginalStore`: at most ``max_entries``
originals and ``max_bytes`` UTF-8 bytes, least recently used out (``get`` and a ``put`` of
stored text mark a use; the order comes from a sequence, so it is strict across
processes). With ``ttl_s`` an original unused for that long is gone too. Totals are kept
by triggers in a one-row table, so a ``put`` never counts the table.
"""

from __future__ import annotations

from typing import Any

from headroom_core._postgres import Database, database, psycopg
from headroom_core._remote import RemoteOptions
from headroom_core.ccr._shared import Packed, SharedOriginalStore

__all__ = ["MIGRATIONS", "PostgresOriginalStore"]

_WHAT = "original store"
_T = "headroom_originals"

#: (version, statements): the schema of the ``originals`` component, applied in order.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            f"CREATE SEQUENCE {_T}_use",
            f"""CREATE TABLE {_T} (
                ref        TEXT             PRIMARY KEY,
                body       BYTEA            NOT NULL,  -- zlib of the UTF-8 bytes
                tool       TEXT,
                kind       TEXT             NOT NULL,
                meta       TEXT             NOT NULL,  -- JSON object
                size       BIGINT           NOT NULL,  -- chars
                nbytes     BIGINT           NOT NULL,  -- UTF-8 bytes before compression
                created_at DOUBLE PRECISION NOT NULL,  -- epoch seconds of the first put
                last_use   BIGINT           NOT NULL,  -- from {_T}_use: LRU order
                used_at    TIMESTAMPTZ      NOT NULL DEFAULT now()
            )""",
            f"CREATE INDEX ix_{_T}_last_use ON {_T} (last_use)",
            f"""CREATE TABLE {_T}_totals (
                id      INTEGER PRIMARY KEY CHECK (id = 0),
                entries BIGINT  NOT NULL,
                nbytes  BIGINT  NOT NULL
            )""",
            f"INSERT INTO {_T}_totals VALUES (0, 0, 0)",
            f"""CREATE FUNCTION {_T}_count() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    UPDATE {_T}_totals SET entries = entries + 1, nbytes = nbytes + NEW.nbytes;
                ELSE
                    UPDATE {_T}_totals SET entries = entries - 1, nbytes = nbytes - OLD.nbytes;
                END IF;
                RETURN NULL;
            END $$""",
            f"""CREATE TRIGGER {_T}_counted AFTER INSERT OR DELETE ON {_T}
                FOR EACH ROW EXECUTE FUNCTION {_T}_count()""",
        ),
    ),
)

_LIVE = "(%(ttl)s::double precision IS NULL OR used_at > now() - make_interval(secs => %(ttl)s))"
_TOUCH = (
    f"UPDATE {_T} SET last_use = nextval('{_T}_use'), used_at = now() "
    f"WHERE ref = %(ref)s AND {_LIVE}"
)
_INSERT = f"""INSERT INTO {_T} (ref, body, tool, kind, meta, size, nbytes, created_at, last_use)
VALUES (%(ref)s, %(body)s, %(tool)s, %(kind)s, %(meta)s, %(size)s, %(nbytes)s, %(created_at)s,
        nextval('{_T}_use'))
ON CONFLICT (ref) DO UPDATE SET last_use = EXCLUDED.last_use, used_at = now()
RETURNING (xmax = 0)"""
_GET = (
    f"UPDATE {_T} SET last_use = nextval('{_T}_use'), used_at = now() "
    f"WHERE ref = %(ref)s AND {_LIVE} "
    "RETURNING body, tool, kind, meta, size, nbytes, created_at"
)


class _PostgresBackend:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.label = db.label
        self.breaker = db.breaker
        self.options: RemoteOptions = db.options
        self._ttl = None if db.options.ttl_s is None else float(db.options.ttl_s)

    def touch(self, ref: str) -> bool:
        params = {"ref": ref, "ttl": self._ttl}
        return bool(self._db.bounded(lambda c: c.execute(_TOUCH, params).rowcount > 0))

    def _insert(self, conn: psycopg.Connection[Any], packed: list[Packed]) -> None:
        with conn.transaction():
            added = False
            for p in packed:
                params = {
                    "ref": p.ref, "body": p.body, "tool": p.tool, "kind": p.kind,
                    "meta": p.meta.decode(), "size": p.size, "nbytes": p.nbytes,
                    "created_at": p.created_at,
                }  # fmt: skip
                row = conn.execute(_INSERT, params).fetchone()
                added = added or bool(row and row[0])
            if added:
                self._evict(conn)

    def _evict(self, conn: psycopg.Connection[Any]) -> None:
        if self._ttl is not None:
            conn.execute(
                f"DELETE FROM {_T} WHERE used_at <= now() - make_interval(secs => %s)",
                (self._ttl,),
            )
        row = conn.execute(f"SELECT entries, nbytes FROM {_T}_totals").fetchone() or (0, 0)
        extra_entries = int(row[0]) - self.options.max_entries
        extra_bytes = int(row[1]) - self.options.max_bytes
        if extra_entries <= 0 and extra_bytes <= 0:
            return
        victims: list[str] = []
        with conn.cursor() as cur:
            cur.execute(f"SELECT ref, nbytes FROM {_T} ORDER BY last_use")
            for ref, nbytes in cur:
                if extra_entries <= 0 and extra_bytes <= 0:
                    break
                victims.append(ref)
                extra_entries, extra_bytes = extra_entries - 1, extra_bytes - int(nbytes)
        conn.execute(f"DELETE FROM {_T} WHERE ref = ANY(%s)", (victims,))

    def put(self, packed: Packed) -> None:
        self._db.bounded(lambda c: self._insert(c, [packed]))

    def put_many(self, packed: list[Packed]) -> None:
        self._db.background(lambda c: self._insert(c, packed))

    def get(self, ref: str) -> Packed | None:
        params = {"ref": ref, "ttl": self._ttl}
        row = self._db.bounded(lambda c: c.execute(_GET, params).fetchone())
        if row is None:
            return None
        body, tool, kind, meta, size, nbytes, created_at = row
        return Packed(ref, bytes(body), tool, kind, meta.encode(), size, nbytes, created_at)

    def contains(self, ref: str) -> bool:
        params = {"ref": ref, "ttl": self._ttl}
        sql = f"SELECT 1 FROM {_T} WHERE ref = %(ref)s AND {_LIVE}"
        return bool(self._db.bounded(lambda c: c.execute(sql, params).fetchone() is not None))

    def count(self) -> int:
        row = self._db.read(lambda c: c.execute(f"SELECT entries FROM {_T}_totals").fetchone())
        return int(row[0]) if row else 0

    @property
    def total_bytes(self) -> int:
        row = self._db.read(lambda c: c.execute(f"SELECT nbytes FROM {_T}_totals").fetchone())
        return int(row[0]) if row else 0

    def clear(self) -> None:
        self._db.read(lambda c: c.execute(f"DELETE FROM {_T}"))

    def close(self) -> None:
        self._db.release()


class PostgresOriginalStore(SharedOriginalStore):
    """Originals in PostgreSQL (see the module docstring). ``url``: ``postgresql://user@
    host:port/db`` with options as query parameters (``timeout_ms``, ``max_entries``,
    ``max_bytes``, ``ttl_s``, ``spill``, ...); other parameters go to libpq."""

    def __init__(self, url: str) -> None:
        self._pg = _PostgresBackend(database(_WHAT, url, "originals", MIGRATIONS))
        super().__init__(self._pg)

    @property
    def total_bytes(self) -> int:
        """UTF-8 bytes of original text held (the quantity ``max_bytes`` bounds)."""
        return self._pg.total_bytes

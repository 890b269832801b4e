"""``SQLiteOriginalStore``: originals in one SQLite file, shared by threads and processes.

Concurrency follows :mod:`headroom_core.metrics._sqlite`: WAL mode and the same busy
timeout, so writers from other processes wait for the lock instead of failing; one
connection per process shared by its threads behind a lock; a forked child opens its own.

Tables are prefixed ``ccr_`` and the schema version lives in ``ccr_schema`` rather than
``PRAGMA user_version``, so one file can hold both the metrics and the originals.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
import zlib
from collections.abc import Mapping
from typing import Any, TypeVar

from headroom_core._sqlite import SQLiteFile, immediate, versioned_schema
from headroom_core.ccr._base import (
    StoredOriginal,
    check_bound,
    check_put,
    decode_meta,
    decode_text,
    encode_text,
    is_ref,
    ref_for,
)
from headroom_core.errors import StorageError

__all__ = ["SCHEMA_VERSION", "SQLiteOriginalStore"]

#: Stored in table ``ccr_schema``; bumped when the layout changes.
SCHEMA_VERSION = 1
#: zlib level 1: ~2x faster than the default on JSON, and put() is on the request path.
_ZLIB_LEVEL = 1

_T = TypeVar("_T")

_SCHEMA = (
    """CREATE TABLE ccr_originals (
        ref        TEXT PRIMARY KEY,
        body       BLOB    NOT NULL,  -- zlib of the UTF-8 bytes
        tool       TEXT,
        kind       TEXT    NOT NULL,
        meta       TEXT    NOT NULL,  -- JSON object
        size       INTEGER NOT NULL,  -- chars
        nbytes     INTEGER NOT NULL,  -- UTF-8 bytes before compression
        created_at REAL    NOT NULL,  -- epoch seconds of the first put
        last_used  REAL    NOT NULL   -- epoch seconds, strictly increasing per database
    )""",
    "CREATE INDEX ix_ccr_originals_last_used ON ccr_originals (last_used)",
    """CREATE TABLE ccr_totals (
        id      INTEGER PRIMARY KEY CHECK (id = 0),
        entries INTEGER NOT NULL,
        nbytes  INTEGER NOT NULL
    )""",
    "INSERT INTO ccr_totals VALUES (0, 0, 0)",
    """CREATE TRIGGER ccr_originals_added AFTER INSERT ON ccr_originals BEGIN
        UPDATE ccr_totals SET entries = entries + 1, nbytes = nbytes + NEW.nbytes;
    END""",
    """CREATE TRIGGER ccr_originals_removed AFTER DELETE ON ccr_originals BEGIN
        UPDATE ccr_totals SET entries = entries - 1, nbytes = nbytes - OLD.nbytes;
    END""",
)

_COLUMNS = "ref, body, tool, kind, meta, size, nbytes, created_at, last_used"
_INSERT = f"INSERT OR IGNORE INTO ccr_originals ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SELECT = "SELECT body, tool, kind, meta, size, created_at FROM ccr_originals WHERE ref = ?"
_TOUCH = "UPDATE ccr_originals SET last_used = ? WHERE ref = ?"


def _next_use(conn: sqlite3.Connection) -> float:
    """Now, or just after the latest use if the clock is behind it: LRU order is strict."""
    (latest,) = conn.execute("SELECT MAX(last_used) FROM ccr_originals").fetchone()
    now = time.time()
    return now if latest is None else max(now, math.nextafter(latest, math.inf))


class SQLiteOriginalStore(SQLiteFile):
    """Originals in a SQLite file (created with its parent directories if missing).

    Texts are stored zlib-compressed. Bounded by ``max_entries`` originals and
    ``max_bytes`` UTF-8 bytes of original text (before compression, so the file stays
    well under it). Eviction is least-recently-USED, as in ``MemoryOriginalStore``:
    ``get`` and a ``put`` of stored text update the ``last_used`` column, and a ``put``
    that goes over either bound deletes the oldest ``last_used`` rows until both hold.
    Nothing expires with time. An original larger than ``max_bytes`` alone is refused.

    A file that is not a SQLite database, a directory, or a path without permission
    raises StorageError naming the path, at construction; a row that cannot be decoded
    raises StorageError naming the path when it is read.
    """

    __slots__ = ("max_bytes", "max_entries")
    what = "originals database"

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_entries: int = 100_000,
        max_bytes: int = 2_000_000_000,
    ) -> None:
        self.max_entries = check_bound("SQLiteOriginalStore", "max_entries", max_entries)
        self.max_bytes = check_bound("SQLiteOriginalStore", "max_bytes", max_bytes)
        super().__init__(path, hint="use open_original_store('memory://') for an in-memory store")

    def __repr__(self) -> str:
        return (
            f"SQLiteOriginalStore({str(self._path)!r}, max_entries={self.max_entries}, "
            f"max_bytes={self.max_bytes})"
        )

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        versioned_schema(
            conn,
            table="ccr_schema",
            version=SCHEMA_VERSION,
            statements=_SCHEMA,
            what=self.what,
            path=self._path,
        )

    def _touch(self, conn: sqlite3.Connection, ref: str) -> bool:
        with immediate(conn):
            return conn.execute(_TOUCH, (_next_use(conn), ref)).rowcount > 0

    def put(
        self,
        original: str,
        *,
        tool: str | None = None,
        kind: str = "json",
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Keep ``original``; return its ref. Waits up to the busy timeout for other writers.

        Storing text that is already held only marks it used (nothing is compressed or
        rewritten); its first ``tool``, ``kind`` and ``meta`` are kept.
        """
        meta_json = check_put(original, tool, kind, meta).decode()
        ref = ref_for(original)
        if self._run("write to", lambda c: self._touch(c, ref)):
            return ref
        data = encode_text(original)
        if len(data) > self.max_bytes:
            raise StorageError(
                f"originals database {self._path}: an original of {len(data)} bytes is "
                f"larger than max_bytes={self.max_bytes}"
            )
        body = zlib.compress(data, _ZLIB_LEVEL)  # outside the lock: other threads go on
        created = time.time()

        def insert(c: sqlite3.Connection) -> None:
            with immediate(c):
                use = _next_use(c)
                row = (ref, body, tool, kind, meta_json, len(original), len(data), created, use)
                if c.execute(_INSERT, row).rowcount == 0:  # stored meanwhile by another writer
                    c.execute(_TOUCH, (use, ref))
                else:
                    self._evict(c)

        self._run("write to", insert)
        return ref

    def _evict(self, conn: sqlite3.Connection) -> None:
        entries, nbytes = conn.execute("SELECT entries, nbytes FROM ccr_totals").fetchone()
        extra_entries, extra_bytes = entries - self.max_entries, nbytes - self.max_bytes
        if extra_entries <= 0 and extra_bytes <= 0:
            return
        victims: list[tuple[str]] = []
        cursor = conn.execute("SELECT ref, nbytes FROM ccr_originals ORDER BY last_used")
        try:
            while extra_entries > 0 or extra_bytes > 0:
                row = cursor.fetchone()
                if row is None:  # pragma: no cover - the newest row alone fits by construction
                    break
                victims.append((row[0],))
                extra_entries, extra_bytes = extra_entries - 1, extra_bytes - row[1]
        finally:
            cursor.close()
        conn.executemany("DELETE FROM ccr_originals WHERE ref = ?", victims)

    def get(self, ref: str) -> StoredOriginal | None:
        """The original under ``ref`` (marking it used), or None."""
        if not is_ref(ref):
            return None

        def read(c: sqlite3.Connection) -> tuple[Any, ...] | None:
            with immediate(c):
                row: tuple[Any, ...] | None = c.execute(_SELECT, (ref,)).fetchone()
                if row is not None:
                    c.execute(_TOUCH, (_next_use(c), ref))
            return row

        row = self._run("read", read)
        if row is None:
            return None
        body, tool, kind, meta, size, created_at = row
        try:
            text = decode_text(zlib.decompress(body))
            meta_dict = decode_meta(meta)
        except (zlib.error, ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
            raise self._fail(f"decode original {ref} of", exc) from exc
        return StoredOriginal(ref, text, tool, kind, created_at, size, meta_dict)

    def __contains__(self, ref: object) -> bool:
        if not is_ref(ref):
            return False
        sql = "SELECT 1 FROM ccr_originals WHERE ref = ?"
        return self._run("read", lambda c: c.execute(sql, (ref,)).fetchone() is not None)

    def __len__(self) -> int:
        row = self._run("read", lambda c: c.execute("SELECT entries FROM ccr_totals").fetchone())
        return int(row[0])

    @property
    def total_bytes(self) -> int:
        """UTF-8 bytes of original text held (the quantity ``max_bytes`` bounds)."""
        row = self._run("read", lambda c: c.execute("SELECT nbytes FROM ccr_totals").fetchone())
        return int(row[0])

    def clear(self) -> None:
        """Forget every original (in every process sharing the file)."""

        def wipe(c: sqlite3.Connection) -> None:
            with immediate(c):
                c.execute("DELETE FROM ccr_originals")

        self._run("write to", wipe)

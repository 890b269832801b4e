"""One SQLite file used safely from several threads and processes.

The metrics store and the store of originals share this: WAL journal, a busy timeout so
concurrent writers wait instead of failing, one connection per store behind a lock, a new
connection in a forked child (never the parent's), and every sqlite3 error turned into a
StorageError naming the file. Subclasses create their schema in ``_init_schema``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from ._closing import ClosingContext
from .errors import ConfigError, StorageError

BUSY_TIMEOUT_S = 30.0
_T = TypeVar("_T")


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken at once (so a read-then-write never deadlocks)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def versioned_schema(
    conn: sqlite3.Connection,
    *,
    table: str,
    version: int,
    statements: Iterable[str],
    what: str,
    path: Path,
) -> None:
    """Create a schema once across processes, its version kept in ``table`` (so several
    stores can share one file); a newer version on disk is a StorageError."""
    with immediate(conn):  # one process creates the schema, the others wait
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL)")
        row = conn.execute(f"SELECT MAX(version) FROM {table}").fetchone()
        found = 0 if row[0] is None else row[0]
        if found > version:
            raise StorageError(
                f"{what} {path} has schema version {found}, newer than {version} which "
                "this version of headroom reads; upgrade headroom"
            )
        if found < version:
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"INSERT INTO {table} VALUES (?)", (version,))


class SQLiteFile(ClosingContext):
    """Base for a store kept in one SQLite file; ``what`` names it in errors."""

    __slots__ = ("_conn", "_lock", "_path", "_pid")
    what = "database"

    def __init__(self, path: str | os.PathLike[str], *, hint: str) -> None:
        if os.fspath(path) in ("", ":memory:"):
            raise ConfigError(
                f"{type(self).__name__}.path: a file path is required, got "
                f"{os.fspath(path)!r}; {hint}"
            )
        self._path = Path(path).expanduser().absolute()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        with self._lock:
            self._conn = self._open()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def _fail(self, action: str, exc: BaseException) -> StorageError:
        return StorageError(f"cannot {action} {self.what} {self._path}: {exc}")

    def _init_schema(self, conn: sqlite3.Connection) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _open(self) -> sqlite3.Connection:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._fail("create the directory of", exc) from exc
        if self._path.is_dir():
            raise StorageError(f"cannot open {self.what} {self._path}: it is a directory")
        try:
            conn = sqlite3.connect(
                self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._fail("open", exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL").fetchone()  # falls back silently on odd FS
            conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; may lose the last commit
            self._init_schema(conn)
        except (sqlite3.Error, StorageError) as exc:
            conn.close()
            if isinstance(exc, StorageError):
                raise
            raise self._fail("open", exc) from exc
        return conn

    def _run(self, action: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            if self._conn is None:
                raise StorageError(f"{self.what} {self._path} is closed")
            if self._pid != os.getpid():  # forked: never share the parent's connection
                self._pid = os.getpid()
                self._conn = self._open()
            try:
                return fn(self._conn)
            except sqlite3.Error as exc:
                raise self._fail(action, exc) from exc

    def close(self) -> None:
        """Close the connection. Idempotent; later calls other than close() raise."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            conn.close()

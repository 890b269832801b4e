"""One PostgreSQL database used by the shared stores: pool, migrations, bounded calls.

psycopg 3 and psycopg_pool are imported here, and this module is imported only when a
``postgresql://`` URL is opened (extra ``postgres``). Every store of one URL in a process
shares one :class:`Database`: a connection pool (``pool_max`` connections, checked
before use, so a server restart costs no request), one :class:`~headroom_core._remote.Breaker`
and a small thread pool that bounds request-path calls to ``timeout_ms`` even when the
server hangs. A forked child gets its own pool.

Schema migrations are versioned per component (``metrics``, ``originals``, ``toin``) in
table ``headroom_schema_version``; each store ships its list of (version, statements) and
:meth:`Database.migrate` applies the missing ones under an advisory lock, so concurrent
processes apply each once. A database whose version is newer than this headroom knows is
refused with StorageError.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from ._health import Pending
from ._remote import Breaker, RemoteOptions, log, redact, split_options
from .errors import ConfigError, StorageError

try:
    import psycopg
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "PostgreSQL stores need psycopg 3 and psycopg_pool: "
        'pip install "headroom-context[postgres]"'
    ) from exc

__all__ = ["Database", "Migrations", "database", "psycopg"]

_T = TypeVar("_T")
#: (version, statements) in order; a component's schema is the result of applying them all.
Migrations = Sequence[tuple[int, Sequence[str]]]

_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS headroom_schema_version (
    component  TEXT        NOT NULL,
    version    INTEGER     NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)"""
#: Longest a call off the request path waits for a pooled connection (the pool keeps
#: trying to connect meanwhile); past it the store is treated as down.
CONNECT_WAIT_S = 3.0
_LOCK_KEY = 0x68656164  # "head": one advisory lock for every migration
#: libpq waits at least 2 s to connect; the pool does that in its own threads.
_CONNECT_TIMEOUT_S = 2


class Database:
    """A pool, a breaker and a bounded runner for one PostgreSQL URL in this process."""

    def __init__(self, url: str, options: RemoteOptions) -> None:
        self.url = url
        self.options = options
        self.label = f"PostgreSQL {redact(url)}"
        self.breaker = Breaker(self.label, options.retry_s)
        self._lock = threading.Lock()
        self._migrated: set[str] = set()
        self._components: dict[str, tuple[tuple[int, Sequence[str]], ...]] = {}
        self._pool: ConnectionPool | None = None
        self._runner: ThreadPoolExecutor | None = None
        self._pid = os.getpid()
        self._users = 0

    # -- connections -----------------------------------------------------------------------

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET TIME ZONE 'UTC'")
        ms = int(self.options.read_timeout_s * 1000)
        conn.execute(f"SET statement_timeout = {ms}")

    def pool(self) -> ConnectionPool:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's sockets are not ours
                self._pid = os.getpid()
                self._pool = None
                self._runner = None
                self._migrated = set()
            if self._pool is None:
                pool = ConnectionPool(
                    self.url,
                    min_size=min(2, self.options.pool_max),
                    max_size=self.options.pool_max,
                    kwargs=self._kwargs(),
                    configure=self._configure,
                    check=ConnectionPool.check_connection,
                    open=False,
                    name=self.label,
                    reconnect_timeout=5.0,  # then start again at 1 s: no long backoff
                )
                pool.open(wait=False)
                self._pool = pool
            return self._pool

    def _executor(self) -> ThreadPoolExecutor:
        self.pool()  # resets after a fork
        with self._lock:
            if self._runner is None:
                self._runner = ThreadPoolExecutor(
                    max_workers=self.options.pool_max, thread_name_prefix="headroom-pg"
                )
            return self._runner

    def run(self, fn: Callable[[psycopg.Connection[Any]], _T], *, wait: float) -> _T:
        """``fn(conn)`` on a pooled connection in this thread, waiting at most ``wait`` for
        a connection; any driver error is a StorageError (and a breaker failure)."""
        try:
            with self.pool().connection(timeout=wait) as conn:
                self._ensure_migrated(conn)
                result = fn(conn)
        except StorageError as exc:  # a schema newer than ours
            self.breaker.failed(exc)
            raise
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            self.breaker.failed(exc)
            raise StorageError(f"{self.label}: {type(exc).__name__}: {exc}") from exc
        self.breaker.succeeded()
        return result

    def bounded(
        self,
        fn: Callable[[psycopg.Connection[Any]], _T],
        on_late_failure: Callable[[BaseException], None] | None = None,
    ) -> _T:
        """``fn(conn)`` for the request path: StorageError at once while the store is down,
        and after ``timeout_ms`` whatever the server does. A call that has started by then
        goes on in a worker and raises :class:`Pending` here; ``on_late_failure`` is told if
        it then fails (so a write is neither lost nor done twice)."""
        self.breaker.check()
        timeout = self.options.timeout_s
        future = self._executor().submit(self.run, fn, wait=timeout)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout as exc:
            message = f"{self.label}: no answer within {self.options.timeout_ms} ms"
            if future.cancel():  # never started: nothing was done
                err = StorageError(message)
                self.breaker.failed(err)
                raise err from exc
            if on_late_failure is not None:
                future.add_done_callback(
                    lambda f: on_late_failure(e) if (e := f.exception()) is not None else None
                )
            pending = Pending(message + "; the call goes on")
            self.breaker.failed(pending)
            raise pending from exc

    def read(self, fn: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """``fn(conn)`` off the request path (summaries, reports, clear): waits up to
        ``CONNECT_WAIT_S`` for a connection and ``read_timeout_s`` for the query, whatever
        the request path's breaker says (one slow request does not make a report fail)."""
        return self.background(fn)

    def background(self, fn: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """``fn(conn)`` off the request path (the background writer asks the breaker
        itself before it calls this)."""
        return self.run(fn, wait=min(CONNECT_WAIT_S, self.options.read_timeout_s))

    # -- schema ----------------------------------------------------------------------------

    def register(self, component: str, migrations: Migrations) -> None:
        """Add a store of ``component`` and, when the server answers, apply its migrations
        and fill the pool now (so the first request finds a connection). A server that
        refuses is marked down at once; a newer schema raises StorageError."""
        with self._lock:
            self._components.setdefault(component, tuple(migrations))
            self._users += 1
            ready = component in self._migrated
        if not ready:
            self._warm_up()

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in self.url:
            kwargs["connect_timeout"] = _CONNECT_TIMEOUT_S
        if "application_name" not in self.url:
            kwargs["application_name"] = "headroom"
        return kwargs

    def _warm_up(self) -> None:
        try:
            with psycopg.connect(self.url, **self._kwargs()) as conn:
                self._configure(conn)
                self._ensure_migrated(conn)
            self.pool().wait(timeout=CONNECT_WAIT_S)
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            self.breaker.failed(exc)

    def _ensure_migrated(self, conn: psycopg.Connection[Any]) -> None:
        missing = [c for c in self._components if c not in self._migrated]
        if missing:
            for component in missing:
                migrate(conn, component, self._components[component], self.label)
            self._migrated.update(missing)

    def release(self) -> None:
        """One store of this database closed; the last closes the pool."""
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            pool, self._pool = self._pool, None
            runner, self._runner = self._runner, None
            mine = self._pid == os.getpid()
            _DATABASES.pop((self.url, self.options), None)
        if runner is not None:
            runner.shutdown(wait=False, cancel_futures=True)
        if pool is not None and mine:
            pool.close(timeout=1.0)


_DATABASES: dict[tuple[str, RemoteOptions], Database] = {}
_DATABASES_LOCK = threading.Lock()


def migrate(
    conn: psycopg.Connection[Any], component: str, migrations: Migrations, label: str
) -> int:
    """Apply the missing migrations of ``component``; return the version now in force."""
    latest = max((v for v, _ in migrations), default=0)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(_SCHEMA_TABLE)
        row = conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM headroom_schema_version WHERE component = %s",
            (component,),
        ).fetchone()
        found = int(row[0]) if row else 0
        if found > latest:
            raise StorageError(
                f"{label}: {component} schema version {found} is newer than {latest}, which "
                "this version of headroom reads; upgrade headroom"
            )
        for version, statements in migrations:
            if version <= found:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO headroom_schema_version (component, version) VALUES (%s, %s)",
                (component, version),
            )
            log.info("%s: %s schema migrated to version %d", label, component, version)
    return max(found, latest)


def database(what: str, url: str, component: str, migrations: Migrations) -> Database:
    """The process's :class:`Database` for ``url`` (options split off), with ``component``'s
    migrations registered. The schema is applied on the first connection, so a server that
    is down now costs nothing here."""
    clean, options = split_options(what, url)
    scheme = clean.partition("://")[0].lower()
    if scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"{what} URL {redact(url)!r}: expected postgresql://")
    with _DATABASES_LOCK:
        db = _DATABASES.get((clean, options))
        if db is None or db._pid != os.getpid():
            db = Database(clean, options)
            _DATABASES[(clean, options)] = db
    db.register(component, migrations)
    return db

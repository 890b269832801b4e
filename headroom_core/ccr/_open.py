"""Opening a store of originals from a URL, and the process-wide default store.

URLs follow the slash convention of :func:`headroom_core.metrics.open_store`: after
``scheme://`` one slash starts the path, so three slashes give a relative path and four
an absolute one::

    memory://                       in this process only (the default)
    sqlite:///originals.db          ./originals.db (relative to the working directory)
    sqlite:////var/lib/headroom.db  /var/lib/headroom.db (may be the metrics file too)
    redis://host:6379/0             shared by every process and host (extra "redis")
    postgresql://user@host/db       shared by every process and host (extra "postgres")
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from headroom_core._store_url import StoreRegistry, file_path, no_path
from headroom_core.ccr._base import OriginalStore
from headroom_core.ccr._memory import MemoryOriginalStore
from headroom_core.ccr._sqlite import SQLiteOriginalStore
from headroom_core.errors import ConfigError

__all__ = [
    "get_default_store",
    "open_original_store",
    "original_store_schemes",
    "resolve_store",
    "set_default_store",
    "use_store",
]


_WHAT = "original store"


def _open_sqlite(url: str, rest: str) -> OriginalStore:
    return SQLiteOriginalStore(file_path(_WHAT, url, rest, "sqlite"))


def _open_memory(url: str, rest: str) -> OriginalStore:
    no_path(_WHAT, url, rest)
    return MemoryOriginalStore()


def _open_postgres(url: str, rest: str) -> OriginalStore:
    from headroom_core.ccr._postgres import PostgresOriginalStore  # psycopg: lazily

    return PostgresOriginalStore(url)


def _open_redis(url: str, rest: str) -> OriginalStore:
    from headroom_core.ccr._redis import RedisOriginalStore  # redis-py: lazily

    return RedisOriginalStore(url)


# scheme -> factory(url, text after "scheme://"). A new store is one new entry here.
_REGISTRY: StoreRegistry[OriginalStore] = StoreRegistry(
    _WHAT,
    {
        "memory": _open_memory,
        "sqlite": _open_sqlite,
        "postgresql": _open_postgres,
        "postgres": _open_postgres,
        "redis": _open_redis,
        "rediss": _open_redis,
    },
)


def original_store_schemes() -> tuple[str, ...]:
    """The URL schemes ``open_original_store`` knows."""
    return _REGISTRY.schemes()


def open_original_store(url: str = "memory://") -> OriginalStore:
    """Open (creating if needed, with parent directories) the store of originals ``url`` names.

    Stores are opened with their default bounds; construct ``MemoryOriginalStore`` or
    ``SQLiteOriginalStore`` directly to choose others. Raises ConfigError for a malformed
    URL or an unknown scheme, StorageError when the file cannot be opened.
    """
    return _REGISTRY.open(url)


_default_lock = threading.Lock()
_default: OriginalStore | None = None
# A store chosen for the code running in this context (an adapter's ``store=``): threads and
# asyncio tasks each see their own, so two adapters with different stores never mix.
_scoped: ContextVar[OriginalStore | None] = ContextVar("headroom_original_store", default=None)


def get_default_store() -> OriginalStore:
    """The store used when none is passed: the one :func:`use_store` set for this context,
    else the process-wide default (a ``MemoryOriginalStore`` unless set otherwise)."""
    global _default
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    with _default_lock:
        if _default is None:
            _default = MemoryOriginalStore()
        return _default


def set_default_store(store: OriginalStore) -> None:
    """Make ``store`` the process-wide default (the previous one is not closed)."""
    global _default
    if not isinstance(store, OriginalStore):
        raise ConfigError(
            f"default original store: expected an OriginalStore, got {type(store).__name__}"
        )
    with _default_lock:
        _default = store


@contextmanager
def use_store(store: OriginalStore | str | None) -> Iterator[OriginalStore]:
    """Within the block (this thread or task only), compression keeps its originals in
    ``store`` and ``retrieve`` reads them there: a store, or its URL. None: the default.

    This is how an adapter's ``store=`` reaches the core without a global switch::

        with use_store("sqlite:///originals.db"):
            compress(messages)
    """
    target = resolve_store(store)
    token = _scoped.set(target)
    try:
        yield target
    finally:
        _scoped.reset(token)


def resolve_store(store: OriginalStore | str | None) -> OriginalStore:
    """``store`` itself, the store its URL names (opened), or the default store for None."""
    if store is None:
        return get_default_store()
    if isinstance(store, str):
        return open_original_store(store)
    if not isinstance(store, OriginalStore):
        raise ConfigError(
            f"original store: expected an OriginalStore or a URL, got {type(store).__name__}"
        )
    return store

"""Opening a TOIN from a URL, and the process-wide default TOIN.

URLs follow the slash convention of :func:`headroom_core.ccr.open_original_store`: after
``scheme://`` one slash starts the path, so three slashes give a relative path and four
an absolute one::

    memory://                  in this process only (the default)
    sqlite:///toin.db          ./toin.db (relative to the working directory)
    sqlite:////var/lib/h.db    /var/lib/h.db (may also hold the metrics and the originals)
    redis://host:6379/0        shared by every process and host (extra "redis")
    postgresql://u@host/db     shared by every process and host (extra "postgres")
"""

from __future__ import annotations

import threading

from headroom_core._store_url import StoreRegistry, file_path, no_path
from headroom_core.errors import ConfigError
from headroom_core.toin._base import Toin
from headroom_core.toin._memory import MemoryToin
from headroom_core.toin._sqlite import SQLiteToin

__all__ = ["get_toin", "open_toin", "set_toin", "toin_schemes"]


_WHAT = "TOIN"


def _open_sqlite(url: str, rest: str, min_field_count: int) -> Toin:
    return SQLiteToin(file_path(_WHAT, url, rest, "sqlite"), min_field_count=min_field_count)


def _open_memory(url: str, rest: str, min_field_count: int) -> Toin:
    no_path(_WHAT, url, rest)
    return MemoryToin(min_field_count=min_field_count)


def _open_postgres(url: str, rest: str, min_field_count: int) -> Toin:
    from headroom_core.toin._postgres import PostgresToin  # psycopg: lazily

    return PostgresToin(url, min_field_count=min_field_count)


def _open_redis(url: str, rest: str, min_field_count: int) -> Toin:
    from headroom_core.toin._redis import RedisToin  # redis-py: lazily

    return RedisToin(url, min_field_count=min_field_count)


# scheme -> factory(url, text after "scheme://", min_field_count). A new backend is one entry.
_REGISTRY: StoreRegistry[Toin] = StoreRegistry(
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


def toin_schemes() -> tuple[str, ...]:
    """The URL schemes :func:`open_toin` knows."""
    return _REGISTRY.schemes()


def open_toin(url: str = "memory://", *, min_field_count: int = 1) -> Toin:
    """Open (creating if needed, with parent directories) the TOIN ``url`` names.

    Raises ConfigError for a malformed URL, an unknown scheme or a bad ``min_field_count``;
    StorageError when the file cannot be opened.
    """
    return _REGISTRY.open(url, min_field_count=min_field_count)


_default_lock = threading.Lock()
_default: Toin | None = None


def get_toin() -> Toin:
    """The process-wide TOIN: a :class:`MemoryToin` unless :func:`set_toin` chose another."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MemoryToin()
        return _default


def set_toin(toin: Toin) -> None:
    """Make ``toin`` the process-wide default (the previous one is not closed)."""
    global _default
    if not isinstance(toin, Toin):
        raise ConfigError(f"default TOIN: expected a Toin, got {type(toin).__name__}")
    with _default_lock:
        _default = toin

"""Opening a store of originals from a URL, and the process-wide default store.

URLs follow the slash convention of :func:`headroom_core.metrics.open_store`: after
``scheme://`` one slash starts the path, so three slashes give a relative path and four
an absolute one::

    memory://                       in this process only (the default)
    sqlite:///originals.db          ./originals.db (relative to the working directory)
    sqlite:////var/lib/headroom.db  /var/lib/headroom.db (may be the metrics file too)
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from headroom_core.ccr._base import OriginalStore
from headroom_core.ccr._memory import MemoryOriginalStore
from headroom_core.ccr._sqlite import SQLiteOriginalStore
from headroom_core.errors import ConfigError

__all__ = [
    "get_default_store",
    "open_original_store",
    "original_store_schemes",
    "set_default_store",
]


def _open_sqlite(url: str, rest: str) -> OriginalStore:
    if not rest.startswith("/") or rest == "/":
        raise ConfigError(
            f"original store URL {url!r}: expected a path after 'sqlite:///' "
            "(three slashes: relative path, four: absolute path)"
        )
    return SQLiteOriginalStore(rest[1:])


def _open_memory(url: str, rest: str) -> OriginalStore:
    if rest not in ("", "/"):
        raise ConfigError(f"original store URL {url!r}: 'memory://' takes no path")
    return MemoryOriginalStore()


# scheme -> factory(url, text after "scheme://"). A new store is one new entry here.
_REGISTRY: dict[str, Callable[[str, str], OriginalStore]] = {
    "memory": _open_memory,
    "sqlite": _open_sqlite,
}


def original_store_schemes() -> tuple[str, ...]:
    """The URL schemes ``open_original_store`` knows."""
    return tuple(sorted(_REGISTRY))


def open_original_store(url: str = "memory://") -> OriginalStore:
    """Open (creating if needed, with parent directories) the store of originals ``url`` names.

    Stores are opened with their default bounds; construct ``MemoryOriginalStore`` or
    ``SQLiteOriginalStore`` directly to choose others. Raises ConfigError for a malformed
    URL or an unknown scheme, StorageError when the file cannot be opened.
    """
    if not isinstance(url, str):
        raise ConfigError(f"original store URL: expected a string, got {url!r}")
    scheme, sep, rest = url.partition("://")
    factory = _REGISTRY.get(scheme.lower()) if sep else None
    if factory is None:
        known = ", ".join(f"{s}://" for s in original_store_schemes())
        raise ConfigError(f"original store URL {url!r}: unknown scheme; known schemes: {known}")
    return factory(url, rest)


_default_lock = threading.Lock()
_default: OriginalStore | None = None


def get_default_store() -> OriginalStore:
    """The store used when none is passed: a ``MemoryOriginalStore`` unless set otherwise."""
    global _default
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

"""Store URLs: the scheme registry shared by the metrics, originals and learning openers.

Every store is opened from a URL ``scheme://rest``. A :class:`StoreRegistry` maps each
scheme to a factory ``factory(url, rest, **options)``; the three openers
(:func:`headroom_core.metrics.open_store`, :func:`headroom_core.ccr.open_original_store`,
:func:`headroom_core.toin.open_toin`) are one registry each. Paths follow SQLAlchemy's
slash convention: after ``scheme://`` one slash starts the path, so three slashes give a
relative path and four an absolute one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError

__all__ = ["DEFAULT_METRICS_URL", "StoreRegistry", "file_path", "no_path", "redact"]

#: Where metrics go when no URL is given: ``./headroom.db``.
DEFAULT_METRICS_URL = "sqlite:///headroom.db"

_T = TypeVar("_T")


def file_path(what: str, url: str, rest: str, shown: str) -> str:
    """The path in ``rest`` (text after ``scheme://``), else ConfigError.

    ``shown`` is the scheme named in the message (``'sqlite'``, or ``'scheme'`` when one
    message serves several).
    """
    if not rest.startswith("/") or rest == "/":
        raise ConfigError(
            f"{what} URL {url!r}: expected a path after '{shown}:///' "
            "(three slashes: relative path, four: absolute path)"
        )
    return rest[1:]


def no_path(what: str, url: str, rest: str) -> None:
    """ConfigError unless ``rest`` is empty (``memory://`` takes no path)."""
    if rest not in ("", "/"):
        raise ConfigError(f"{what} URL {url!r}: 'memory://' takes no path")


def redact(url: str) -> str:
    """``url`` without its password (for messages, logs and ``repr``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class StoreRegistry(Generic[_T]):
    """scheme -> factory(url, rest, **options). A new store is one new entry."""

    __slots__ = ("_factories", "what")

    def __init__(self, what: str, factories: dict[str, Callable[..., _T]]) -> None:
        self.what = what
        self._factories = dict(factories)

    def register(self, scheme: str, factory: Callable[..., _T]) -> None:
        """Add (or replace) the factory for ``scheme``."""
        self._factories[scheme.lower()] = factory

    def schemes(self) -> tuple[str, ...]:
        """The URL schemes this registry knows, sorted."""
        return tuple(sorted(self._factories))

    def open(self, url: object, **options: Any) -> _T:
        """The store ``url`` names; ConfigError for a non-string or an unknown scheme."""
        if not isinstance(url, str):
            raise ConfigError(f"{self.what} URL: expected a string, got {url!r}")
        scheme, sep, rest = url.partition("://")
        factory = self._factories.get(scheme.lower()) if sep else None
        if factory is None:
            known = ", ".join(f"{s}://" for s in self.schemes())
            raise ConfigError(f"{self.what} URL {url!r}: unknown scheme; known schemes: {known}")
        return factory(url, rest, **options)

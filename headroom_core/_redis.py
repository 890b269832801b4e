"""One Redis server used by the shared stores: clients, a breaker, bounded calls.

redis-py is imported here, and this module is imported only when a ``redis://`` or
``rediss://`` URL is opened (extra ``redis``). A :class:`Server` holds two clients on the
URL: ``fast`` for the request path (connect and socket timeouts of ``timeout_ms``, no
retries) and ``slow`` for the background writer and reads off the request path
(``read_timeout_s``). redis-py's pools open new connections in a forked child.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._remote import Breaker, RemoteOptions, redact, split_options
from .errors import ConfigError, StorageError

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError('Redis stores need redis-py: pip install "headroom-context[redis]"') from exc

__all__ = ["Server", "pipeline_results", "redis", "server"]

_T = TypeVar("_T")
_ERRORS = (redis.RedisError, OSError)


class Server:
    """Clients, a breaker and the key prefix for one Redis URL."""

    def __init__(self, url: str, options: RemoteOptions) -> None:
        self.url = url
        self.options = options
        self.label = f"Redis {redact(url)}"
        self.breaker = Breaker(self.label, options.retry_s)
        self.prefix = options.prefix
        self.fast = self._client(options.timeout_s)
        self.slow = self._client(options.read_timeout_s)

    def _client(self, timeout: float) -> redis.Redis:
        return redis.Redis.from_url(
            self.url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
        )

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def bounded(self, fn: Callable[[redis.Redis], _T]) -> _T:
        """``fn(fast client)`` for the request path: StorageError at once while the server
        is down, or after ``timeout_ms`` per round trip."""
        self.breaker.check()
        return self._call(fn, self.fast)

    def read(self, fn: Callable[[redis.Redis], _T]) -> _T:
        """``fn(slow client)`` off the request path."""
        return self._call(fn, self.slow)

    def _call(self, fn: Callable[[redis.Redis], _T], client: redis.Redis) -> _T:
        try:
            result = fn(client)
        except _ERRORS as exc:
            self.breaker.failed(exc)
            raise StorageError(f"{self.label}: {type(exc).__name__}: {exc}") from exc
        self.breaker.succeeded()
        return result

    def close(self) -> None:
        for client in (self.fast, self.slow):
            client.close()


def server(what: str, url: str) -> Server:
    """A :class:`Server` for ``url`` (options split off); ConfigError for a bad URL."""
    clean, options = split_options(what, url)
    scheme = clean.partition("://")[0].lower()
    if scheme not in ("redis", "rediss"):
        raise ConfigError(f"{what} URL {redact(url)!r}: expected redis:// or rediss://")
    try:
        return Server(clean, options)
    except (ValueError, TypeError) as exc:  # redis-py's URL parser
        raise ConfigError(f"{what} URL {redact(url)!r}: {exc}") from exc


def pipeline_results(client: redis.Redis, build: Callable[[Any], None]) -> list[Any]:
    """Run the commands ``build`` adds to a non-transactional pipeline; their results."""
    pipe = client.pipeline(transaction=False)
    build(pipe)
    return list(pipe.execute())

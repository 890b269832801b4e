"""``RedisOriginalStore``: originals in Redis, shared by every process and host.

One string key per original, ``<prefix>:orig:v1:<ref>``, holding a JSON header line and
the zlib-compressed text. Size is bounded by the server: set ``maxmemory`` and
``maxmemory-policy allkeys-lru`` and Redis evicts the least recently used originals
(every ``get`` and every ``put`` of stored text touches the key). With ``ttl_s`` an
original is also forgotten that many seconds after its last use. A ref whose original
was evicted gives the model the same message as any unknown ref.
"""

from __future__ import annotations

import time
from typing import Any

from headroom_core._redis import Server, pipeline_results, redis, server
from headroom_core._remote import RemoteOptions
from headroom_core.ccr._shared import Packed, SharedOriginalStore
from headroom_core.errors import StorageError

__all__ = ["RedisOriginalStore"]

_WHAT = "original store"
#: Bumped when the value layout changes (old keys are then simply not found).
_LAYOUT = "v1"
_SCAN_BATCH = 1_000


class _RedisBackend:
    def __init__(self, srv: Server) -> None:
        self._srv = srv
        self.label = srv.label
        self.breaker = srv.breaker
        self.options: RemoteOptions = srv.options
        self._ttl = srv.options.ttl_s
        self._pattern = srv.key("orig", _LAYOUT, "*")

    def _key(self, ref: str) -> str:
        return self._srv.key("orig", _LAYOUT, ref)

    def touch(self, ref: str) -> bool:
        key = self._key(ref)
        if self._ttl is None:
            return bool(self._srv.bounded(lambda r: r.touch(key)))
        ttl = self._ttl
        return bool(self._srv.bounded(lambda r: r.expire(key, ttl)))

    def _set(self, client: redis.Redis, packed: Packed) -> None:
        value = packed.header() + b"\n" + packed.body
        client.set(self._key(packed.ref), value, nx=True, ex=self._ttl)

    def put(self, packed: Packed) -> None:
        self._srv.bounded(lambda r: self._set(r, packed))

    def put_many(self, packed: list[Packed]) -> None:
        def write(pipe: Any) -> None:
            for p in packed:
                self._set(pipe, p)

        self._srv.read(lambda r: pipeline_results(r, write))

    def get(self, ref: str) -> Packed | None:
        key, ttl = self._key(ref), self._ttl

        def read(pipe: Any) -> None:
            pipe.get(key)
            if ttl is not None:
                pipe.expire(key, ttl)

        value = self._srv.bounded(lambda r: pipeline_results(r, read))[0]
        if value is None:
            return None
        header, sep, body = bytes(value).partition(b"\n")
        try:
            return Packed.from_header(ref, header, body)
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"cannot decode original {ref} of {self.label}: {exc}") from exc

    def contains(self, ref: str) -> bool:
        key = self._key(ref)
        return bool(self._srv.bounded(lambda r: r.exists(key)))

    def count(self) -> int:
        """Keys of originals, by SCAN (bounded to a few round-trip timeouts in all)."""
        deadline = time.monotonic() + 4 * self.options.timeout_s

        def scan(r: redis.Redis) -> int:
            total, cursor = 0, 0
            while True:
                cursor, keys = r.scan(cursor, match=self._pattern, count=_SCAN_BATCH)
                total += len(keys)
                if cursor == 0:
                    return total
                if time.monotonic() > deadline:
                    raise StorageError(f"{self.label}: counting originals took too long")

        return self._srv.read(scan)

    def clear(self) -> None:
        def wipe(r: redis.Redis) -> None:
            batch: list[Any] = []
            for key in r.scan_iter(match=self._pattern, count=_SCAN_BATCH):
                batch.append(key)
                if len(batch) >= _SCAN_BATCH:
                    r.unlink(*batch)
                    batch.clear()
            if batch:
                r.unlink(*batch)

        self._srv.read(wipe)

    def close(self) -> None:
        self._srv.close()


class RedisOriginalStore(SharedOriginalStore):
    """Originals in Redis (see the module docstring). ``url``: ``redis://host:port/db`` or
    ``rediss://`` with options as query parameters (``timeout_ms``, ``ttl_s``, ``spill``,
    ``retry_s``, ``prefix``, ...); other parameters go to redis-py."""

    def __init__(self, url: str) -> None:
        super().__init__(_RedisBackend(server(_WHAT, url)))

"""``RedisToin``: TOIN's counts in Redis, shared by every process and host.

Keys (``<prefix>:toin:v1:...``): ``tools`` (a set of tool names, ``""`` for none),
``t:<tool>`` (a hash of ``c:<kind>`` / ``r:<kind>`` counts) and ``f:<tool>`` (a hash of
field counts). Each event is one Lua script, atomic, that applies it only if its id is new
(``ev:<id>``, kept 10 minutes): concurrent writers never lose an increment, and an event
sent again after a timeout (its first try may have landed) is not counted twice.

These keys are small; with ``allkeys-lru`` a server short of memory may
evict a cold tool's counts (learning starts again for it), ``volatile-lru`` with
``ttl_s`` on the originals spares them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from headroom_core._redis import Server, pipeline_results, redis, server
from headroom_core._remote import RemoteOptions
from headroom_core.toin._shared import Count, SharedToin

__all__ = ["RedisToin"]

_WHAT = "TOIN"
_LAYOUT = "v1"
#: Seconds an event id is remembered: a retry within this is never counted twice.
_EVENT_TTL_S = 600
# KEYS: event id, tools set, tool counts, tool fields; ARGV: tool, count field, fields...
_APPLY = f"""
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', {_EVENT_TTL_S}) then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
for i = 3, #ARGV do redis.call('HINCRBY', KEYS[4], ARGV[i], 1) end
return 1
"""


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _RedisBackend:
    def __init__(self, srv: Server) -> None:
        self._srv = srv
        self.label = srv.label
        self.breaker = srv.breaker
        self.options: RemoteOptions = srv.options
        self._tools = srv.key("toin", _LAYOUT, "tools")
        self._apply = srv.fast.register_script(_APPLY)

    def _t(self, tool: str) -> str:
        return self._srv.key("toin", _LAYOUT, "t", tool)

    def _f(self, tool: str) -> str:
        return self._srv.key("toin", _LAYOUT, "f", tool)

    def add(
        self,
        counts: list[Count],
        *,
        bounded: bool,
        on_late_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        def write(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=False)
            for event, tool, kind, retrieval, fields in counts:
                keys = [self._srv.key("toin", _LAYOUT, "ev", event), self._tools,
                        self._t(tool), self._f(tool)]  # fmt: skip
                field = f"{'r' if retrieval else 'c'}:{kind}"
                self._apply(keys=keys, args=[tool, field, *fields], client=pipe)
            pipe.execute()

        (self._srv.bounded if bounded else self._srv.read)(write)

    def fields(self, tool: str) -> dict[str, int]:
        raw = self._srv.bounded(lambda r: r.hgetall(self._f(tool)))
        return {_s(k): int(v) for k, v in raw.items()}

    def totals(self, tool: str) -> tuple[int, int]:
        raw = self._srv.bounded(lambda r: r.hgetall(self._t(tool)))
        c = sum(int(v) for k, v in raw.items() if _s(k).startswith("c:"))
        r_ = sum(int(v) for k, v in raw.items() if _s(k).startswith("r:"))
        return c, r_

    def rows(self) -> tuple[list[tuple[str, str, int, int]], list[tuple[str, str, int]]]:
        def read(r: redis.Redis) -> tuple[list[str], list[Any]]:
            tools = sorted(_s(t) for t in r.smembers(self._tools))

            def build(pipe: Any) -> None:
                for tool in tools:
                    pipe.hgetall(self._t(tool))
                    pipe.hgetall(self._f(tool))

            return tools, pipeline_results(r, build) if tools else []

        tools, results = self._srv.read(read)
        counts: list[tuple[str, str, int, int]] = []
        fields: list[tuple[str, str, int]] = []
        for i, tool in enumerate(tools):
            per_kind: dict[str, list[int]] = {}
            for k, v in results[2 * i].items():
                which, _, kind = _s(k).partition(":")
                per_kind.setdefault(kind, [0, 0])[0 if which == "c" else 1] += int(v)
            counts += [(tool, kind, c, r) for kind, (c, r) in per_kind.items()]
            fields += [(tool, _s(k), int(v)) for k, v in results[2 * i + 1].items()]
        return counts, fields

    def reset(self, tool: str | None) -> None:
        def wipe(r: redis.Redis) -> None:
            tools = [_s(t) for t in r.smembers(self._tools)] if tool is None else [tool]
            pipe = r.pipeline(transaction=True)
            for t in tools:
                pipe.delete(self._t(t), self._f(t))
                pipe.srem(self._tools, t)
            pipe.execute()

        self._srv.read(wipe)

    def close(self) -> None:
        self._srv.close()


class RedisToin(SharedToin):
    """TOIN in Redis (see the module docstring). ``url``: ``redis://host:port/db`` or
    ``rediss://`` with options as query parameters (``timeout_ms``, ``buffer``, ``prefix``,
    ...); other parameters go to redis-py."""

    def __init__(self, url: str, *, min_field_count: int = 1) -> None:
        super().__init__(_RedisBackend(server(_WHAT, url)), min_field_count=min_field_count)

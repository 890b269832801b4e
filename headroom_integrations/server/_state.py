"""What one server process holds: settings, the pooled upstream client, the planners, the
stores and the counters. Built when the app starts, closed when it stops."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from headroom_core.ccr import (
    OriginalStore,
    get_default_store,
    open_original_store,
    scoped_store,
    set_default_store,
)

from .._client_core import ClientEngine
from ._metrics import BackgroundSink, ServerMetrics
from ._wire import WIRES
from .settings import ServerSettings

#: Connections kept to each upstream host (a request waits for one beyond that).
POOL_CONNECTIONS = 512


@dataclass(slots=True)
class State:
    settings: ServerSettings
    http: httpx.AsyncClient
    engines: dict[str, ClientEngine]
    sink: BackgroundSink
    originals: OriginalStore
    metrics: ServerMetrics
    previous_originals: OriginalStore

    @classmethod
    def open(cls, settings: ServerSettings) -> State:
        originals = open_original_store(settings.originals)
        previous = get_default_store()
        set_default_store(originals)  # where the transforms keep what they cut
        sink = BackgroundSink(settings.store)
        engines = {
            name: ClientEngine(settings.config, name, sink, source="server") for name in WIRES
        }
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.upstream_timeout, connect=10.0),
            limits=httpx.Limits(
                max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS
            ),
            follow_redirects=False,
            trust_env=False,
        )
        return cls(settings, http, engines, sink, originals, ServerMetrics.create(), previous)

    def originals_for(self, namespace: str | None) -> OriginalStore:
        """The store of originals for a request: scoped to its ``x-headroom-namespace``
        (refs made there read nothing elsewhere), or the whole store without one."""
        return self.originals if namespace is None else scoped_store(self.originals, namespace)

    async def aclose(self) -> None:
        await self.http.aclose()
        self.sink.close()
        set_default_store(self.previous_originals)  # an app stopped in a process that goes on
        close = getattr(self.originals, "close", None)
        if callable(close) and self.settings.originals != "memory://":
            close()


__all__ = ["State"]

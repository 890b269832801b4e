"""Where the adapters' metrics handlers write: a store that fails is logged once, never raised.

Shared by the LangChain callback handler and the LlamaIndex event handler; framework-free.
"""

from __future__ import annotations

import logging
import threading

from headroom_core.errors import StorageError
from headroom_core.metrics import MetricsStore, RequestMetrics, open_store

logger = logging.getLogger("headroom_integrations")


class MetricsSink:
    """Writes records to a store; a store that fails is logged once, never raised."""

    def __init__(self, store_url: str, store: MetricsStore | None, owner: str) -> None:
        self.owner = owner
        self.where = store_url if store is None else repr(store)
        self.dropped = 0
        self._lock = threading.Lock()
        self._warned = False
        self._error: BaseException | None = None
        self._owns = store is None
        self._store = store
        if store is None:
            try:
                self._store = open_store(store_url)
            except StorageError as exc:  # a malformed URL (ConfigError) still raises
                self._error = exc
                self.warn(exc, f"cannot record metrics to {self.where}")

    def write(self, m: RequestMetrics) -> None:
        if self._store is None:
            self._drop()
            return
        try:
            self._store.record(m)
        # Observer boundary: whatever a store raises, the user's run goes on (logged once).
        except Exception as exc:
            self._drop()
            self.warn(exc, f"cannot record metrics to {self.where}")

    def _drop(self) -> None:
        with self._lock:
            self.dropped += 1

    def warn(self, exc: BaseException, what: str) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        logger.warning(
            "%s: %s (%r); metrics are dropped and further failures are not logged",
            self.owner,
            what,
            exc,
        )

    def require_store(self) -> MetricsStore:
        if self._store is None:
            raise StorageError(
                f"metrics store {self.where} is unavailable: {self._error}"
            ) from self._error
        return self._store

    def close(self) -> None:
        if self._owns and self._store is not None:
            self._store.close()

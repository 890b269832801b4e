"""Health of a shared store: the :class:`Breaker` that fails calls fast while it is down,
and the :class:`StoreStats` a store reports (standard library only, so the metrics
package can name them without loading a driver)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from .errors import StorageError

__all__ = ["Breaker", "Pending", "StoreStats", "log", "store_stats"]

log = logging.getLogger("headroom_core.stores")


class Pending(StorageError):
    """A call on the request path did not finish within ``timeout_ms`` and goes on in the
    background: its outcome is not known yet (the caller's ``on_late_failure`` hears of a
    failure), so the caller must not do it again."""


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Health and counts of one shared store in this process, since it was opened.

    ``available`` is False while the store is treated as down (calls fail open at once);
    ``failures`` counts failed calls and writes; ``pending`` rows wait in memory for the
    store; ``written`` rows were written by the background writer; ``dropped`` rows were
    lost (buffer full, refused by the store, or still unwritten at close); ``spilled``
    originals were kept in this process while the store could not be written.
    """

    store: str
    available: bool
    failures: int
    pending: int
    written: int
    dropped: int
    spilled: int = 0
    down_since: datetime | None = None
    last_error: str | None = None


class Breaker:
    """Fail fast while a store is down: after a failure every call fails at once for
    ``retry_s``; then one call goes through to try again. Logs each change of state."""

    __slots__ = ("_down_since", "_lock", "_next_try", "failures", "label", "last_error", "retry_s")

    def __init__(self, label: str, retry_s: float) -> None:
        self.label = label
        self.retry_s = retry_s
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_try = 0.0
        self.failures = 0
        self.last_error: str | None = None

    @property
    def available(self) -> bool:
        return self._down_since is None

    @property
    def down_since(self) -> datetime | None:
        since = self._down_since
        if since is None:
            return None
        wall = time.time() - (time.monotonic() - since)
        return datetime.fromtimestamp(wall, timezone.utc)

    def stats(self, *, pending: int, written: int, dropped: int, spilled: int = 0) -> StoreStats:
        """The store's :class:`StoreStats`: this breaker's health with the store's counts."""
        return StoreStats(
            store=self.label,
            available=self.available,
            failures=self.failures,
            pending=pending,
            written=written,
            dropped=dropped,
            spilled=spilled,
            down_since=self.down_since,
            last_error=self.last_error,
        )

    def allow(self) -> bool:
        """True if a call may go to the store now (always, unless it is down and the next
        try is not due; the call that is let through is the try)."""
        with self._lock:
            if self._down_since is None:
                return True
            now = time.monotonic()
            if now >= self._next_try:
                self._next_try = now + self.retry_s
                return True
            return False

    def check(self) -> None:
        """StorageError at once when the store is down and no try is due."""
        if not self.allow():
            raise StorageError(f"{self.label} is unavailable ({self.last_error}); failing open")

    def succeeded(self) -> None:
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.warning("%s is available again after %.1f s", self.label, time.monotonic() - since)

    def failed(self, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}".strip()
        with self._lock:
            self.failures += 1
            self.last_error = text[:300]
            was_up = self._down_since is None
            now = time.monotonic()
            if was_up:
                self._down_since = now
            self._next_try = now + self.retry_s
        if was_up:
            log.warning(
                "%s is unavailable (%s); failing open, trying again every %.1f s",
                self.label,
                text[:300],
                self.retry_s,
            )


def store_stats(store: object) -> StoreStats | None:
    """``store.store_stats()`` for a shared store (PostgreSQL, Redis); None for a local one."""
    method = getattr(store, "store_stats", None)
    if not callable(method):
        return None
    stats = method()
    return stats if isinstance(stats, StoreStats) else None

"""``Outbox``: rows waiting in memory for a shared store, written in batches by a thread.

``put`` never touches the network: it appends to a bounded queue. When the queue is full
and the store is up (writing slower than rows arrive), ``put`` waits up to ``put_wait_s``
for room; when the store is down, or after that wait, the new row is dropped and counted.
A daemon thread takes up to ``batch`` rows at a time, waiting up to ``flush_ms`` to gather
them, and hands them to ``write``; a failed write puts them back
in front and tells the store's :class:`~headroom_core._remote.Breaker`, which spaces the
retries. ``write`` returns how many rows the store refused for good (a bad row is dropped
and counted, never retried forever). ``flush`` waits for the queue to empty; ``close``
flushes within a bound and counts what is left as dropped.

A forked child starts with an empty queue and its own thread (the parent keeps its rows);
at interpreter exit every open outbox gets one bounded flush.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from ._remote import Breaker

__all__ = ["Outbox"]

_T = TypeVar("_T")
log = logging.getLogger("headroom_core.stores")

#: Longest a flush at interpreter exit waits, per outbox.
EXIT_FLUSH_S = 5.0

_open: weakref.WeakSet[Outbox[object]] = weakref.WeakSet()


class Outbox(Generic[_T]):
    """A bounded queue of rows and the thread that writes them (see the module docstring)."""

    def __init__(
        self,
        label: str,
        write: Callable[[list[_T]], int],
        breaker: Breaker,
        *,
        capacity: int,
        batch: int,
        flush_s: float,
        put_wait_s: float = 0.0,
    ) -> None:
        self.label = label
        self._write = write
        self._breaker = breaker
        self.capacity = capacity
        self.batch = batch
        self.flush_s = flush_s
        self.put_wait_s = put_wait_s
        self.written = 0
        self.dropped = 0
        self._reset()
        _open.add(self)  # type: ignore[arg-type]

    def _reset(self) -> None:
        self._items: deque[_T] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._inflight = 0
        self._attempts = 0  # writes tried (succeeded or failed): flush() watches it
        self._closing = False
        self._flushing = False
        self._warned_full = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def _after_fork(self) -> None:
        self._reset()

    # -- producer side ---------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Rows waiting (queued or being written)."""
        return len(self._items) + self._inflight

    def put(self, item: _T) -> bool:
        """Queue ``item``; False (and counted as dropped) when the queue is full or closed."""
        if self._pid != os.getpid():
            self._after_fork()
        with self._cond:
            if self._full() and not self._closing and self._breaker.available:
                deadline = time.monotonic() + self.put_wait_s  # backpressure, bounded
                while self._full() and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
            if self._closing or self._full():
                self.dropped += 1
                warn = not self._warned_full and not self._closing
                self._warned_full = True
            else:
                self._items.append(item)
                # Wake the writer: the first row starts its flush_ms gathering window
                # (it sleeps while the queue is empty), a full batch ends it.
                if len(self._items) == 1 or len(self._items) >= self.batch:
                    self._cond.notify_all()
                warn = False
                self._start()
                return True
        if warn:
            log.warning(
                "%s: %d rows are waiting to be written (store unavailable, or slower than "
                "the traffic); new rows are dropped and counted in store_stats().dropped",
                self.label,
                self.capacity,
            )
        return False

    def _full(self) -> bool:
        return len(self._items) + self._inflight >= self.capacity

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"headroom-outbox:{self.label}", daemon=True
            )
            self._thread.start()

    def flush(self, timeout: float) -> bool:
        """Wait until every queued row is written, a write fails, or ``timeout`` passes.
        True when nothing is left."""
        if self._pid != os.getpid():
            self._after_fork()
        deadline = time.monotonic() + timeout
        with self._cond:
            if not self._items and not self._inflight:
                return True
            start = self._attempts
            self._flushing = True
            self._cond.notify_all()
            try:
                while self._items or self._inflight:
                    left = deadline - time.monotonic()
                    failed = self._attempts > start and not self._breaker.available
                    if left <= 0 or failed:
                        return False
                    self._cond.wait(min(left, 0.05))
                return True
            finally:
                self._flushing = False

    def close(self, timeout: float) -> None:
        """Write what is queued (within ``timeout``), then stop; what is left is dropped."""
        if self._pid != os.getpid():
            self._after_fork()
        self.flush(timeout)
        with self._cond:
            self._closing = True
            left = len(self._items)
            self._items.clear()
            self.dropped += left
            self._cond.notify_all()
            thread = self._thread
        if left:
            log.warning("%s: closed with %d rows unwritten (store unavailable)", self.label, left)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(0.1, timeout))
        _open.discard(self)  # type: ignore[arg-type]

    # -- the writer thread -----------------------------------------------------------------

    def _take(self) -> list[_T] | None:
        """The next batch, waiting to gather one; None when closing and empty."""
        with self._cond:
            while not self._items and not self._closing:
                self._cond.wait()
            if not self._items:
                return None
            if len(self._items) < self.batch and not (self._flushing or self._closing):
                self._cond.wait(self.flush_s)
            n = min(self.batch, len(self._items))
            taken = [self._items.popleft() for _ in range(n)]
            self._inflight = n
            return taken

    def _give_back(self, rows: list[_T]) -> None:
        with self._cond:
            self._items.extendleft(reversed(rows))
            over = len(self._items) - self.capacity
            for _ in range(max(0, over)):
                self._items.pop()  # the newest go: the oldest keep their place
            self.dropped += max(0, over)

    def _run(self) -> None:
        while True:
            rows = self._take()
            if rows is None:
                return
            if not self._breaker.allow():
                self._give_back(rows)
                with self._cond:
                    self._inflight = 0
                    self._attempts += 1
                    self._cond.notify_all()
                    if not self._closing:
                        self._cond.wait(min(self._breaker.retry_s, 0.25))
                continue
            try:
                refused = self._write(rows)
            # The writer thread is the observer boundary of a shared store: whatever the
            # driver raises (network, server restart, ...), rows wait and are tried again.
            except Exception as exc:
                self._breaker.failed(exc)
                self._give_back(rows)
                ok = False
            else:
                self._breaker.succeeded()
                ok = True
            with self._cond:
                self._inflight = 0
                self._attempts += 1
                if ok:
                    self.written += len(rows) - refused
                    self.dropped += refused
                    self._warned_full = False
                self._cond.notify_all()


def _flush_all_at_exit() -> None:
    for box in list(_open):
        if box._pid == os.getpid() and box.pending:
            box.flush(EXIT_FLUSH_S)


def _forget_after_fork() -> None:
    for box in list(_open):
        box._after_fork()


atexit.register(_flush_all_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)

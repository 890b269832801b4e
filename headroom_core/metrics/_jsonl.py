"""``JSONLMetricsStore``: one JSON object per line, appended under an exclusive file lock.

Locking: on POSIX every append holds ``fcntl.flock(LOCK_EX)`` on the file and every read
holds ``LOCK_SH``, so lines written by concurrent processes never interleave and a
reader never sees half a line. Threads of one process are serialised by a lock as well
(flock is per open file, so it does not separate threads sharing one descriptor).

Fallback: where ``fcntl`` does not exist (Windows) only the in-process lock applies;
each record is still written with a single ``write`` on an ``O_APPEND`` descriptor,
but several processes appending to one file at once are not guaranteed to be safe
there. Use the SQLite store for multi-process writers on such platforms.

A torn line (a write cut short by a full disk or a file-size limit) never makes the file
unreadable: the next append starts on a fresh line, and reads skip a line that is not a
valid record, count it (``Summary.skipped_records``) and log a warning naming the file and
line. Blank lines carry no record and are ignored.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson

from headroom_core._closing import ClosingContext
from headroom_core.errors import InputError, StorageError
from headroom_core.metrics._base import check_query, dumps, select, summarize
from headroom_core.metrics.records import RequestMetrics, Summary

__all__ = ["JSONLMetricsStore"]

logger = logging.getLogger("headroom_core")

if sys.platform == "win32":  # pragma: no cover - see the module docstring

    def _lock(fd: int, *, shared: bool = False) -> None:
        """No inter-process lock on this platform."""

    def _unlock(fd: int) -> None:
        """No inter-process lock on this platform."""

else:
    import fcntl

    def _lock(fd: int, *, shared: bool = False) -> None:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


# Read and write: an append checks the last byte first (see _append).
_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)


def _byte_at(fd: int, offset: int) -> bytes:
    # lseek + read rather than os.pread, which Windows lacks; O_APPEND writes ignore the
    # offset, and callers hold the store's thread lock.
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, 1)


class JSONLMetricsStore(ClosingContext):
    """Metrics appended to a JSON Lines file (created with its parent directories).

    Reads stream the whole file; fine for local logs, use SQLite for large histories.
    """

    __slots__ = ("_fd", "_lock", "_path", "_pid", "_reported")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path).expanduser().absolute()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._fd: int | None = self._open()
        self._reported = 0  # corrupt lines already logged

    @property
    def path(self) -> Path:
        """The JSON Lines file."""
        return self._path

    def __repr__(self) -> str:
        return f"JSONLMetricsStore({str(self._path)!r})"

    def _fail(self, action: str, exc: BaseException) -> StorageError:
        return StorageError(f"cannot {action} metrics file {self._path}: {exc}")

    def _open(self) -> int:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self._path, _OPEN_FLAGS, 0o644)
        except OSError as exc:
            raise self._fail("open", exc) from exc

    def record(self, m: RequestMetrics) -> None:
        """Append one line. If the file ends in a torn line, start on a new line."""
        if not isinstance(m, RequestMetrics):
            raise InputError(f"record: expected RequestMetrics, got {type(m).__name__}")
        line = dumps(m.to_dict(), m) + b"\n"
        with self._lock:
            if self._fd is None:
                raise StorageError(f"metrics file {self._path} is closed")
            if self._pid != os.getpid():  # forked: a shared descriptor would share the flock
                self._pid = os.getpid()
                self._fd = self._open()
            try:
                self._append(self._fd, line)
            except OSError as exc:
                raise self._fail("write to", exc) from exc

    @staticmethod
    def _append(fd: int, line: bytes) -> None:
        _lock(fd)
        try:
            size = os.fstat(fd).st_size
            if size and _byte_at(fd, size - 1) != b"\n":
                line = b"\n" + line  # keep our record off a torn last line
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            _unlock(fd)

    def _iter_records(self, skipped: list[str] | None = None) -> Iterator[RequestMetrics]:
        """Every record in file order, streamed. A missing file holds no records; a line
        that is not a record is skipped (described in ``skipped``, when given).

        The size is taken under a shared lock; every byte before it belongs to a complete
        append (writers hold the exclusive lock for the whole line), so the lines up to
        it are read without holding the lock while the caller consumes them.
        """
        if self._fd is None:
            raise StorageError(f"metrics file {self._path} is closed")
        try:
            f = open(self._path, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._fail("read", exc) from exc
        with f:
            try:
                _lock(f.fileno(), shared=True)
                try:
                    remaining = os.fstat(f.fileno()).st_size
                finally:
                    _unlock(f.fileno())
            except OSError as exc:
                raise self._fail("read", exc) from exc
            lineno = 0
            while remaining > 0:
                try:
                    raw = f.readline(remaining)
                except OSError as exc:
                    raise self._fail("read", exc) from exc
                if not raw:
                    break
                remaining -= len(raw)
                lineno += 1
                if raw.strip():
                    try:
                        yield RequestMetrics.from_dict(orjson.loads(raw))
                    except (orjson.JSONDecodeError, InputError, TypeError, ValueError) as exc:
                        if skipped is not None:
                            skipped.append(f"line {lineno}: {exc}")
        if skipped:
            self._report(skipped)

    def _report(self, skipped: list[str]) -> None:
        """Log corrupt lines once, when their count changes."""
        if len(skipped) != self._reported:
            self._reported = len(skipped)
            logger.warning(
                "metrics file %s: skipped %d line(s) that are not records (first: %s)",
                self._path,
                len(skipped),
                skipped[0],
            )

    def get_metrics(
        self,
        limit: int | None = 100,
        *,
        since: datetime | None = None,
        model: str | None = None,
    ) -> list[RequestMetrics]:
        """Records newest first (ties: the later line first)."""
        check_query(limit, since)
        return select(self._iter_records([]), limit, since, model)

    def get_summary(self, *, since: datetime | None = None) -> Summary:
        """Totals over the file, computed in one streaming pass."""
        skipped: list[str] = []
        summary = summarize(self._iter_records(skipped), since)
        return dataclasses.replace(summary, skipped_records=len(skipped)) if skipped else summary

    def close(self) -> None:
        """Close the append descriptor. Idempotent."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None and self._pid == os.getpid():
            os.close(fd)

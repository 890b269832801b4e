"""``SharedOriginalStore``: the originals store for a server many processes share.

One class over two backends (:mod:`._redis`, :mod:`._postgres`), which store a
:class:`Packed` original under its ref, mark it used on ``touch``/``get``, and raise
StorageError within ``timeout_ms`` when the server does not answer.

Faults: ``put`` is on the request path. When the server cannot be written, the original
is *spilled*: kept in this process (at most ``spill`` of them, least recently used out)
and written to the server by a background thread when it is back, so compression goes on
and the ref is retrievable here at once and everywhere after the outage. ``get`` falls
back to the spill; a ref found nowhere while the server is unreachable raises
StorageError, which :func:`~headroom_core.ccr.retrieve` turns into a message for the model.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from headroom_core._closing import ClosingContext
from headroom_core._outbox import Outbox
from headroom_core._remote import Breaker, RemoteOptions, StoreStats
from headroom_core.ccr._base import (
    StoredOriginal,
    check_put,
    decode_meta,
    decode_text,
    encode_text,
    is_ref,
    ref_for,
)
from headroom_core.errors import StorageError

__all__ = ["Backend", "Packed", "SharedOriginalStore"]

#: zlib level 1, as the SQLite store: put() is on the request path.
_ZLIB_LEVEL = 1


@dataclass(frozen=True, slots=True)
class Packed:
    """One original as the backends store it: text zlib-compressed, meta as JSON."""

    ref: str
    body: bytes
    tool: str | None
    kind: str
    meta: bytes
    size: int
    nbytes: int
    created_at: float

    def header(self) -> bytes:
        """Everything but the body, as one line of JSON (Redis keeps it before the body)."""
        return orjson.dumps(
            {
                "tool": self.tool,
                "kind": self.kind,
                "meta": self.meta.decode(),
                "size": self.size,
                "nbytes": self.nbytes,
                "created_at": self.created_at,
            }
        )

    @classmethod
    def from_header(cls, ref: str, header: bytes, body: bytes) -> Packed:
        h = orjson.loads(header)
        return cls(
            ref, body, h["tool"], h["kind"], h["meta"].encode(), h["size"], h["nbytes"],
            h["created_at"],
        )  # fmt: skip


def pack(original: str, tool: str | None, kind: str, meta: bytes) -> Packed:
    data = encode_text(original)
    body = zlib.compress(data, _ZLIB_LEVEL)
    return Packed(ref_for(original), body, tool, kind, meta, len(original), len(data), time.time())


def unpack(p: Packed, label: str) -> StoredOriginal:
    try:
        text = decode_text(zlib.decompress(p.body))
        meta = decode_meta(p.meta)
    except (zlib.error, ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise StorageError(f"cannot decode original {p.ref} of {label}: {exc}") from exc
    return StoredOriginal(p.ref, text, p.tool, p.kind, p.created_at, p.size, meta)


class Backend(Protocol):
    """Where a :class:`SharedOriginalStore` keeps originals (each call bounded)."""

    label: str
    breaker: Breaker
    options: RemoteOptions

    def touch(self, ref: str) -> bool:
        """Mark ``ref`` used; False if it is not stored."""
        ...

    def put(self, packed: Packed) -> None:
        """Store ``packed`` unless its ref is stored (then mark it used)."""
        ...

    def put_many(self, packed: list[Packed]) -> None:
        """The background writer's ``put`` (off the request path)."""
        ...

    def get(self, ref: str) -> Packed | None:
        """The original under ``ref`` (marking it used), or None."""
        ...

    def contains(self, ref: str) -> bool: ...

    def count(self) -> int: ...

    def clear(self) -> None: ...

    def close(self) -> None: ...


class SharedOriginalStore(ClosingContext):
    """An :class:`~headroom_core.ccr.OriginalStore` on a shared server (module docstring)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        opts = backend.options
        self._spill: OrderedDict[str, Packed] = OrderedDict()
        self._lock = threading.Lock()
        self.spilled = 0
        self._spill_dropped = 0
        self._outbox: Outbox[str] = Outbox(
            f"originals on {backend.label}",
            self._flush_spill,
            backend.breaker,
            capacity=max(1, opts.spill),
            batch=min(opts.batch, 100),
            flush_s=opts.flush_ms / 1000.0,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._backend.label!r})"

    @property
    def backend(self) -> Backend:
        return self._backend

    def put(
        self,
        original: str,
        *,
        tool: str | None = None,
        kind: str = "json",
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Keep ``original``; return its ref. Storing text already held only marks it used
        (its first ``tool``, ``kind`` and ``meta`` are kept). See the module docstring for
        what happens while the server is down."""
        meta_json = check_put(original, tool, kind, meta)
        ref = ref_for(original)
        with self._lock:
            if ref in self._spill:
                self._spill.move_to_end(ref)
                return ref
        try:
            if self._backend.touch(ref):
                return ref
        except StorageError:
            if self._backend.options.spill == 0:
                raise
            self._keep_here(self._pack(original, tool, kind, meta_json))
            return ref
        packed = self._pack(original, tool, kind, meta_json)  # too large: StorageError
        try:
            self._backend.put(packed)
        except StorageError:
            if self._backend.options.spill == 0:
                raise
            self._keep_here(packed)
        return ref

    def _pack(self, original: str, tool: str | None, kind: str, meta: bytes) -> Packed:
        packed = pack(original, tool, kind, meta)
        self._check_size(packed)
        return packed

    def _check_size(self, packed: Packed) -> None:
        limit = self._backend.options.max_bytes
        if packed.nbytes > limit:
            raise StorageError(
                f"{self._backend.label}: an original of {packed.nbytes} bytes is larger than "
                f"max_bytes={limit}"
            )

    def _keep_here(self, packed: Packed) -> None:
        with self._lock:
            self._spill[packed.ref] = packed
            self.spilled += 1
            while len(self._spill) > self._backend.options.spill:
                self._spill.popitem(last=False)
                self._spill_dropped += 1
        self._outbox.put(packed.ref)

    def _flush_spill(self, refs: list[str]) -> int:
        with self._lock:
            packed = [self._spill[r] for r in refs if r in self._spill]
        if packed:
            self._backend.put_many(packed)
        with self._lock:
            for p in packed:
                self._spill.pop(p.ref, None)
        return 0

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the spilled originals are written to the server (True)."""
        return self._outbox.flush(
            self._backend.options.read_timeout_s if timeout is None else timeout
        )

    def get(self, ref: str) -> StoredOriginal | None:
        """The original under ``ref`` (marking it used), or None if unknown or evicted;
        StorageError if the server cannot be read and this process does not hold it."""
        if not is_ref(ref):
            return None
        error: StorageError | None = None
        try:
            packed = self._backend.get(ref)
        except StorageError as exc:
            packed, error = None, exc
        if packed is None:
            with self._lock:
                packed = self._spill.get(ref)
        if packed is None:
            if error is not None:
                raise error
            return None
        return unpack(packed, self._backend.label)

    def __contains__(self, ref: object) -> bool:
        if not isinstance(ref, str) or not is_ref(ref):
            return False
        with self._lock:
            if ref in self._spill:
                return True
        try:
            return self._backend.contains(ref)
        except StorageError:
            return False

    def __len__(self) -> int:
        """Originals on the server plus those waiting here (StorageError if unreachable)."""
        count = self._backend.count()
        with self._lock:
            return count + len(self._spill)

    def clear(self) -> None:
        """Forget every original (on the server, for every process)."""
        with self._lock:
            self._spill.clear()
        self._backend.clear()

    def store_stats(self) -> StoreStats:
        """Health and counts of this store in this process."""
        return self._backend.breaker.stats(
            pending=len(self._spill),
            written=self._outbox.written,
            dropped=self._outbox.dropped + self._spill_dropped,
            spilled=self.spilled,
        )

    def close(self) -> None:
        """Write spilled originals (within ``read_timeout_s``), then release. Idempotent."""
        self._outbox.close(self._backend.options.read_timeout_s)
        self._backend.close()

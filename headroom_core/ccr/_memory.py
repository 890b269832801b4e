"""``MemoryOriginalStore``: originals in this process, bounded, least-recently-used out."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from headroom_core._closing import ClosingContext
from headroom_core.ccr._base import (
    StoredOriginal,
    check_bound,
    check_put,
    decode_meta,
    is_ref,
    ref_for,
)
from headroom_core.errors import StorageError

__all__ = ["MemoryOriginalStore"]


@dataclass(frozen=True, slots=True)
class _Entry:
    text: str
    tool: str | None
    kind: str
    created_at: float
    meta: bytes  # JSON: every get() hands out a fresh dict, as the SQLite store does


class MemoryOriginalStore(ClosingContext):
    """Originals kept in a dict in this process; thread-safe; lost on exit.

    Bounded by ``max_entries`` originals and ``max_chars`` characters in total. When a
    ``put`` goes over either bound, the least-recently-USED originals are evicted until
    both hold again: ``get`` and a ``put`` of text already stored both count as a use
    (``in`` and ``len`` do not). Nothing ever expires with time, so an original the model
    keeps asking for stays as long as the session needs it.

    One original longer than ``max_chars`` on its own is refused with StorageError rather
    than stored and evicted at once (a ref that can never be retrieved would be a lie).
    """

    __slots__ = ("_chars", "_entries", "_lock", "max_chars", "max_entries")

    def __init__(self, max_entries: int = 10_000, max_chars: int = 200_000_000) -> None:
        self.max_entries = check_bound("MemoryOriginalStore", "max_entries", max_entries)
        self.max_chars = check_bound("MemoryOriginalStore", "max_chars", max_chars)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # oldest use first
        self._chars = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"MemoryOriginalStore(<{len(self)} originals, {self.total_chars} chars>, "
            f"max_entries={self.max_entries}, max_chars={self.max_chars})"
        )

    @property
    def total_chars(self) -> int:
        """Characters held, summed over all originals."""
        return self._chars

    def put(
        self,
        original: str,
        *,
        tool: str | None = None,
        kind: str = "json",
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Keep ``original``; return its ref.

        Storing text that is already held only marks it used; its first ``tool``, ``kind``
        and ``meta`` are kept.
        """
        meta_json = check_put(original, tool, kind, meta)
        ref = ref_for(original)
        with self._lock:
            if ref in self._entries:
                self._entries.move_to_end(ref)
                return ref
            if len(original) > self.max_chars:
                raise StorageError(
                    f"in-memory store of originals: an original of {len(original)} chars "
                    f"is larger than max_chars={self.max_chars}"
                )
            self._entries[ref] = _Entry(original, tool, kind, time.time(), meta_json)
            self._chars += len(original)
            while len(self._entries) > self.max_entries or self._chars > self.max_chars:
                _, old = self._entries.popitem(last=False)
                self._chars -= len(old.text)
        return ref

    def get(self, ref: str) -> StoredOriginal | None:
        """The original under ``ref`` (marking it used), or None."""
        if not is_ref(ref):
            return None
        with self._lock:
            entry = self._entries.get(ref)
            if entry is None:
                return None
            self._entries.move_to_end(ref)
        return StoredOriginal(
            ref=ref,
            text=entry.text,
            tool=entry.tool,
            kind=entry.kind,
            created_at=entry.created_at,
            size=len(entry.text),
            meta=decode_meta(entry.meta),
        )

    def __contains__(self, ref: object) -> bool:
        with self._lock:
            return ref in self._entries if isinstance(ref, str) else False

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        """Forget every original."""
        with self._lock:
            self._entries.clear()
            self._chars = 0

    def close(self) -> None:
        """Same as :meth:`clear` (there is nothing else to release); the store stays usable."""
        self.clear()

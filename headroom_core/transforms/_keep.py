"""The store a fitter keeps originals in, where a refusal never fails the fit.

A fitter that drops or cuts an output must keep its original under the ref its note names.
When the store refuses (an original over its size bound, a shared store that is down), the
request must still fit: the note goes out as planned, the original is not kept, and the
refusal is recorded in the request's ``failures`` (naming the ref that will not retrieve),
so it is never silent. Only a fitter's step sees this store; compressors keep their own
fail-open rule (an output whose original cannot be kept stays whole).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..ccr import OriginalStore, StoredOriginal, ref_for
from ..errors import StorageError


class KeepOrReport:
    """``store`` whose ``put`` records a refusal in ``failures`` instead of raising; the ref
    returned is then the original's own (:func:`ref_for`), which retrieves nothing."""

    __slots__ = ("failures", "store")

    def __init__(self, store: OriginalStore, failures: list[str]) -> None:
        self.store = store
        self.failures = failures

    def put(
        self,
        original: str,
        *,
        tool: str | None = None,
        kind: str = "json",
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        try:
            return self.store.put(original, tool=tool, kind=kind, meta=meta)
        except StorageError as exc:
            ref = ref_for(original)
            self.failures.append(
                f"fitting: the original under ref={ref} ({len(original)} chars) was left out "
                f"to fit the window but could not be kept, so it cannot be retrieved: {exc}"
            )
            return ref

    def get(self, ref: str) -> StoredOriginal | None:
        return self.store.get(ref)

    def __contains__(self, ref: object) -> bool:
        return ref in self.store

    def __len__(self) -> int:
        return len(self.store)

    def clear(self) -> None:
        self.store.clear()


__all__ = ["KeepOrReport"]

"""Learning applies to what is seen after it, never to what was already sent.

What the model fetched back (:mod:`headroom_core.toin`) makes later cuts of that tool spare
those fields. Applied to a tool output already in the conversation, that would change how an
old message compresses from one turn to the next, and the provider's prompt cache would
lose everything after it. So each tool output keeps the fields it was first cut with:

- in this process, a bounded memo: (tool, text) -> the fields in force at first sight;
- across processes (several workers sharing a store of originals), a lossy cut stores its
  original with ``meta={"spared": [...]}``: a process that meets the output later reads the
  fields there instead of the ones learned since.

The store is asked only when the fields learned for the tool are not empty and the memo
does not know the text (nothing to decide otherwise), so the request path pays nothing
while nothing has been learned.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..ccr import ref_for
from ..toin import get_toin

if TYPE_CHECKING:
    from ..ccr import OriginalStore

__all__ = ["SPARED_KEY", "fields_at_first_sight", "forget"]

#: The key of a stored original's meta that records the fields its cut spared.
SPARED_KEY = "spared"
_MAX_ENTRIES = 16_384

_lock = threading.Lock()
_memo: OrderedDict[tuple[str | None, int, int], frozenset[str]] = OrderedDict()


def fields_at_first_sight(text: str, tool: str | None, store: OriginalStore) -> frozenset[str]:
    """The learned fields to spare in cuts of ``text``: those in force when this output was
    first compressed (see the module docstring)."""
    key = (tool, len(text), hash(text))
    with _lock:
        known = _memo.get(key)
        if known is not None:
            _memo.move_to_end(key)
            return known
    fields = get_toin().fields_for(tool)
    if fields:
        stored = store.get(ref_for(text))
        if stored is not None:  # cut before, perhaps by another process
            spared = stored.meta.get(SPARED_KEY)
            fields = frozenset(spared) if isinstance(spared, list) else frozenset()
    with _lock:
        _memo[key] = fields
        while len(_memo) > _MAX_ENTRIES:
            _memo.popitem(last=False)
    return fields


def forget() -> None:
    """Drop the memo (tests, and a process that resets its learning)."""
    with _lock:
        _memo.clear()

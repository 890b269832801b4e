"""CCR (compress, cache, retrieve): reversible compression, that is the store of originals
and the tool that reads them back. The name comes from the prior art (headroom); in prose
this package calls it "the store of originals".

A lossy compressor keeps the text it cut with ``store.put(text)``, which returns a
*ref* (the first 32 hex characters, 128 bits, of the text's SHA-256, so the same text always has
the same ref, in any process), and writes a marker naming that ref into the compressed
message. The model calls the ``headroom_retrieve`` tool (:func:`retrieve_tool_definition`)
with the ref, and :func:`retrieve` answers with the original, or with only the items or
lines that match a query.

Stores (one protocol, :class:`OriginalStore`):

- :class:`MemoryOriginalStore`: this process only; the default store.
- :class:`SQLiteOriginalStore`: one file shared across restarts and processes.

Both evict the least-recently-used originals when over their bounds and never expire
anything with time. ``open_original_store("sqlite:///originals.db")`` opens one by URL;
``set_default_store`` makes one the process-wide default; ``with use_store(store):`` makes one
the store for the code in that block only (this thread or task), which is how the adapters'
``store=`` reaches the compressors. ``scoped_store(store, namespace)`` keeps tenants (or
conversations) sharing one store apart: a ref made in one namespace reads nothing in another.
"""

from __future__ import annotations

from headroom_core.ccr._base import REF_LENGTH, OriginalStore, StoredOriginal, is_ref, ref_for
from headroom_core.ccr._memory import MemoryOriginalStore
from headroom_core.ccr._open import (
    get_default_store,
    open_original_store,
    original_store_schemes,
    resolve_store,
    set_default_store,
    use_store,
)
from headroom_core.ccr._retrieve import (
    RETRIEVE_MAX_TOKENS,
    RetrievalListener,
    add_retrieval_listener,
    remove_retrieval_listener,
    retrieve,
)
from headroom_core.ccr._scoped import ScopedOriginalStore, in_a_namespace, scoped_store
from headroom_core.ccr._sqlite import SQLiteOriginalStore
from headroom_core.ccr._tool import RETRIEVE_TOOL_NAME, retrieve_tool_definition

__all__ = [
    "REF_LENGTH",
    "RETRIEVE_MAX_TOKENS",
    "RETRIEVE_TOOL_NAME",
    "MemoryOriginalStore",
    "OriginalStore",
    "RetrievalListener",
    "SQLiteOriginalStore",
    "ScopedOriginalStore",
    "StoredOriginal",
    "add_retrieval_listener",
    "get_default_store",
    "in_a_namespace",
    "is_ref",
    "open_original_store",
    "original_store_schemes",
    "ref_for",
    "remove_retrieval_listener",
    "resolve_store",
    "retrieve",
    "retrieve_tool_definition",
    "scoped_store",
    "set_default_store",
    "use_store",
]

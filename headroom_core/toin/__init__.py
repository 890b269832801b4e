"""TOIN (tool-output intelligence, the prior art's name, kept for its API): learning from
retrievals which tools and fields a compressor should spare.

A lossy cut that the model undoes with ``headroom_retrieve`` is evidence: the cut was too
deep for that tool, and the retrieval's query names what was missing. A :class:`Toin`
counts both events per tool and turns them into advice:

- ``record_compression(tool, kind)``: a lossy cut left a marker for ``tool``'s output.
- ``record_retrieval(tool, kind, query, fields)``: the model fetched such an original back;
  ``fields`` (e.g. the JSON keys the query names, see :func:`named_keys`) and the query's
  terms (lowercased, minus stopwords) are each counted as needed once.
- ``fields_for(tool)``: fields needed by at least ``min_field_count`` retrievals.
- ``importance(tool)``: ``retrievals / (compressions + 2)``, capped at 1.0.
- ``stats()`` for inspection, ``reset(tool)`` to forget.

Backends (one protocol): :class:`MemoryToin` (this process) and :class:`SQLiteToin` (one
file shared across restarts and processes), opened by URL with :func:`open_toin`.
:func:`attach` feeds every :func:`headroom_core.ccr.retrieve` into a TOIN;
:func:`get_toin` / :func:`set_toin` hold the process-wide default.
"""

from __future__ import annotations

from headroom_core.toin._attach import attach
from headroom_core.toin._base import (
    IMPORTANCE_PRIOR,
    MAX_FIELD_CHARS,
    MAX_FIELDS_PER_RETRIEVAL,
    Toin,
    ToolStats,
    importance_of,
    named_keys,
    query_terms,
)
from headroom_core.toin._memory import MemoryToin
from headroom_core.toin._open import get_toin, open_toin, set_toin, toin_schemes
from headroom_core.toin._sqlite import SQLiteToin

__all__ = [
    "IMPORTANCE_PRIOR",
    "MAX_FIELDS_PER_RETRIEVAL",
    "MAX_FIELD_CHARS",
    "MemoryToin",
    "SQLiteToin",
    "Toin",
    "ToolStats",
    "attach",
    "get_toin",
    "importance_of",
    "named_keys",
    "open_toin",
    "query_terms",
    "set_toin",
    "toin_schemes",
]

"""``retrieve``: give the model back what was cut, whole or filtered by a query.

Every answer is a string meant for the model; nothing here raises on a bad ref, a
missing original or an unreadable store. Listeners hear about every successful retrieval.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import orjson

from headroom_core.ccr._base import OriginalStore, StoredOriginal, is_ref
from headroom_core.ccr._open import get_default_store
from headroom_core.errors import StorageError

__all__ = ["RetrievalListener", "add_retrieval_listener", "remove_retrieval_listener", "retrieve"]

_log = logging.getLogger("headroom_core.ccr")

RetrievalListener = Callable[[StoredOriginal, str | None], None]

_listeners: list[RetrievalListener] = []
_listeners_lock = threading.Lock()

#: How many levels of "largest value is an object" retrieve descends to find the array.
_MAX_DEPTH = 8


def add_retrieval_listener(fn: RetrievalListener) -> None:
    """Call ``fn(original, query)`` after every successful :func:`retrieve` in this process.

    A listener that raises is logged (logger ``headroom_core.ccr``) and otherwise ignored.
    """
    if not callable(fn):
        raise TypeError(f"add_retrieval_listener: expected a callable, got {fn!r}")
    with _listeners_lock:
        _listeners.append(fn)


def remove_retrieval_listener(fn: RetrievalListener) -> None:
    """Stop calling ``fn``; a listener that was never added is ignored."""
    with _listeners_lock:
        if fn in _listeners:
            _listeners.remove(fn)


def _notify(found: StoredOriginal, query: str | None) -> None:
    with _listeners_lock:
        listeners = list(_listeners)
    for fn in listeners:
        try:
            fn(found, query)
        except Exception:  # an observer never breaks the model's tool call
            _log.exception("retrieval listener %r failed for ref %s", fn, found.ref)


def retrieve(ref: str, query: str | None = None, *, store: OriginalStore | None = None) -> str:
    """The original stored under ``ref``; with ``query``, only its matching items or lines.

    With a query, a JSON array (or an object whose largest value is, possibly a few
    levels down, an array) gives the items whose compact JSON contains every query word,
    case-insensitively, as one compact JSON array under a header line; other text gives
    the matching lines, each prefixed with its line number. A malformed, unknown or
    evicted ref, or a store that cannot be read, gives a message saying so.
    """
    key = ref.strip().strip("'\"").lower() if isinstance(ref, str) else ""
    if not is_ref(key):
        shown = ref[:40] if isinstance(ref, str) else ref
        return (
            f"[headroom: {shown!r} is not a valid ref; a ref is 16 hex characters, copied "
            'from a marker such as {"__headroom_truncated": N, "ref": "..."} or '
            "[... N lines omitted; ref=...]]"
        )
    target = get_default_store() if store is None else store
    try:
        found = target.get(key)
        held = None if found is not None else len(target)
    except StorageError as exc:
        return f"[headroom: the store of originals could not be read ({exc}); re-run the tool]"
    if found is None:
        return (
            f"[headroom: no original stored under ref {key!r}; it may have been evicted "
            f"(store holds {held} entries); re-run the tool]"
        )
    _notify(found, query)
    if query is None or not str(query).strip():
        return found.text
    return filter_text(found.text, str(query))


def filter_text(text: str, query: str) -> str:
    """The items (JSON) or numbered lines (other text) of ``text`` matching ``query``."""
    terms = query.casefold().split()
    shown = query.strip()
    located = _find_items(text)
    if located is not None:
        path, items = located
        kept = [c for c in map(_compact, items) if _matches(c, terms)]
        where = f" in {path}" if path else ""
        header = (
            f"[headroom: {len(kept)} of {len(items)} items{where} match {shown!r}; "
            "call again without query for all]"
        )
        return f"{header}\n[{','.join(kept)}]"
    lines = text.splitlines()
    hits = [f"{n}: {line}" for n, line in enumerate(lines, 1) if _matches(line, terms)]
    header = (
        f"[headroom: {len(hits)} of {len(lines)} lines match {shown!r}; "
        "call again without query for all]"
    )
    return "\n".join([header, *hits])


def _matches(text: str, terms: list[str]) -> bool:
    folded = text.casefold()
    return all(term in folded for term in terms)


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")  # NaN would come back as null


def _compact(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits: orjson refuses them, the stdlib does not
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _find_items(text: str) -> tuple[str, list[Any]] | None:
    """(path, items) of the array a query should filter, or None if ``text`` has none.

    The stdlib parser is used because orjson turns integers beyond 64 bits into floats.
    """
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    path = ""
    for _ in range(_MAX_DEPTH):
        if isinstance(data, list):
            return path, data
        if not isinstance(data, dict) or not data:
            return None
        key, data = max(data.items(), key=lambda kv: len(_compact(kv[1])))
        path += f".{key}" if key.isidentifier() else f"[{json.dumps(key, ensure_ascii=False)}]"
    return None

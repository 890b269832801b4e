"""``retrieve``: give the model back what was cut, whole or filtered by a query.

Every answer is a string meant for the model; nothing here raises on a bad ref, a
missing original or an unreadable store. Listeners hear about every successful retrieval.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from headroom_core.ccr._base import OriginalStore, StoredOriginal, is_ref, ref_for
from headroom_core.ccr._open import get_default_store
from headroom_core.ccr._pages import HEADER_TOKENS, Page, Unit, page, split_units
from headroom_core.ccr._scoped import in_a_namespace
from headroom_core.errors import StorageError
from headroom_core.tokens import get_tokenizer

__all__ = [
    "RETRIEVE_MAX_TOKENS",
    "RetrievalListener",
    "add_retrieval_listener",
    "remove_retrieval_listener",
    "retrieve",
]

_log = logging.getLogger("headroom_core.ccr")

RetrievalListener = Callable[[StoredOriginal, str | None], None]

_listeners: list[RetrievalListener] = []
_listeners_lock = threading.Lock()

#: How many levels of "largest value is an object" retrieve descends to find the array.
_MAX_DEPTH = 8
#: The cap of one answer to a model's tool call, in tokens (the tools' default): a bigger
#: original comes back in pages.
RETRIEVE_MAX_TOKENS = 8_000


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


def retrieve(
    ref: str,
    query: str | None = None,
    *,
    store: OriginalStore | None = None,
    offset: int = 0,
    limit: int | None = None,
    max_tokens: int | None = None,
    model: str = "gpt-4o",
) -> str:
    """The original stored under ``ref``; with ``query``, only its matching items or lines;
    with ``max_tokens``, never more than that many tokens of ``model``. What answers a
    model's tool call passes a cap (the adapters' tools and the server's retrieval loop:
    :data:`RETRIEVE_MAX_TOKENS`, or a quarter of the window); None (the default, the
    reference API's behaviour) gives the whole answer.

    With a query, a JSON array (or an object whose largest value is, possibly a few
    levels down, an array) gives the items whose compact JSON contains every query word,
    case-insensitively, as one compact JSON array under a header line; other text gives
    the matching lines, each prefixed with its line number.

    An answer over ``max_tokens`` (or asked for with ``offset`` / ``limit``) is one page:
    the items or lines from ``offset`` (0-based, into the matches when there is a query)
    that fit, at most ``limit`` of them, under a header naming the range and the
    ``offset`` of the next page under the same ref. A whole original that fits is
    returned exactly as stored.

    A malformed, unknown or evicted ref, a bad ``offset`` / ``limit``, or a store that
    cannot be read gives a message saying so.
    """
    key = ref.strip().strip("'\"").lower() if isinstance(ref, str) else ""
    if not is_ref(key):
        shown = ref[:40] if isinstance(ref, str) else ref
        return (
            f"[headroom: {shown!r} is not a valid ref; a ref is 32 hex characters, copied "
            'from a marker such as {"__headroom_truncated": N, "ref": "..."} or '
            "[... N lines omitted; ref=...]]"
        )
    paging = _paging(offset, limit)
    if isinstance(paging, str):
        return paging
    target = get_default_store() if store is None else store
    try:
        found = target.get(key)
        if found is not None and in_a_namespace(found.text):
            found = None  # a namespaced original, asked for without its namespace
        held = None if found is not None else len(target)
    except StorageError as exc:
        return f"[headroom: the store of originals could not be read ({exc}); re-run the tool]"
    if found is None:
        return (
            f"[headroom: no original stored under ref {key!r}; it may have been evicted "
            f"(store holds {held} entries); re-run the tool]"
        )
    _notify(found, query)
    asked = "" if query is None else str(query).strip()
    start, most = paging
    count = get_tokenizer(model).count_text
    whole = not asked and start == 0 and most is None
    if whole and (max_tokens is None or count(found.text) <= max_tokens):
        return found.text
    return _answer(found.ref, found.text, asked, start, most, max_tokens, count)


def _paging(offset: Any, limit: Any) -> tuple[int, int | None] | str:
    """(offset, limit) as ints, or the message for a model that passed something else."""
    values: list[int | None] = []
    for name, value, low in (("offset", offset, 0), ("limit", limit, 1)):
        if value is None or (name == "offset" and value == ""):
            values.append(0 if name == "offset" else None)
            continue
        try:
            number = int(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or number < low:
            return (
                f"[headroom: {name} must be a whole number >= {low}, got {value!r}; copy it "
                "from the header of the previous page]"
            )
        values.append(number)
    return int(values[0] or 0), values[1]


def filter_text(text: str, query: str) -> str:
    """The items (JSON) or numbered lines (other text) of ``text`` matching ``query``,
    whole (no cap)."""
    return _answer(ref_for(text), text, query.strip(), 0, None, None, _count_gpt4o)


def _count_gpt4o(text: str) -> int:
    return get_tokenizer("gpt-4o").count_text(text)


def _answer(
    ref: str,
    text: str,
    query: str,
    offset: int,
    limit: int | None,
    max_tokens: int | None,
    count: Callable[[str], int],
) -> str:
    """The matches of ``query`` (all units without one), one page of them when needed."""
    located = _find_items(text)
    envelope = None
    if located is not None:
        kind, texts = "items", [_compact(item) for item in located.items]
        where = f" in {located.path}" if located.path else ""
        envelope = None if query else located.envelope
    else:
        kind, where, texts = "lines", "", text.splitlines()
    terms = query.casefold().split()
    numbered = [(n, t) for n, t in enumerate(texts, 1) if not terms or _matches(t, terms)]
    if envelope is not None:  # the rest of the document comes first, as unit 0
        numbered.insert(0, (0, envelope))
    room = None if max_tokens is None else max(1, max_tokens - HEADER_TOKENS)
    units = split_units(numbered, count, room)
    render = _renderer(kind, bool(query))
    shown = page(units, count, offset=offset, limit=limit, room=room, render=render)
    head = _header(ref, kind, where, len(texts), len(numbered), query, shown)
    if kind == "items" and not any(u.part for u in shown.body):
        lines = [head, *(render(u) for u in shown.body if not u.number)]
        items = [u.text for u in shown.body if u.number]
        only_around = len(lines) > 1 and not items  # a page of the document around them
        return "\n".join(lines if only_around else [*lines, f"[{','.join(items)}]"])
    return "\n".join([head, *map(render, shown.body)])


def _renderer(kind: str, numbered: bool) -> Callable[[Unit], str]:
    """How a unit is written: items as compact JSON (a part with its label), lines as
    they are (numbered when a query picked them)."""
    single = kind[:-1]

    def render(unit: Unit) -> str:
        if not unit.number:
            return (
                f"[the document around the {kind}] {unit.text}"
                if not unit.part
                else (
                    f"[the document around the {kind}, part {unit.part}/{unit.parts}] {unit.text}"
                )
            )
        if unit.part:
            return f"[{single} {unit.label}] {unit.text}"
        if kind == "items":
            return unit.text
        return f"{unit.number}: {unit.text}" if numbered else unit.text

    return render


def _header(
    ref: str, kind: str, where: str, total: int, matched: int, query: str, shown: Page
) -> str:
    more = (
        f"call headroom_retrieve with ref={ref} and offset={shown.end} for more"
        if shown.end < shown.total
        else "nothing follows"
    )
    if shown.start >= shown.total and shown.total:
        return (
            f"[headroom: offset {shown.start} is past the end; there are {shown.total} "
            f"{'matches' if query else kind}; call again with a smaller offset]"
        )
    if query:
        head = f"[headroom: {matched} of {total} {kind}{where} match {query!r}"
        if shown.complete:
            return f"{head}; call again without query for all]"
        return f"{head}; matches {shown.start + 1}-{shown.end} shown; {more}]"
    units = [u for u in shown.body if u.number]
    around = [u for u in shown.body if not u.number]
    what = []
    if around:
        part = f" (part {around[0].part}/{around[0].parts})" if around[0].part else ""
        what.append(f"the document around the {total} {kind}{where}{part}")
    if units:
        first, last = units[0], units[-1]
        span = first.label if first is last else f"{first.label}-{last.label}"
        what.append(f"{kind} {span} of {total}" + ("" if around else where))
    return f"[headroom: {', then '.join(what)}, ref={ref}; {more}]"


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


@dataclass(frozen=True, slots=True)
class _Located:
    """The array a query filters: its path, its items, and the document around it."""

    path: str
    items: list[Any]
    envelope: str | None  # compact JSON of the rest, the array as a placeholder; None at root


def _find_items(text: str) -> _Located | None:
    """The array a query should filter, or None if ``text`` has none.

    The stdlib parser is used because orjson turns integers beyond 64 bits into floats.
    """
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        root = data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    path = ""
    keys: list[str] = []
    for _ in range(_MAX_DEPTH):
        if isinstance(data, list):
            envelope = _envelope(root, keys, f"<the {len(data)} items of {path}>") if keys else None
            return _Located(path, data, envelope)
        if not isinstance(data, dict) or not data:
            return None
        key, data = max(data.items(), key=lambda kv: len(_compact(kv[1])))
        keys.append(key)
        path += f".{key}" if key.isidentifier() else f"[{json.dumps(key, ensure_ascii=False)}]"
    return None


def _envelope(root: Any, keys: list[str], placeholder: str) -> str:
    """``root`` with the value at ``keys`` replaced by ``placeholder``, as compact JSON."""
    top = dict(root)
    node = top
    for key in keys[:-1]:
        node[key] = dict(node[key])
        node = node[key]
    node[keys[-1]] = placeholder
    return _compact(top)

"""The lossless JSON forms SmartCrusher may emit, and their exact decoder.

Every form is itself valid JSON, so a model reads it as JSON:

- **table**: a list of two or more objects that all have the same keys in the same order
  becomes (where that is shorter)
  ``[{"__headroom_cols": [k1, k2, ...]}, [v1, v2, ...], [v1, v2, ...], ...]``: keys stated
  once, one list of values per row. Columns whose value is the same in every row are
  stated once: ``{"__headroom_cols": [...], "__headroom_const": {"k": v}}`` and left out
  of the rows. Dicts after the header (lossy-cut markers) pass through as they are.
- **repeat**: a run of three or more identical consecutive items becomes
  ``{"__headroom_repeat": n, "value": item}``.

:func:`decode` restores the original exactly (``decode(encode(x)) == x``, key order
included).

Reserved keys: every key this package writes starts with ``__headroom`` (the forms above,
and the lossy-cut markers ``__headroom_truncated`` / ``__headroom_omitted``). A tool's own
key that starts with ``__headroom`` is never trusted as one of ours: :func:`escape` writes
it as ``__headroom_key:<key>`` and :func:`decode` turns it back, so the forms stay
unambiguous and such data is still compressed. Data holding one of OUR keys (:data:`OURS`)
is taken to be our own output already and is left alone (compressing it again changes
nothing).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import orjson

COLS = "__headroom_cols"
CONST = "__headroom_const"
REPEAT = "__headroom_repeat"
TRUNCATED = "__headroom_truncated"
OMITTED = "__headroom_omitted"
PREFIX = "__headroom"
ESCAPE = "__headroom_key:"
#: The keys this package writes: data holding one is our own output.
OURS = frozenset({COLS, CONST, REPEAT, TRUNCATED, OMITTED})
_MIN_TABLE_ROWS = 2
_MIN_REPEAT = 3


def _keys(data: Any) -> Iterator[str]:
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                yield k
                if isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))


def has_reserved_keys(data: Any) -> bool:
    """True if any object key in ``data`` starts with ``__headroom``."""
    return any(k.startswith(PREFIX) for k in _keys(data))


def is_ours(data: Any) -> bool:
    """True if ``data`` holds a key this package writes (:data:`OURS`, or an escaped key):
    it is our own output already."""
    return any(k in OURS or k.startswith(ESCAPE) for k in _keys(data))


def escape(data: Any) -> Any:
    """``data`` with every key that starts with ``__headroom`` written as
    ``__headroom_key:<key>`` (:func:`decode` restores them)."""
    if isinstance(data, dict):
        return {(ESCAPE + k if k.startswith(PREFIX) else k): escape(v) for k, v in data.items()}
    if isinstance(data, list):
        return [escape(v) for v in data]
    return data


def _unescape(key: str) -> str:
    return key[len(ESCAPE) :] if key.startswith(ESCAPE) else key


def encode(data: Any) -> Any:
    """Recursively apply the table and repeat forms. The caller escapes a tool's own
    ``__headroom*`` keys first (:func:`escape`)."""
    if isinstance(data, dict):
        return {k: encode(v) for k, v in data.items()}
    if isinstance(data, list):
        if _scalars_without_runs(data):  # most lists of tags, ids, numbers: nothing to do
            return list(data)
        table = _table(data)
        if table is not None and len(_key(table)) < len(_key(data)):
            return table
        return _repeats([encode(v) for v in data])
    return data


def _is_marker(item: Any) -> bool:
    return isinstance(item, dict) and not OURS.isdisjoint(item)


_NONE_YET = object()


def _scalars_without_runs(items: list[Any]) -> bool:
    """Only scalars, no two neighbours alike: neither form applies. (Equal serialised
    values are equal values, except NaN and the infinities, which orjson writes as
    ``null``: a list holding one of those takes the general path.)"""
    prev: Any = _NONE_YET
    for v in items:
        if isinstance(v, (dict, list)) or v == prev:
            return False
        if isinstance(v, float) and not math.isfinite(v):
            return False
        prev = v
    return True


def _table(items: list[Any]) -> list[Any] | None:
    rows = [it for it in items if not _is_marker(it)]
    if len(rows) < _MIN_TABLE_ROWS or not all(isinstance(r, dict) and r for r in rows):
        return None
    cols = list(rows[0])
    if any(list(r) != cols for r in rows):
        return None
    # Compare serialised values: == would call 1, 1.0 and True equal, and ignore key order.
    first = {c: _key(rows[0][c]) for c in cols}
    const = {c: rows[0][c] for c in cols if all(_key(r[c]) == first[c] for r in rows)}
    if len(const) == len(cols):
        const = {}
    header: dict[str, Any] = {COLS: cols}
    if const:
        header[CONST] = {c: encode(v) for c, v in const.items()}
    out: list[Any] = [header]
    kept = [c for c in cols if c not in const]
    for it in items:
        if _is_marker(it):
            out.append(it)
        else:  # a scalar encodes to itself: no call for it
            out.append([v if type(v) in _SCALARS else encode(v) for v in map(it.__getitem__, kept)])
    return out


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _key(value: Any) -> bytes:
    """Identity of a JSON value as written: type- and key-order-sensitive."""
    try:
        return orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits
        return json.dumps(value, separators=(",", ":")).encode()


def _repeats(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    keys = [_key(v) for v in items]
    i = 0
    while i < len(items):
        j = i + 1
        while j < len(items) and keys[j] == keys[i]:
            j += 1
        if j - i >= _MIN_REPEAT:
            out.append({REPEAT: j - i, "value": items[i]})
        else:
            out.extend(items[i:j])
        i = j
    return out


def decode(data: Any) -> Any:
    """Inverse of :func:`encode` and :func:`escape` (lossy-cut markers are left in place)."""
    if isinstance(data, dict):
        return {_unescape(k): decode(v) for k, v in data.items()}
    if not isinstance(data, list):
        return data
    if data and isinstance(data[0], dict) and COLS in data[0]:
        cols: list[str] = data[0][COLS]
        const = {k: decode(v) for k, v in data[0].get(CONST, {}).items()}
        out: list[Any] = []
        for row in data[1:]:
            if isinstance(row, dict):  # a marker
                out.append(decode(row))
                continue
            values = iter(row)
            out.append(
                {_unescape(c): const[c] if c in const else decode(next(values)) for c in cols}
            )
        return out
    out = []
    for item in data:
        if isinstance(item, dict) and REPEAT in item and set(item) == {REPEAT, "value"}:
            out.extend(decode(item["value"]) for _ in range(item[REPEAT]))
        else:
            out.append(decode(item))
    return out

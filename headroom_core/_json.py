"""Strict JSON parsing and compact re-encoding that never change the data.

Used by the waste detector and the JSON transforms; lives outside ``transforms`` so that
measuring waste does not load every compressor.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson


class _NotLossless(ValueError):
    """The text is JSON we could not re-encode without changing its data."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # a duplicate key: a dict would silently keep only the last
        raise _NotLossless("duplicate key")
    return obj


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400 would come back as null
        raise _NotLossless("float overflow")
    return value


def _constant(name: str) -> Any:
    raise _NotLossless(f"non-standard constant {name}")


def parse_json_strict(text: str) -> Any:
    """Parse JSON, refusing anything a re-encode could not reproduce (raises ValueError)."""
    return json.loads(text, object_pairs_hook=_pairs, parse_float=_float, parse_constant=_constant)


def compact_json(text: str) -> str | None:
    """Compact form of ``text`` if it is a JSON object or array, else None."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        data = parse_json_strict(stripped)
        return orjson.dumps(data).decode()
    except (ValueError, RecursionError):
        return None
    except TypeError:  # integers beyond 64 bits: leave the text as it is
        return None

"""Lossless re-encoding of JSON tool outputs as compact JSON.

A tool text that parses as a JSON object or array is re-serialised without
insignificant whitespace when that has fewer tokens. The data is unchanged:
``json.loads`` of the output equals ``json.loads`` of the input. Text that is
not JSON (or not an object/array) is left byte-for-byte alone.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import orjson

from ._toolmsg import rewrite_tool_texts

if TYPE_CHECKING:
    from ..messages import Message
    from ..pipeline import TransformContext


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


class JSONCompactor:
    name = "json_compact"

    def apply(self, messages: list[Message], ctx: TransformContext) -> list[Message]:
        count = ctx.tokenizer.count_text
        skip = frozenset(ctx.config.smart_crusher.never_compress_tools)
        changed = 0

        def rewrite(text: str, _tool: str | None) -> str | None:
            nonlocal changed
            compact = compact_json(text)
            if compact is None or compact == text or count(compact) >= count(text):
                return None
            changed += 1
            return compact

        out = rewrite_tool_texts(messages, rewrite, skip)
        if changed:
            ctx.record(f"{self.name}:{changed}")
        return out

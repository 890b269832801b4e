"""Lossless re-encoding of JSON tool outputs as compact JSON.

A tool text that parses as a JSON object or array is re-serialised without
insignificant whitespace when that has fewer tokens. The data is unchanged:
``json.loads`` of the output equals ``json.loads`` of the input. Text that is
not JSON (or not an object/array) is left byte-for-byte alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._json import compact_json, parse_json_strict
from ._base import Transform
from ._toolmsg import rewrite_tool_texts

if TYPE_CHECKING:
    from ..messages import Message
    from ._base import TransformContext


class JSONCompactor(Transform):
    name = "json_compact"

    def apply(self, messages: list[Message], ctx: TransformContext) -> list[Message]:
        count = ctx.tokenizer.count_text
        skip = frozenset(ctx.config.smart_crusher.never_compress_tools)
        changed = 0

        def rewrite(text: str, _tool: str | None, _index: int) -> str | None:
            nonlocal changed
            compact = compact_json(text)
            if compact is None or compact == text or count(compact) >= count(text):
                return None
            changed += 1
            return compact

        out = rewrite_tool_texts(messages, rewrite, skip, failures=ctx.failures)
        if changed:
            ctx.record(f"{self.name}:{changed}")
        return out


__all__ = ["JSONCompactor", "compact_json", "parse_json_strict"]

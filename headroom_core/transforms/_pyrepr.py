"""Python-repr tool outputs: ``str(result)`` of a list or dict, read as the data it is.

Many tools (LlamaIndex ``FunctionTool``, ReAct observations, ad-hoc LangChain tools) return
``str(list_of_dicts)``: ``[{'id': 1, 'ok': True, 'owner': None}, ...]``. That is not JSON,
so the JSON compressor passes it by. :class:`PyReprCompressor` parses it with
:func:`ast.literal_eval` (literals only: never ``eval``, nothing is called or imported),
keeps it only when every value has a JSON form (str keys; str, int, finite float, bool,
None, list, tuple, dict), and hands the JSON to :class:`~.smart_crusher.SmartCrusher` with
the same context: the same cuts, markers and refs. The original stored under a ref is the
compact JSON of the data (so a query can filter its items). Anything else (a repr holding
a ``datetime(...)``, a set, bytes, non-str keys, text that is already JSON, or an output
below ``min_tokens_to_crush``) is left exactly as it came.
"""

from __future__ import annotations

import ast
import json
import math
from typing import TYPE_CHECKING, Any

from ._content import Compressed, ContentCompressor, ContentContext

if TYPE_CHECKING:
    from ..config import SmartCrusherConfig

__all__ = ["PyReprCompressor", "parse_repr"]

#: Larger texts are not parsed (the parser's memory grows with the source).
MAX_CHARS = 8_000_000
_OPEN_CLOSE = {"[": "]", "{": "}", "(": ")"}
_PYTHON_ONLY = ("'", "None", "True", "False", "(")


def parse_repr(text: str) -> Any | None:
    """The data a Python repr of a list, tuple or dict holds, as JSON-ready values (tuples
    as lists), or None when ``text`` is not such a repr or holds a value JSON cannot."""
    stripped = text.strip()
    if len(stripped) > MAX_CHARS or _OPEN_CLOSE.get(stripped[:1]) != stripped[-1:]:
        return None
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, (list, tuple, dict)):
        return None
    try:
        return _plain(value, 0)
    except (_NotJSON, RecursionError):
        return None


class _NotJSON(Exception):
    pass


def _plain(value: Any, depth: int) -> Any:
    if depth > 200:
        raise _NotJSON
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJSON
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _NotJSON
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    raise _NotJSON  # sets, bytes, complex, Ellipsis


class PyReprCompressor:
    """A content compressor: Python-repr data through the JSON compressor."""

    name = "pyrepr"

    def __init__(self, json_compressor: ContentCompressor) -> None:
        self.json = json_compressor

    def detect(self, text: str) -> bool:
        stripped = text.strip()
        if _OPEN_CLOSE.get(stripped[:1]) != stripped[-1:]:
            return False
        head = stripped[:4096]
        return any(marker in head for marker in _PYTHON_ONLY)

    def compress(self, text: str, ctx: ContentContext) -> Compressed | None:
        if ctx.count(text) < ctx.config.min_tokens_to_crush and ctx.budget_tokens is None:
            return None
        try:
            json.loads(text)
            return None  # already JSON: the JSON compressor's decision stands
        except (ValueError, RecursionError):
            pass
        data = parse_repr(text)
        if data is None:
            return None
        as_json = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        crushed = self.json.compress(as_json, ctx)
        out = crushed if crushed is not None else Compressed(as_json, False)
        return out if ctx.count(out.text) < ctx.count(text) else None


def make(config: SmartCrusherConfig) -> ContentCompressor:
    """The router's factory: a :class:`PyReprCompressor` over a SmartCrusher of ``config``."""
    from .smart_crusher import SmartCrusher

    return PyReprCompressor(SmartCrusher(config))

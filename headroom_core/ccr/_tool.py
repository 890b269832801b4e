"""The ``headroom_retrieve`` tool as the adapters hand it to the model."""

from __future__ import annotations

import copy
from typing import Any, Literal

from headroom_core.errors import ConfigError

__all__ = ["RETRIEVE_TOOL_NAME", "retrieve_tool_definition"]

RETRIEVE_TOOL_NAME = "headroom_retrieve"

_DESCRIPTION = (
    "Fetch content that was cut from an earlier tool result to save context. A marker "
    'such as {"__headroom_truncated": N, "ref": "..."} in JSON, '
    "[... N lines omitted; ref=...] in text, [headroom: body elided, N lines; ref=...] in "
    'code, {"__headroom_omitted": {...}} for dropped fields, or [headroom: N chars cut; '
    "ref=...] inside a string means that content was removed and the full original is "
    "kept under that ref. Call this tool with the ref to get the whole original back, "
    "or add a query to get only the items or lines that contain every word of the query "
    "(case-insensitive). A long answer comes in pages: its first line names the range "
    "shown and the offset to pass for the next page. "
    "Use it when the omitted part may hold what you need; do not guess its contents."
)

_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ref": {
            "type": "string",
            "description": "The ref from the marker: 32 hexadecimal characters.",
        },
        "query": {
            "type": "string",
            "description": (
                "Optional words to search for; only matching items or lines are returned. "
                "Omit it to get the whole original."
            ),
        },
        "offset": {
            "type": "integer",
            "minimum": 0,
            "description": (
                "Where the page starts: the offset named in the first line of the previous "
                "page (0, or omitted, for the first page)."
            ),
        },
        "limit": {
            "type": "integer",
            "minimum": 1,
            "description": "Optional: at most this many items or lines on the page.",
        },
    },
    "required": ["ref"],
    "additionalProperties": False,
}


def _parameters() -> dict[str, Any]:
    return copy.deepcopy(_PARAMETERS)  # callers may edit what they get


def retrieve_tool_definition(fmt: Literal["openai", "anthropic"] = "openai") -> dict[str, Any]:
    """The tool schema in the provider's format (a fresh dict on every call).

    ``openai``: ``{"type": "function", "function": {"name", "description", "parameters"}}``;
    ``anthropic``: ``{"name", "description", "input_schema"}``.
    """
    if fmt == "openai":
        return {
            "type": "function",
            "function": {
                "name": RETRIEVE_TOOL_NAME,
                "description": _DESCRIPTION,
                "parameters": _parameters(),
            },
        }
    if fmt == "anthropic":
        return {
            "name": RETRIEVE_TOOL_NAME,
            "description": _DESCRIPTION,
            "input_schema": _parameters(),
        }
    raise ConfigError(
        f"retrieve_tool_definition.fmt: expected 'openai' or 'anthropic', got {fmt!r}"
    )

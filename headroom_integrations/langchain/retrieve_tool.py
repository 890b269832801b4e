"""The ``headroom_retrieve`` tool as a LangChain ``StructuredTool``.

Hand it to the model next to your own tools so it can read back what compression cut::

    model.bind_tools([*tools, headroom_retrieve])

Name, description and argument descriptions come from the core's tool definition
(:func:`headroom_core.ccr.retrieve_tool_definition`); the answer is the core's
:func:`headroom_core.ccr.retrieve` text, never more than ``max_tokens`` tokens: a longer
original comes in pages (``offset`` / ``limit``, the rest behind the same ref). The tool
never raises: an unknown or evicted ref, an unreadable store or malformed arguments come
back as a message for the model.
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict, Field

from headroom_core.ccr import (
    RETRIEVE_MAX_TOKENS,
    RETRIEVE_TOOL_NAME,
    OriginalStore,
    resolve_store,
    retrieve,
    retrieve_tool_definition,
)

__all__ = ["RetrieveArgs", "headroom_retrieve", "make_retrieve_tool"]

_DEFINITION: dict[str, Any] = retrieve_tool_definition("openai")["function"]
_PROPERTIES: dict[str, Any] = _DEFINITION["parameters"]["properties"]


class RetrieveArgs(BaseModel):
    """Arguments of ``headroom_retrieve`` (descriptions from the core's definition)."""

    model_config = ConfigDict(extra="forbid")

    ref: str = Field(description=_PROPERTIES["ref"]["description"])
    query: str | None = Field(default=None, description=_PROPERTIES["query"]["description"])
    offset: int | None = Field(default=None, ge=0, description=_PROPERTIES["offset"]["description"])
    limit: int | None = Field(default=None, ge=1, description=_PROPERTIES["limit"]["description"])


def _invalid_arguments(exc: Any) -> str:
    # exc: a pydantic ValidationError (v2, or v1 for v1 schemas); both have .errors().
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'arguments'}: {e.get('msg')}"
        for e in exc.errors()
    )
    return (
        f"[headroom: invalid arguments for {RETRIEVE_TOOL_NAME} ({problems}); call it with "
        '{"ref": "<32 hex characters from a marker>"} and optionally "query", "offset", "limit"]'
    )


def make_retrieve_tool(
    store: OriginalStore | str | None = None,
    *,
    max_tokens: int | None = RETRIEVE_MAX_TOKENS,
    model: str = "gpt-4o",
) -> StructuredTool:
    """A ``headroom_retrieve`` tool reading ``store``: a store, or its URL (``memory://``,
    ``sqlite:///``, ``redis://``, ``postgresql://``), opened once here.

    ``None`` reads the core's default store at each call (``set_default_store`` applies
    to tools made before it), which is where ``compress`` keeps its originals. Answers
    are capped at ``max_tokens`` tokens of ``model`` (None: no cap) and paged.
    """
    target = None if store is None else resolve_store(store)

    def _retrieve(
        ref: str, query: str | None = None, offset: int | None = None, limit: int | None = None
    ) -> str:
        return retrieve(
            ref,
            query,
            store=target,
            offset=offset or 0,
            limit=limit,
            max_tokens=max_tokens,
            model=model,
        )

    return StructuredTool.from_function(
        func=_retrieve,
        name=RETRIEVE_TOOL_NAME,
        description=_DEFINITION["description"],
        args_schema=RetrieveArgs,
        handle_validation_error=_invalid_arguments,
    )


#: The tool bound to the core's default store of originals.
headroom_retrieve: StructuredTool = make_retrieve_tool()

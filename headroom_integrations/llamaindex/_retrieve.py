"""``headroom_retrieve`` as a LlamaIndex ``FunctionTool``.

Hand it to an agent next to your tools so the model can read back what compression cut::

    llm = HeadroomLLM(llm=OpenAI(model="gpt-4o"), store="sqlite:///originals.db")
    agent = FunctionAgent(tools=[*tools, retrieve_tool(llm.store)], llm=llm)

Name, description and argument descriptions come from the core's tool definition
(:func:`headroom_core.ccr.retrieve_tool_definition`); the answer is the core's
:func:`headroom_core.ccr.retrieve` text, never more than ``max_tokens`` tokens (a longer
original comes in pages: ``offset`` / ``limit``, the rest behind the same ref). It never
raises: an unknown or evicted ref or an unreadable store comes back as a message.
"""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.bridge.pydantic import BaseModel, Field
from llama_index.core.tools import FunctionTool

from headroom_core.ccr import (
    RETRIEVE_MAX_TOKENS,
    RETRIEVE_TOOL_NAME,
    OriginalStore,
    resolve_store,
    retrieve,
    retrieve_tool_definition,
)

__all__ = ["RetrieveArgs", "retrieve_tool"]

_DEFINITION: dict[str, Any] = retrieve_tool_definition("openai")["function"]
_PROPERTIES: dict[str, Any] = _DEFINITION["parameters"]["properties"]


class RetrieveArgs(BaseModel):
    """Arguments of ``headroom_retrieve`` (descriptions from the core's definition)."""

    ref: str = Field(description=_PROPERTIES["ref"]["description"])
    query: str | None = Field(default=None, description=_PROPERTIES["query"]["description"])
    offset: int | None = Field(default=None, description=_PROPERTIES["offset"]["description"])
    limit: int | None = Field(default=None, description=_PROPERTIES["limit"]["description"])


def retrieve_tool(
    store: OriginalStore | str | None = None,
    *,
    max_tokens: int | None = RETRIEVE_MAX_TOKENS,
    model: str = "gpt-4o",
) -> FunctionTool:
    """A ``headroom_retrieve`` ``FunctionTool`` reading ``store`` (a store, or its URL,
    opened once here; None: the core's default store at each call). Answers are capped
    at ``max_tokens`` tokens of ``model`` (None: no cap) and paged."""
    target = None if store is None else resolve_store(store)

    def headroom_retrieve(
        ref: str, query: str | None = None, offset: int | None = None, limit: int | None = None
    ) -> str:
        return retrieve(
            ref,
            query,
            store=target,
            offset=0 if offset is None else offset,
            limit=limit,
            max_tokens=max_tokens,
            model=model,
        )

    async def aheadroom_retrieve(
        ref: str, query: str | None = None, offset: int | None = None, limit: int | None = None
    ) -> str:
        # a store read (SQLite, a server) stays off the event loop
        return await asyncio.to_thread(headroom_retrieve, ref, query, offset, limit)

    return FunctionTool.from_defaults(
        fn=headroom_retrieve,
        async_fn=aheadroom_retrieve,
        name=RETRIEVE_TOOL_NAME,
        description=_DEFINITION["description"],
        fn_schema=RetrieveArgs,
    )

"""What the LangChain adapters share about counting and graphs: the tokens of the tool
definitions a model is bound with, an exact ``token_counter`` for LangChain's own memory
helpers, and LangGraph's custom stream."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import convert_to_messages
from langchain_core.utils.function_calling import convert_to_openai_tool

from headroom_core.boundary import fail_open
from headroom_core.tokens import get_tokenizer

from .._compress import count_tools
from ._convert import to_neutral

__all__ = ["count_tool_tokens", "token_counter", "tool_specs", "write_to_graph_stream"]

logger = logging.getLogger("headroom_integrations")


def tool_specs(tools: Sequence[Any] | None) -> list[dict[str, Any]]:
    """The tools as the OpenAI-format definitions a provider receives (``bind_tools``
    input: tools, functions, pydantic classes, dicts). A provider-native dict that is not
    a function definition is kept as it is; what cannot be converted is skipped (logged)."""
    out: list[dict[str, Any]] = []
    for tool in tools or ():
        if isinstance(tool, Mapping) and "function" not in tool and "name" not in tool:
            out.append(dict(tool))  # a provider-native tool ({"type": "web_search"}, ...)
            continue
        with fail_open(f"tool definition {tool!r:.60}", log=logger, action="not counted"):
            out.append(convert_to_openai_tool(tool))
    return out


def count_tool_tokens(tools: Sequence[Any] | None, model: str) -> int:
    """Tokens the definitions of ``tools`` add to every request for ``model``."""
    return count_tools(tool_specs(tools), model) if tools else 0


def write_to_graph_stream(name: str, data: Mapping[str, Any]) -> None:
    """Write ``{name: data}`` to the LangGraph custom stream when running inside a graph
    (``stream_mode="custom"``); outside one, or without langgraph, nothing happens."""
    try:
        from langgraph.config import get_stream_writer
    except ImportError:
        return
    try:
        writer = get_stream_writer()
    except (RuntimeError, KeyError):  # not inside a graph node
        return
    writer({name: dict(data)})


def token_counter(model: str = "gpt-4o") -> Callable[[Iterable[Any]], int]:
    """A ``token_counter`` for LangChain's ``trim_messages``, ``SummarizationMiddleware`` and
    ``ContextEditingMiddleware``: exact tokens of the messages for ``model`` with the chat
    framing, by the core's offline tokenizer (LangChain's own default approximates, and its
    GPT-2 fallback downloads a tokenizer)."""
    tokenizer = get_tokenizer(model)

    def count(messages: Iterable[Any]) -> int:
        return tokenizer.count_messages(to_neutral(convert_to_messages(list(messages))))

    return count

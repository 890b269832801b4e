"""Headroom for LlamaIndex: fit retrieved context and LLM calls into their budget.

- :class:`HeadroomNodePostprocessor`: a node postprocessor that scores, dedupes, compresses
  and fits retrieved nodes into a token budget
  (``index.as_query_engine(node_postprocessors=[HeadroomNodePostprocessor(...)])``).
- ``HeadroomLLM``: an LLM that compresses its input, then calls yours.
- ``HeadroomMemory``: a chat memory that stores tool results compressed and counts exactly.
- ``retrieve_tool()``: the ``headroom_retrieve`` ``FunctionTool`` that reads back what a cut
  left out.
- ``HeadroomEventHandler``: metrics from LlamaIndex's instrumentation events.
- ``to_neutral`` / ``from_neutral``: LlamaIndex chat messages <-> the core's neutral
  (OpenAI chat) dicts.

Needs LlamaIndex: ``pip install "headroom-context[llamaindex]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_HINT = (
    'headroom_integrations.llamaindex needs LlamaIndex: pip install "headroom-context[llamaindex]"'
)

try:
    from .postprocessor import HeadroomNodePostprocessor
except ModuleNotFoundError as exc:  # tested in a subprocess without llama_index
    if (exc.name or "").partition(".")[0] == "llama_index":
        raise ImportError(_HINT) from exc
    raise

if TYPE_CHECKING:
    from ._convert import from_neutral, to_neutral
    from ._retrieve import retrieve_tool
    from .instrumentation import HeadroomEventHandler
    from .llm import HeadroomLLM
    from .memory import HeadroomMemory

# Public name -> submodule, imported on first use, so one adapter that is missing or needs
# an optional package never breaks the others.
_LAZY: dict[str, str] = {
    "HeadroomLLM": "llm",
    "HeadroomMemory": "memory",
    "retrieve_tool": "_retrieve",
    "HeadroomEventHandler": "instrumentation",
    "to_neutral": "_convert",
    "from_neutral": "_convert",
}


__getattr__ = lazy_exports(__name__, _LAZY, _HINT.split(": ", 1)[1])


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "HeadroomEventHandler",
    "HeadroomLLM",
    "HeadroomMemory",
    "HeadroomNodePostprocessor",
    "from_neutral",
    "retrieve_tool",
    "to_neutral",
]

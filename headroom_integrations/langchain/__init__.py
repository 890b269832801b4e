"""Headroom for LangChain: compress what chains and agents send to chat models.

- :class:`HeadroomRunnable`: ``prompt | HeadroomRunnable() | model``.
- ``HeadroomChatModel``: a chat model that compresses its input, then calls yours.
- ``HeadroomCallbackHandler`` / ``AsyncHeadroomCallbackHandler``: metrics per model call.
- ``HeadroomMiddleware``: agent middleware (``langchain.agents``).
- :data:`headroom_retrieve` / :func:`make_retrieve_tool`: the tool that reads back what
  compression cut.
- :func:`to_neutral` / :func:`from_neutral`: LangChain messages <-> the core's neutral
  (OpenAI chat) dicts, without loss.
- :func:`token_counter`: exact offline counting for ``trim_messages`` and LangChain's
  summarization and context-editing middleware.

Needs LangChain: ``pip install "headroom-context[langchain]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_HINT = 'headroom_integrations.langchain needs LangChain: pip install "headroom-context[langchain]"'

try:
    from ._convert import from_neutral, to_neutral
    from ._tools import token_counter
    from .retrieve_tool import headroom_retrieve, make_retrieve_tool
    from .runnable import EVENT_NAME, HeadroomRunnable
except ModuleNotFoundError as exc:  # tested in a subprocess without langchain_core
    if (exc.name or "").partition(".")[0] == "langchain_core":
        raise ImportError(_HINT) from exc
    raise

if TYPE_CHECKING:
    from .callback import AsyncHeadroomCallbackHandler, HeadroomCallbackHandler
    from .chat_model import HeadroomChatModel
    from .middleware import HeadroomMiddleware

# Public name -> submodule, imported on first use, so one adapter that is missing or needs
# an optional package (the middleware needs `langchain`) never breaks the others.
_LAZY: dict[str, str] = {
    "HeadroomChatModel": "chat_model",
    "HeadroomCallbackHandler": "callback",
    "AsyncHeadroomCallbackHandler": "callback",
    "HeadroomMiddleware": "middleware",
}


__getattr__ = lazy_exports(__name__, _LAZY, _HINT.split(": ", 1)[1])


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "EVENT_NAME",
    "AsyncHeadroomCallbackHandler",
    "HeadroomCallbackHandler",
    "HeadroomChatModel",
    "HeadroomMiddleware",
    "HeadroomRunnable",
    "from_neutral",
    "headroom_retrieve",
    "make_retrieve_tool",
    "to_neutral",
    "token_counter",
]

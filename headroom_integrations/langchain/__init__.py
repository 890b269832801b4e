"""Headroom for LangChain: compress what chains and agents send to chat models.

- :class:`HeadroomRunnable`: ``prompt | HeadroomRunnable() | model``.
- ``HeadroomChatModel``: a chat model that compresses its input, then calls yours.
- ``HeadroomCallbackHandler`` / ``AsyncHeadroomCallbackHandler``: metrics per model call.
- ``HeadroomMiddleware``: agent middleware (``langchain.agents``).
- :data:`headroom_retrieve` / :func:`make_retrieve_tool`: the tool that reads back what
  compression cut.
- :func:`to_neutral` / :func:`from_neutral`: LangChain messages <-> the core's neutral
  (OpenAI chat) dicts, without loss.

Needs LangChain: ``pip install "headroom-context[langchain]"``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_HINT = 'headroom_integrations.langchain needs LangChain: pip install "headroom-context[langchain]"'

try:
    from ._convert import from_neutral, to_neutral
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


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    qualified = f"{__name__}.{module_name}"
    try:
        module = import_module(qualified)
    except ModuleNotFoundError as exc:
        if exc.name == qualified:
            raise AttributeError(f"{name} is not available: {qualified} is missing") from exc
        raise ImportError(f"{name} needs {exc.name!r}: {_HINT.split(': ', 1)[1]}") from exc
    value = getattr(module, name)
    globals()[name] = value
    return value


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
]

"""Adapters that put headroom_core inside LangChain, LlamaIndex and provider SDK clients.

Each adapter lives in its own subpackage and imports exactly one framework, installed as an
extra (``pip install "headroom-context[langchain]"``). ``HeadroomClient`` wraps an OpenAI or
Anthropic SDK client (extras ``openai`` / ``anthropic``); it imports no SDK itself.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__, {"HeadroomClient": "client"}, 'pip install "headroom-context[openai]"'
)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = ["HeadroomClient"]

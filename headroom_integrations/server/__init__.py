"""The Headroom server: an OpenAI- and Anthropic-compatible proxy with ``/v1/compress``.

``pip install "headroom-context[server]"``, then ``headroom serve`` (alias ``headroom
proxy``), or ``create_app(ServerSettings(...))`` for any ASGI server.
"""

from __future__ import annotations

try:
    import httpx  # noqa: F401
    import prometheus_client  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        f"the Headroom server needs the server extra ({exc.name} is missing): "
        'pip install "headroom-context[server]"'
    ) from exc

from .app import TOKEN_HEADER, create_app
from .settings import ServerSettings

__all__ = ["TOKEN_HEADER", "ServerSettings", "create_app"]

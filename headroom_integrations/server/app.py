"""The ASGI app: ``create_app(settings)``; routes, the token check, startup and shutdown.

Handlers read the request and hand it on; the work is in :mod:`._proxy` (provider routes)
and :mod:`._compress` (``/v1/compress``, ``/v1/retrieve``).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

import anyio.to_thread
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from headroom_core.errors import ConfigError
from headroom_core.metrics import store_stats
from headroom_core.toin import get_toin

from ._compress import BadRequest, read_compress, run_compress, run_retrieve
from ._proxy import handle, namespace_of, passthrough
from ._state import State
from ._wire import ANTHROPIC, OPENAI
from .settings import ServerSettings

#: Where a caller sends the server token on provider routes (the provider's key rides in
#: Authorization there); our own endpoints take ``Authorization: Bearer`` too.
TOKEN_HEADER = "x-headroom-token"
_OWN = ("/v1/compress", "/v1/retrieve", "/health", "/metrics", "/stats")


class TokenCheck:
    """Pure ASGI middleware: every request carries the token, or gets a 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        own = str(scope.get("path", "")).startswith(_OWN)
        where = f"'Authorization: Bearer <token>' or '{TOKEN_HEADER}'" if own else TOKEN_HEADER
        body = {
            "error": {
                "type": "authentication_error",
                "message": f"headroom server: a valid token is required in {where}",
            }
        }
        await JSONResponse(body, status_code=401)(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        given = headers.get(TOKEN_HEADER.encode())
        if given is None and str(scope.get("path", "")).startswith(_OWN):
            auth = headers.get(b"authorization", b"")
            if auth[:7].lower() == b"bearer ":
                given = auth[7:].strip()
        return given is not None and hmac.compare_digest(given, self.token)


def create_app(settings: ServerSettings | None = None) -> Starlette:
    """The server app. Upstream calls go through one pooled ``httpx.AsyncClient``; the stores
    are opened at startup and closed at shutdown."""
    settings = settings or ServerSettings()
    settings.check_bind()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = State.open(settings)
        app.state.headroom = state
        try:
            yield
        finally:
            await state.aclose()

    routes = [
        Route("/v1/chat/completions", _provider(OPENAI), methods=["POST"]),
        Route("/v1/messages", _provider(ANTHROPIC), methods=["POST"]),
        Route("/v1/compress", compress_route, methods=["POST"]),
        Route("/v1/retrieve", retrieve_post, methods=["POST"]),
        Route("/v1/retrieve/{ref}", retrieve_get, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/v1/{rest:path}", passthrough, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    if settings.token is not None:
        app.add_middleware(TokenCheck, token=settings.token.get_secret_value())
    return app


def app_from_env() -> Starlette:
    """The app from ``HEADROOM_*`` variables: what each ``--workers`` process runs."""
    return create_app(ServerSettings.from_env(os.environ))


def _provider(wire: Any) -> Any:
    async def route(request: Request) -> Response:
        return await handle(request, wire)

    return route


def _state(request: Request) -> State:
    state: State = request.app.state.headroom
    return state


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": "invalid_request", "message": message}}, 400)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body: not valid JSON ({exc})") from None


async def compress_route(request: Request) -> Response:
    try:
        req = read_compress(await _json_body(request))
    except BadRequest as exc:
        return _bad(str(exc))
    state = _state(request)
    try:
        store = state.originals_for(namespace_of(request))
    except ConfigError as exc:
        return _bad(str(exc))
    payload = await anyio.to_thread.run_sync(run_compress, state, req, store)
    return Response(orjson.dumps(payload), media_type="application/json")


async def retrieve_post(request: Request) -> Response:
    try:
        body = await _json_body(request)
    except BadRequest as exc:
        return _bad(str(exc))
    if not isinstance(body, dict):
        return _bad('body: expected {"ref": "...", "query": "..."}')
    ref = body.get("ref", body.get("hash"))
    return await _retrieve(request, ref, body.get("query"))


async def retrieve_get(request: Request) -> Response:
    ref, query = request.path_params["ref"], request.query_params.get("query")
    return await _retrieve(request, ref, query)


async def _retrieve(request: Request, ref: Any, query: Any) -> Response:
    state = _state(request)
    try:
        store = state.originals_for(namespace_of(request))
    except ConfigError as exc:
        return _bad(str(exc))
    status, payload = await anyio.to_thread.run_sync(run_retrieve, state, ref, query, store)
    return JSONResponse(payload, status_code=status)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def metrics_route(request: Request) -> Response:
    data, content_type = _state(request).metrics.exposition()
    return Response(data, media_type=content_type)


async def stats(request: Request) -> Response:
    state = _state(request)

    def summary() -> dict[str, Any]:
        state.sink.flush()
        s = state.sink.require_store().get_summary()
        return {
            "requests": s.requests,
            "tokens_before": s.total_tokens_before,
            "tokens_after": s.total_tokens_after,
            "tokens_saved": s.total_tokens_saved,
            "savings_percent": round(s.savings_percent, 3),
            "cost_before": s.total_cost_before,
            "cost_after": s.total_cost_after,
            "cost_saved": s.cost_saved,
            "by_mode": s.by_mode,
            "dropped_records": state.sink.dropped + s.dropped_records,
            "stores": _store_health(state),
        }

    return JSONResponse(await anyio.to_thread.run_sync(summary))


def _store_health(state: Any) -> dict[str, Any]:
    """Health and counts of each shared store this process uses (None: a local store)."""
    health = {
        "metrics": store_stats(state.sink.require_store()),
        "originals": store_stats(state.originals),
        "toin": store_stats(get_toin()),
    }
    return {name: None if h is None else _jsonable(asdict(h)) for name, h in health.items()}


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


__all__ = ["TOKEN_HEADER", "TokenCheck", "app_from_env", "create_app"]

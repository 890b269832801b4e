"""The provider routes: plan (the client's code), forward through one pooled httpx client,
relay the answer (streams chunk by chunk), answer the model's ``headroom_retrieve`` calls,
record once.

Failure policy: our failures never block a request (the planner fails open and records
why); the provider's errors come back with its status and body; an upstream that cannot
be reached is a 502 in the provider's error format. The caller's key headers are forwarded
upstream and never logged or recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import httpx
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from headroom_core.ccr import OriginalStore, use_store
from headroom_core.errors import ConfigError
from headroom_core.tokens import get_tokenizer

from .._client_core import CLIENT_MODES, CallOptions, Plan, Usage, tools_text
from .._usage import add
from ._sse import EventReader
from ._wire import Wire, answer, refs_in

if TYPE_CHECKING:
    from ._state import State

logger = logging.getLogger("headroom_integrations.server")

#: Request headers never forwarded: hop-by-hop, recomputed, or ours.
_REQUEST_DROP = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "accept-encoding",
    }
)
#: Response headers never relayed (the server sets its own framing, date and name).
_RESPONSE_DROP = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"}
)


class UpstreamError(Exception):
    """The upstream answered with an error status (the record says which, never the body:
    a provider may echo part of a key in its message)."""


@dataclass(slots=True)
class Prepared:
    """One request ready to forward. ``body`` None: not JSON we read, ``content`` as given."""

    plan: Plan | None
    body: dict[str, Any] | None
    content: bytes
    stream: bool = False
    retrieval: bool = False


def upstream_headers(request: Request) -> list[tuple[str, str]]:
    headers = [
        (k, v)
        for k, v in request.headers.items()
        if k not in _REQUEST_DROP and not k.startswith("x-headroom-")
    ]
    headers.append(("accept-encoding", "identity"))
    return headers


#: The request header naming the namespace (a tenant, a user, a conversation) whose
#: originals a request may make and read; without it, the whole store.
NAMESPACE_HEADER = "x-headroom-namespace"


def namespace_of(request: Request) -> str | None:
    return request.headers.get(NAMESPACE_HEADER)


def downstream_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower() not in _RESPONSE_DROP}


def prepare(
    state: State, wire: Wire, raw: bytes, mode: str, store: OriginalStore | None = None
) -> Prepared:
    """Plan one request (CPU work: run in a worker thread); the originals of its cuts go to
    ``store`` (default: the server's)."""
    store = state.originals if store is None else store
    with use_store(store):
        return _prepare(state, wire, raw, mode, store)


def _prepare(state: State, wire: Wire, raw: bytes, mode: str, store: OriginalStore) -> Prepared:
    try:
        given = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Prepared(None, None, raw)
    if not isinstance(given, dict):
        return Prepared(None, None, raw)
    body = given
    if state.settings.retrieve_loop:  # our calls the caller left unanswered, answered
        body = wire.answer_pending(body, lambda call: answer(call, store))
    answered = body is not given
    plan, body = wire.plan(state.engines[wire.name], body, CallOptions(mode=mode), wire.path)
    retrieval = False
    if plan is not None and plan.messages is not None and state.settings.retrieve_loop:
        retrieval = _made_lossy_cuts(store, given, body)
    if retrieval or answered:
        with_tool = wire.with_tool(body)
        if retrieval and plan is not None and with_tool is not body:
            added = with_tool["tools"][-1:]
            plan.tokens_after += get_tokenizer(plan.model).count_text(tools_text(added))
        body = with_tool
    content = raw if body is given else orjson.dumps(body)
    return Prepared(plan, body, content, given.get("stream") is True, retrieval)


def _made_lossy_cuts(store: OriginalStore, given: dict[str, Any], sent: dict[str, Any]) -> bool:
    """Whether the sent request names refs (of stored originals) the caller's did not."""
    before = set(refs_in([given.get("system"), given.get("messages")]))
    after = refs_in([sent.get("system"), sent.get("messages")])
    return any(ref not in before and ref in store for ref in after)


async def handle(request: Request, wire: Wire) -> Response:
    """``POST /v1/chat/completions`` or ``POST /v1/messages``."""
    state: State = request.app.state.headroom
    started = time.perf_counter()
    mode = request.headers.get("x-headroom-mode") or state.settings.mode
    if mode not in CLIENT_MODES:
        message = f"x-headroom-mode: expected one of {', '.join(CLIENT_MODES)}, got {mode!r}"
        return JSONResponse(wire.error_body(400, message), status_code=400)
    try:
        store = state.originals_for(namespace_of(request))
    except ConfigError as exc:
        return JSONResponse(wire.error_body(400, str(exc)), status_code=400)
    raw = await request.body()
    prepared = await anyio.to_thread.run_sync(prepare, state, wire, raw, mode, store)
    overhead = time.perf_counter() - started
    exchange = _Exchange(state, wire, prepared, mode, started, overhead, request, store)
    if prepared.stream:
        return await exchange.stream()
    return await exchange.plain()


class _Exchange:
    """One request in flight, from the first upstream call to the record."""

    def __init__(
        self,
        state: State,
        wire: Wire,
        prepared: Prepared,
        mode: str,
        started: float,
        overhead: float,
        request: Request,
        store: OriginalStore,
    ) -> None:
        self.state, self.wire, self.prepared, self.mode = state, wire, prepared, mode
        self.store = store
        self.started, self.overhead = started, overhead
        base = (
            state.settings.openai_base_url
            if wire.name == "openai"
            else (state.settings.anthropic_base_url)
        )
        query = request.url.query
        self.url = base.rstrip("/") + wire.upstream + (f"?{query}" if query else "")
        self.headers = upstream_headers(request)
        self.usage = Usage()
        self.retrievals = 0

    def _request(self, content: bytes) -> httpx.Request:
        return self.state.http.build_request(
            "POST", self.url, content=content, headers=self.headers
        )

    def _unreachable(self, exc: httpx.HTTPError) -> Response:
        message = (
            f"headroom: the upstream {self.wire.name} API at {self.url.split('?')[0]} could not "
            f"be reached ({type(exc).__name__})"
        )
        logger.warning("%s", message)
        self._finish(502, exc)
        return JSONResponse(self.wire.error_body(502, message), status_code=502)

    async def _answers(self, calls: list[Any]) -> list[tuple[Any, str]]:
        store = self.store

        def run() -> list[tuple[Any, str]]:
            return [(c, answer(c, store)) for c in calls]

        self.retrievals += len(calls)
        return await anyio.to_thread.run_sync(run)

    # -- without streaming -------------------------------------------------------------------

    async def plain(self) -> Response:
        http, prepared = self.state.http, self.prepared
        try:
            response = await http.send(self._request(prepared.content))
        except httpx.HTTPError as exc:
            return self._unreachable(exc)
        reply = _json(response) if response.status_code == 200 else None
        if reply is not None:
            self.usage = add(self.usage, self.wire.usage(reply))
        body = prepared.body
        rounds = 0
        while (
            prepared.retrieval
            and reply is not None
            and body is not None
            and rounds < self.state.settings.max_retrieve_rounds
        ):
            calls = self.wire.retrieve_calls(reply)
            if calls is None:
                break
            answers = await self._answers(calls)
            body = self.wire.append(body, self.wire.reply_message(reply), answers)
            try:
                again = await http.send(self._request(orjson.dumps(body)))
            except httpx.HTTPError:
                break  # fail open: the caller gets the reply that called our tool
            if again.status_code != 200 or (nxt := _json(again)) is None:
                break
            response, reply, rounds = again, nxt, rounds + 1
            self.usage = add(self.usage, self.wire.usage(reply))
        self._finish(response.status_code, _error(response))
        return Response(
            response.content, status_code=response.status_code, headers=downstream_headers(response)
        )

    # -- streaming -----------------------------------------------------------------------------

    async def stream(self) -> Response:
        try:
            response = await self.state.http.send(self._request(self.prepared.content), stream=True)
        except httpx.HTTPError as exc:
            return self._unreachable(exc)
        if response.status_code != 200:
            content = await response.aread()
            await response.aclose()
            self._finish(response.status_code, _error(response))
            return Response(
                content, status_code=response.status_code, headers=downstream_headers(response)
            )
        return StreamingResponse(
            self._relay(response), status_code=200, headers=downstream_headers(response)
        )

    async def _relay(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """Chunks as they arrive. While our headroom_retrieve may be what the model is
        calling, chunks are held until the reply shows otherwise; a reply that calls only
        our tool is answered and the upstream called again, its stream relayed instead."""
        body, current = self.prepared.body, response
        error: BaseException | None = None
        rounds = 0
        try:
            while True:
                reader = EventReader()
                watch = (
                    self.wire.stream_reader()
                    if self.prepared.retrieval and rounds < self.state.settings.max_retrieve_rounds
                    else None
                )
                held: list[bytes] | None = [] if watch is not None else None
                usage = Usage()
                async for chunk in current.aiter_raw():
                    release = False
                    for event in reader.feed(chunk):
                        usage = self.wire.fold(usage, event)
                        if watch is not None and held is not None and watch.feed(event):
                            release = True
                    if held is None:
                        yield chunk
                        continue
                    held.append(chunk)
                    if release:
                        yield b"".join(held)
                        held = None
                await current.aclose()
                self.usage = add(self.usage, usage)
                if held is None or watch is None or body is None:
                    break
                calls = watch.calls()
                if calls is None:
                    yield b"".join(held)
                    break
                answers = await self._answers(calls)
                body = self.wire.append(body, watch.message(), answers)
                nxt = await self._again(body)
                if nxt is None:  # fail open: the held reply (our call) goes to the caller
                    yield b"".join(held)
                    break
                current, rounds = nxt, rounds + 1
        except BaseException as exc:  # recorded as the stream's error, then re-raised as is
            error = exc
            raise
        finally:
            await current.aclose()
            self._finish(200, error, stream=True)

    async def _again(self, body: dict[str, Any]) -> httpx.Response | None:
        try:
            nxt = await self.state.http.send(self._request(orjson.dumps(body)), stream=True)
        except httpx.HTTPError:
            return None
        if nxt.status_code != 200:
            await nxt.aread()
            await nxt.aclose()
            return None
        return nxt

    # -- the record ------------------------------------------------------------------------------

    def _finish(self, status: int, error: BaseException | None, *, stream: bool = False) -> None:
        plan, metrics, route = self.prepared.plan, self.state.metrics, self.wire.name
        metrics.requests.labels(route, self.mode, str(status)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - self.started)
        metrics.overhead.labels(route).observe(self.overhead)
        if status >= 400:
            metrics.upstream_errors.labels(route, str(status)).inc()
        if self.retrievals:
            metrics.retrievals.labels(route).inc(self.retrievals)
        if plan is None:
            return
        if plan.mode != "off":
            metrics.tokens_before.labels(route).inc(plan.tokens_before)
            metrics.tokens_after.labels(route).inc(plan.tokens_after)
        if plan.extra.get("failures"):
            metrics.failures.labels(route).inc()
        if self.retrievals:
            plan.extra["retrievals"] = self.retrievals
        plan.extra["overhead_ms"] = round(1000 * self.overhead, 3)
        self.state.engines[route].finish(plan, self.usage, error, stream=stream)


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        value = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _error(response: httpx.Response) -> UpstreamError | None:
    if response.status_code < 400:
        return None
    kind = None
    try:
        value = _json(response)
    except httpx.ResponseNotRead:
        value = None
    inner = value.get("error") if value else None
    if isinstance(inner, dict) and isinstance(inner.get("type"), str):
        kind = inner["type"]
    return UpstreamError(f"HTTP {response.status_code}" + (f" {kind}" if kind else ""))


async def passthrough(request: Request) -> Response:
    """Any other ``/v1/...`` call (models, embeddings, count_tokens, ...): forwarded as it
    is to the provider it belongs to, not compressed, not recorded."""
    state: State = request.app.state.headroom
    path = request.url.path
    if path.startswith("/v1/messages") or "anthropic-version" in request.headers:
        url = state.settings.anthropic_base_url.rstrip("/") + path
    else:
        url = state.settings.openai_base_url.rstrip("/") + path[len("/v1") :]
    if request.url.query:
        url += f"?{request.url.query}"
    upstream = state.http.build_request(
        request.method, url, content=await request.body(), headers=upstream_headers(request)
    )
    try:
        response = await state.http.send(upstream, stream=True)
    except httpx.HTTPError as exc:
        where = url.split("?")[0]
        message = f"headroom: the upstream at {where} could not be reached ({type(exc).__name__})"
        state.metrics.requests.labels("passthrough", "off", "502").inc()
        return JSONResponse({"error": {"message": message, "type": "headroom_error"}}, 502)
    state.metrics.requests.labels("passthrough", "off", str(response.status_code)).inc()

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        finally:
            await response.aclose()

    return StreamingResponse(
        relay(), status_code=response.status_code, headers=downstream_headers(response)
    )


__all__ = ["Prepared", "UpstreamError", "handle", "passthrough", "prepare"]

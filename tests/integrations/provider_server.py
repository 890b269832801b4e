"""A local HTTP server that speaks the OpenAI Chat Completions and Anthropic Messages APIs.

Tests point the real SDK clients at it; nothing leaves 127.0.0.1::

    with ProviderServer() as server:
        oai = openai.OpenAI(api_key="test", base_url=server.openai_base_url, max_retries=0)
        ant = anthropic.Anthropic(api_key="test", base_url=server.base_url, max_retries=0)

Routes (anything else is a 404 in the provider's error format):

- ``POST /v1/chat/completions``: a ``chat.completion``, or SSE ``chat.completion.chunk``
  events ending in ``data: [DONE]`` when ``"stream": true`` (a usage chunk only with
  ``stream_options.include_usage``).
- ``POST /v1/messages``: a ``message``, or the Messages API event sequence when streaming.
- ``POST /v1/messages/count_tokens``: ``{"input_tokens": N}``.

Replies are deterministic functions of the request body, so a test can tell what the
server saw from what the client got back:

- text: :func:`reply_text`, ``"echo: <n> messages, last user: <first 40 chars>"``;
- input tokens: :func:`count_input_tokens`, the JSON length of system, messages and
  tools over 4; cached tokens come from ``ProviderServer(cached_tokens=...)`` (0);
- output tokens: :func:`count_output_tokens`, ``max(1, len(text) // 4)``.

``queue_reply`` and ``queue_error`` script the next responses (first in, first out; each
item is used by the next request to a known route, whatever the route). ``queue_reply(...,
tool_calls=[(id, name, arguments)])`` answers with tool calls (OpenAI ``tool_calls`` with
``finish_reason: "tool_calls"``, Anthropic ``tool_use`` blocks with ``stop_reason:
"tool_use"``; streamed as the APIs stream them), after the text when there is one.

Retries: the SDKs retry 408, 409, 429 and 5xx (twice by default, with a backoff of
about a second). Build clients with ``max_retries=0`` for one request per call; to
test retrying, queue errors with ``headers={"retry-after-ms": "1"}`` (the retry is
immediate) or ``headers={"x-should-retry": "false"}`` (never retried).

Streams use chunked transfer encoding on a keep-alive HTTP/1.1 connection; non-stream
responses carry Content-Length. Every response has ``x-request-id`` and ``request-id``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

CREATED = 1_700_000_000  # a fixed "created" timestamp keeps replies byte-identical

OPENAI = "openai"
ANTHROPIC = "anthropic"


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server read it."""

    method: str
    path: str  # with the query string, if any
    headers: dict[str, str]  # names lowercased
    body: dict[str, Any]  # the parsed JSON body ({} when there was none)


@dataclass(frozen=True, slots=True)
class _QueuedError:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str]
    message: str | None


ToolCall = tuple[str, str, dict[str, Any]]  # (id, name, arguments)


@dataclass(frozen=True, slots=True)
class _QueuedReply:
    text: str | None
    input_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class _Reply:
    """What to answer: ``input_tokens`` is the whole prompt, cached part included."""

    text: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    seq: int  # the request's number, used in response ids
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class _Response:
    status: int = 200
    payload: dict[str, Any] | None = None
    frames: list[bytes] | None = None  # SSE frames, when streaming


# -- deterministic reply content ---------------------------------------------------------


def _text_of(content: Any) -> str:
    """Text of a message's content: a string, or the text parts/blocks of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def reply_text(body: dict[str, Any]) -> str:
    """``"echo: <n> messages, last user: <first 40 chars of the last user message>"``."""
    messages = body.get("messages") or []
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    last = _text_of(users[-1].get("content")) if users else ""
    return f"echo: {len(messages)} messages, last user: {last[:40]}"


def count_input_tokens(body: dict[str, Any]) -> int:
    """``sum(len(json.dumps(body[k], sort_keys=True)) for k in (system, messages, tools)) // 4``."""
    keys = ("system", "messages", "tools")
    return sum(len(json.dumps(body[k], sort_keys=True)) for k in keys if k in body) // 4


def count_output_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def split_text(text: str) -> list[str]:
    """The stream's content pieces: words with their trailing spaces, at least 3 when possible."""
    pieces = re.findall(r"\S+\s*|\s+", text)
    if len(pieces) < 3:
        pieces = list(text)
    return pieces or [""]


# -- OpenAI Chat Completions ------------------------------------------------------------

_OPENAI_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def _openai_error(status: int, message: str | None) -> dict[str, Any]:
    default = ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    kind, code = _OPENAI_ERRORS.get(status, default)
    text = message or f"{kind}: scripted {status} from ProviderServer"
    return {"error": {"message": text, "type": kind, "param": None, "code": code}}


def _openai_usage(reply: _Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _openai_chat(body: dict[str, Any], reply: _Reply) -> _Response:
    head = {
        "id": f"chatcmpl-test{reply.seq:06d}",
        "created": CREATED,
        "model": body.get("model", ""),
        "system_fingerprint": "fp_provider_server",
    }
    finish = "tool_calls" if reply.tool_calls else "stop"
    if not body.get("stream"):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text or (None if reply.tool_calls else ""),
            "refusal": None,
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for call_id, name, args in reply.tool_calls
            ]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        payload = {**head, "object": "chat.completion", "choices": [choice]}
        return _Response(payload={**payload, "usage": _openai_usage(reply)})

    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        data = {**head, "object": "chat.completion.chunk", "choices": [choice]}
        return _sse(None, {**data, "usage": None} if with_usage else data)

    frames = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    if reply.text or not reply.tool_calls:
        frames += [chunk({"content": piece}, None) for piece in split_text(reply.text)]
    for i, (call_id, name, args) in enumerate(reply.tool_calls):
        start = {"index": i, "id": call_id, "type": "function"}
        start["function"] = {"name": name, "arguments": ""}
        frames.append(chunk({"tool_calls": [start]}, None))
        arguments = json.dumps(args)
        for half in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            frames.append(
                chunk({"tool_calls": [{"index": i, "function": {"arguments": half}}]}, None)
            )
    frames.append(chunk({}, finish))
    if with_usage:
        usage = {**head, "object": "chat.completion.chunk", "choices": []}
        frames.append(_sse(None, {**usage, "usage": _openai_usage(reply)}))
    frames.append(b"data: [DONE]\n\n")
    return _Response(frames=frames)


# -- Anthropic Messages -----------------------------------------------------------------

_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _anthropic_error(status: int, message: str | None) -> dict[str, Any]:
    kind = _ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    text = message or f"{kind}: scripted {status} from ProviderServer"
    return {"type": "error", "error": {"type": kind, "message": text}}


def _anthropic_usage(reply: _Reply, output_tokens: int) -> dict[str, int]:
    # Anthropic's input_tokens leaves out the cache reads; the prompt is their sum.
    return {
        "input_tokens": reply.input_tokens - reply.cached_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": reply.cached_tokens,
        "cache_creation_input_tokens": 0,
    }


def _anthropic_messages(body: dict[str, Any], reply: _Reply) -> _Response:
    message = {
        "id": f"msg_test{reply.seq:06d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "stop_sequence": None,
    }
    stop = "tool_use" if reply.tool_calls else "end_turn"
    uses = [
        {"type": "tool_use", "id": call_id, "name": name, "input": args}
        for call_id, name, args in reply.tool_calls
    ]
    if not body.get("stream"):
        content = [{"type": "text", "text": reply.text}] if reply.text or not uses else []
        usage = _anthropic_usage(reply, reply.output_tokens)
        payload = {**message, "content": content + uses, "stop_reason": stop, "usage": usage}
        return _Response(payload=payload)

    start = {**message, "content": [], "stop_reason": None, "usage": _anthropic_usage(reply, 1)}
    frames = [_sse("message_start", {"type": "message_start", "message": start})]
    index = 0
    if reply.text or not uses:
        frames += [
            _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            _sse("ping", {"type": "ping"}),
        ]
        for piece in split_text(reply.text):
            delta = {"type": "text_delta", "text": piece}
            frames.append(
                _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
            )
        frames.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for use in uses:
        block = {**use, "input": {}}
        frames.append(
            _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        arguments = json.dumps(use["input"])
        for half in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            delta = {"type": "input_json_delta", "partial_json": half}
            frames.append(
                _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        frames.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    end = {"stop_reason": stop, "stop_sequence": None}
    frames += [
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": end,
                "usage": _anthropic_usage(reply, reply.output_tokens),
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return _Response(frames=frames)


def _anthropic_count_tokens(body: dict[str, Any], reply: _Reply) -> _Response:
    return _Response(payload={"input_tokens": reply.input_tokens})


# -- routing ------------------------------------------------------------------------------

_Route = Callable[[dict[str, Any], _Reply], _Response]

ROUTES: dict[tuple[str, str], tuple[str, _Route]] = {
    ("POST", "/v1/chat/completions"): (OPENAI, _openai_chat),
    ("POST", "/v1/messages"): (ANTHROPIC, _anthropic_messages),
    ("POST", "/v1/messages/count_tokens"): (ANTHROPIC, _anthropic_count_tokens),
}

_ERROR_FORMATS: dict[str, Callable[[int, str | None], dict[str, Any]]] = {
    OPENAI: _openai_error,
    ANTHROPIC: _anthropic_error,
}


def _sse(event: str | None, data: dict[str, Any]) -> bytes:
    line = f"data: {json.dumps(data)}\n\n"
    return (f"event: {event}\n{line}" if event else line).encode()


def _provider_of(path: str, headers: dict[str, str]) -> str:
    """The error format for an unknown route: Anthropic's SDK always sends anthropic-version."""
    return (
        ANTHROPIC if path.startswith("/v1/messages") or "anthropic-version" in headers else OPENAI
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # every SSE frame leaves at once
    timeout = 30  # an idle keep-alive connection ends its thread
    server: _HTTPServer

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        self._handle()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _handle(self) -> None:
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = urlsplit(self.path).path
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        seq = owner._record(Received(self.command, self.path, headers, body or {}))
        route = ROUTES.get((self.command, path))
        provider = route[0] if route else _provider_of(path, headers)
        error_format = _ERROR_FORMATS[provider]
        if route is None:
            message = f"Unknown request URL: {self.command} {path}"
            self._send_json(seq, 404, error_format(404, message))
            return
        if not isinstance(body, dict):
            self._send_json(seq, 400, error_format(400, "the request body is not a JSON object"))
            return
        item = owner._pop()
        if isinstance(item, _QueuedError):
            payload = (
                item.body if item.body is not None else error_format(item.status, item.message)
            )
            self._send_json(seq, item.status, payload, item.headers)
            return
        response = route[1](body, owner._reply(body, item, seq))
        if response.frames is None:
            self._send_json(seq, response.status, response.payload or {})
        else:
            self._send_stream(seq, response.frames, owner.chunk_delay)

    def _common_headers(self, seq: int) -> None:
        request_id = f"req_test{seq:06d}"
        self.send_header("x-request-id", request_id)
        self.send_header("request-id", request_id)

    def _send_json(
        self, seq: int, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self._common_headers(seq)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, seq: int, frames: list[bytes], delay: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self._common_headers(seq)
        self.end_headers()
        try:
            for i, frame in enumerate(frames):
                if delay and i:
                    time.sleep(delay)
                self.wfile.write(b"%X\r\n%s\r\n" % (len(frame), frame))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading early
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a load test opens many connections at once

    def __init__(self, owner: ProviderServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that stops reading a stream early (the SDKs close at [DONE]) resets the
        # connection: expected, not worth a traceback. Anything else is printed as usual.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class ProviderServer:
    """The server and its script; use it as a context manager (or ``start()``/``close()``).

    ``cached_tokens``: the cached part of every prompt (OpenAI ``cached_tokens``,
    Anthropic ``cache_read_input_tokens``), capped at the prompt's size.
    ``chunk_delay``: seconds between two SSE frames (none by default).
    ``keep_requests``: record every request (False for load tests: only counted).
    """

    def __init__(
        self, *, cached_tokens: int = 0, chunk_delay: float = 0.0, keep_requests: bool = True
    ) -> None:
        self.cached_tokens = cached_tokens
        self.chunk_delay = chunk_delay
        self.keep_requests = keep_requests
        self._lock = threading.Lock()
        self._requests: list[Received] = []
        self._queue: deque[_QueuedError | _QueuedReply] = deque()
        self._seq = 0
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ProviderServer:
        if self._http is None:
            self._http = _HTTPServer(self)
            self._thread = threading.Thread(
                target=self._http.serve_forever,
                kwargs={"poll_interval": 0.02},  # shutdown() waits up to one interval
                name="provider-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._http = self._thread = None

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the Anthropic SDK's base_url."""
        if self._http is None:
            raise RuntimeError("ProviderServer is not started: use `with ProviderServer() as s:`")
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        """``base_url + "/v1"``: the OpenAI SDK's base_url."""
        return f"{self.base_url}/v1"

    @property
    def requests(self) -> list[Received]:
        """A copy of every request received since start (or the last ``reset``), in order."""
        with self._lock:
            return list(self._requests)

    @property
    def last_body(self) -> dict[str, Any]:
        with self._lock:
            if not self._requests:
                raise LookupError("ProviderServer has received no request yet")
            return self._requests[-1].body

    @property
    def queued(self) -> int:
        """How many scripted responses are still waiting for a request."""
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forget the recorded requests and drop whatever is still queued."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    def queue_error(
        self,
        status: int,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        *,
        message: str | None = None,
    ) -> None:
        """Answer the next request with ``status``: ``body`` as given, or by default the
        provider's own error format carrying ``message`` (a generated one if None)."""
        with self._lock:
            self._queue.append(_QueuedError(status, body, dict(headers or {}), message))

    def queue_reply(
        self,
        text: str | None = None,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_tokens: int | None = None,
        tool_calls: list[ToolCall] | None = None,
    ) -> None:
        """Override the next reply's text and usage; None keeps the computed value.
        ``input_tokens`` is the whole prompt (OpenAI prompt_tokens, count_tokens' answer).
        ``tool_calls``: ``(id, name, arguments)`` the reply calls; its text is then ``text``
        or none."""
        calls = tuple(tool_calls or ())
        if calls and text is None:
            text = ""
        with self._lock:
            self._queue.append(
                _QueuedReply(text, input_tokens, output_tokens, cached_tokens, calls)
            )

    def _record(self, received: Received) -> int:
        with self._lock:
            if self.keep_requests:
                self._requests.append(received)
            self._seq += 1
            return self._seq

    def _pop(self) -> _QueuedError | _QueuedReply | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _reply(self, body: dict[str, Any], queued: _QueuedReply | None, seq: int) -> _Reply:
        q = queued or _QueuedReply(None, None, None, None)
        text = reply_text(body) if q.text is None else q.text
        prompt = count_input_tokens(body) if q.input_tokens is None else q.input_tokens
        output = count_output_tokens(text) if q.output_tokens is None else q.output_tokens
        cached = self.cached_tokens if q.cached_tokens is None else q.cached_tokens
        return _Reply(text, prompt, output, min(cached, prompt), seq, q.tool_calls)


@contextmanager
def provider_server(
    *, cached_tokens: int = 0, chunk_delay: float = 0.0
) -> Iterator[ProviderServer]:
    """A started server for a ``with`` block or a fixture (``with provider_server() as s: yield s``)."""
    with ProviderServer(cached_tokens=cached_tokens, chunk_delay=chunk_delay) as server:
        yield server

"""AnthropicProvider against a real ``anthropic.Anthropic`` client and a real HTTP server.

The server on 127.0.0.1 implements ``POST /v1/messages/count_tokens``: it records
each JSON body and answers ``{"input_tokens": N}`` with N computed from that body
(:func:`_server_count`), so a test can tell the server's number from a local one.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

anthropic = pytest.importorskip(
    "anthropic", reason="the anthropic SDK is needed: pip install -e '.[dev]' or '.[anthropic]'"
)

from headroom_core.providers import AnthropicProvider  # noqa: E402
from headroom_core.tokens import Tokenizer  # noqa: E402

MODEL = "claude-sonnet-4-5"
COUNT_PATH = "/v1/messages/count_tokens"

# An OpenAI-format history: a leading system message, an assistant tool call
# (content None, as OpenAI returns it) and its tool result, then more chat.
HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a terse weather assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_paris_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "C"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_paris_1", "content": '{"temp": 18, "sky": "clear"}'},
    {"role": "assistant", "content": "18 degrees and clear in Paris."},
    {"role": "user", "content": "And tomorrow?"},
]

# What the Messages API must receive for HISTORY.
EXPECTED_SYSTEM = "You are a terse weather assistant."
EXPECTED_MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": [
            {
                "type": "tool_use",
                "id": "call_paris_1",
                "name": "get_weather",
                "input": {"city": "Paris", "unit": "C"},
            }
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "call_paris_1",
                "content": '{"temp": 18, "sky": "clear"}',
            }
        ],
    },
    {"role": "assistant", "content": "18 degrees and clear in Paris."},
    {"role": "user", "content": "And tomorrow?"},
]


def _chars(value: Any) -> int:
    """Characters of every string leaf, roles included (independent of key order and spacing)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_chars(v) for v in value.values())
    if isinstance(value, list):
        return sum(_chars(v) for v in value)
    return 0


def _server_count(body: dict[str, Any]) -> int:
    return (_chars(body.get("system")) + _chars(body.get("messages"))) // 4 + 7


@dataclass
class FakeAnthropicAPI:
    port: int
    status: int = 200
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler_for(api_ref: list[FakeAnthropicAPI]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (stdlib name)
            api = api_ref[0]
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            api.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path != COUNT_PATH:
                self._reply(
                    404,
                    {"type": "error", "error": {"type": "not_found_error", "message": self.path}},
                )
            elif api.status != 200:
                self._reply(
                    api.status, {"type": "error", "error": {"type": "api_error", "message": "boom"}}
                )
            else:
                self._reply(200, {"input_tokens": _server_count(body)})

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    return Handler


@pytest.fixture
def api() -> Iterator[FakeAnthropicAPI]:
    ref: list[FakeAnthropicAPI] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(ref))
    server.daemon_threads = True
    ref.append(FakeAnthropicAPI(port=server.server_address[1]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ref[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def client(api: FakeAnthropicAPI) -> Iterator[Any]:
    c = anthropic.Anthropic(api_key="test", base_url=api.base_url, max_retries=0)
    try:
        yield c
    finally:
        c.close()


def test_count_comes_from_the_server(api: FakeAnthropicAPI, client: Any) -> None:
    count = AnthropicProvider(client=client).count_messages(HISTORY, model=MODEL)

    assert len(api.requests) == 1
    path, _, body = api.requests[0]
    assert path == COUNT_PATH
    expected = _server_count({"system": EXPECTED_SYSTEM, "messages": EXPECTED_MESSAGES})
    assert count == expected == _server_count(body)
    # the number is the server's, not the local approximation
    assert count != Tokenizer(MODEL).count_messages(HISTORY)


def test_server_receives_converted_body(api: FakeAnthropicAPI, client: Any) -> None:
    AnthropicProvider(client=client).count_messages(HISTORY, model="claude-haiku-4-5-20251001")

    ((_, _, body),) = api.requests
    assert body == {
        "model": "claude-haiku-4-5-20251001",
        "system": EXPECTED_SYSTEM,
        "messages": EXPECTED_MESSAGES,
    }
    # the caller's history is not mutated by the conversion
    assert HISTORY[2]["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris", "unit": "C"}'
    assert HISTORY[3] == {
        "role": "tool",
        "tool_call_id": "call_paris_1",
        "content": '{"temp": 18, "sky": "clear"}',
    }


def test_no_system_message_sends_no_system(api: FakeAnthropicAPI, client: Any) -> None:
    msgs = [{"role": "user", "content": "hello there, how are you?"}]
    count = AnthropicProvider(client=client).count_messages(msgs, model=MODEL)

    ((_, _, body),) = api.requests
    assert "system" not in body
    assert body["messages"] == [{"role": "user", "content": "hello there, how are you?"}]
    # string leaves: "user" + the text
    assert count == (len("user") + len("hello there, how are you?")) // 4 + 7 == 14


def test_server_error_propagates_as_sdk_exception(api: FakeAnthropicAPI, client: Any) -> None:
    api.status = 500
    with pytest.raises(anthropic.InternalServerError) as info:
        AnthropicProvider(client=client).count_messages(HISTORY, model=MODEL)

    assert info.value.status_code == 500
    assert len(api.requests) == 1  # max_retries=0: exactly one attempt, no fallback count


def test_without_client_counts_locally_and_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = Tokenizer(MODEL).count_messages(HISTORY)

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"unexpected network connection: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)

    provider = AnthropicProvider()
    assert provider.client is None
    count = provider.count_messages(HISTORY, model=MODEL)
    assert count == expected
    assert count > 0


def test_token_counter_of_a_provider_with_a_client_counts_messages_by_the_api(
    api: FakeAnthropicAPI, client: Any
) -> None:
    counter = AnthropicProvider(client=client).get_token_counter(MODEL)
    count = counter.count_messages(HISTORY)

    ((path, _, body),) = api.requests
    assert path == COUNT_PATH and count == _server_count(body)
    local = Tokenizer(MODEL)
    assert counter.count_text("hello there") == local.count_text("hello there")  # no request
    assert len(api.requests) == 1
    without = AnthropicProvider().get_token_counter(MODEL)
    assert without.count_messages(HISTORY) == local.count_messages(HISTORY)


def test_string_content_beside_tool_blocks(api: FakeAnthropicAPI, client: Any) -> None:
    msgs = [
        {"role": "user", "content": "Weather in Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "user", "content": "Thanks"},
    ]
    AnthropicProvider(client=client).count_messages(msgs, model=MODEL)

    ((_, _, body),) = api.requests
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "sunny"},
        {"type": "text", "text": "Thanks"},
    ]

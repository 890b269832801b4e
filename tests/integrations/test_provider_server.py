"""The local provider server against the real OpenAI and Anthropic SDKs, sync and async."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

openai = pytest.importorskip("openai", reason="the openai SDK is needed: pip install -e '.[dev]'")
anthropic = pytest.importorskip(
    "anthropic", reason="the anthropic SDK is needed: pip install -e '.[dev]'"
)

from tests.integrations.provider_server import (  # noqa: E402
    ProviderServer,
    count_input_tokens,
    count_output_tokens,
    provider_server,
    reply_text,
)

GPT = "gpt-4o-mini"
CLAUDE = "claude-test-model"
SYSTEM = "You are a terse geography assistant."
# Anthropic-shaped history (the system prompt travels beside it)
HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "What is the capital of France? One word."},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And the capital of Italy, and of the largest Baltic state?"},
]
# the same conversation in OpenAI's format
CHAT: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}, *HISTORY]
CHAT_TEXT = "echo: 4 messages, last user: And the capital of Italy, and of the lar"
CLAUDE_TEXT = "echo: 3 messages, last user: And the capital of Italy, and of the lar"


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with provider_server() as s:
        yield s


@pytest.fixture
def oai(server: ProviderServer) -> Iterator[Any]:
    client = openai.OpenAI(api_key="test", base_url=server.openai_base_url, max_retries=0)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def ant(server: ProviderServer) -> Iterator[Any]:
    client = anthropic.Anthropic(api_key="test", base_url=server.base_url, max_retries=0)
    try:
        yield client
    finally:
        client.close()


# -- deterministic content ------------------------------------------------------------------


def test_reply_and_token_functions_follow_the_body() -> None:
    assert reply_text({"messages": CHAT}) == CHAT_TEXT
    assert count_input_tokens({"messages": CHAT}) == len(json.dumps(CHAT, sort_keys=True)) // 4
    with_system = count_input_tokens({"system": SYSTEM, "messages": HISTORY})
    assert with_system == (len(json.dumps(SYSTEM)) + len(json.dumps(HISTORY, sort_keys=True))) // 4
    # a shorter history costs fewer tokens: compression is visible in the usage
    assert count_input_tokens({"messages": CHAT[-1:]}) < count_input_tokens({"messages": CHAT})
    parts = [{"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image"}]}]
    assert reply_text({"messages": parts}) == "echo: 1 messages, last user: look"
    assert count_output_tokens("") == 1
    assert count_output_tokens("x" * 40) == 10


def test_not_started_and_empty_server_say_so() -> None:
    server = ProviderServer()
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.base_url
    with server, pytest.raises(LookupError, match="no request"):
        _ = server.last_body


# -- OpenAI ---------------------------------------------------------------------------------


def test_openai_create_returns_typed_completion(server: ProviderServer, oai: Any) -> None:
    completion = oai.chat.completions.create(
        model=GPT, messages=CHAT, temperature=0.25, max_tokens=64, extra_body={"tag": "t1"}
    )

    assert isinstance(completion, openai.types.chat.ChatCompletion)
    assert completion.model == GPT
    assert completion.choices[0].message.content == CHAT_TEXT
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    prompt = len(json.dumps(CHAT, sort_keys=True)) // 4
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, len(CHAT_TEXT) // 4)
    assert usage.total_tokens == prompt + len(CHAT_TEXT) // 4
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert completion._request_id == "req_test000001"

    (received,) = server.requests
    assert (received.method, received.path) == ("POST", "/v1/chat/completions")
    assert received.body == {
        "model": GPT,
        "messages": CHAT,
        "temperature": 0.25,
        "max_tokens": 64,
        "tag": "t1",
    }
    assert server.last_body is received.body
    assert received.headers["authorization"] == "Bearer test"
    assert received.headers["content-type"] == "application/json"


def test_openai_stream_text_equals_non_stream_text(server: ProviderServer, oai: Any) -> None:
    chunks = list(oai.chat.completions.create(model=GPT, messages=CHAT, stream=True))

    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert len(pieces) >= 3
    assert "".join(pieces) == CHAT_TEXT
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)  # no include_usage, no usage chunk
    assert server.last_body["stream"] is True


def test_openai_stream_usage_chunk_only_with_include_usage(
    server: ProviderServer, oai: Any
) -> None:
    stream = oai.chat.completions.create(
        model=GPT, messages=CHAT, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage == [chunks[-1]]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == count_input_tokens(server.last_body)
    assert chunks[-1].usage.completion_tokens == len(CHAT_TEXT) // 4
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == CHAT_TEXT


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, "BadRequestError"),
        (401, "AuthenticationError"),
        (404, "NotFoundError"),
        (429, "RateLimitError"),
        (500, "InternalServerError"),
    ],
)
def test_openai_queued_error_is_the_sdk_exception(
    server: ProviderServer, oai: Any, status: int, error_class: str
) -> None:
    server.queue_error(status, message=f"scripted failure {status}")

    with pytest.raises(getattr(openai, error_class)) as info:
        oai.chat.completions.create(model=GPT, messages=CHAT)

    assert info.value.status_code == status
    assert info.value.body["message"] == f"scripted failure {status}"
    assert f"scripted failure {status}" in str(info.value)
    assert info.value.request_id == "req_test000001"
    assert len(server.requests) == 1  # max_retries=0: one attempt
    assert server.queued == 0
    # the error was used once; the next request gets a normal reply
    assert (
        oai.chat.completions.create(model=GPT, messages=CHAT).choices[0].message.content
        == CHAT_TEXT
    )


def test_openai_default_error_body_and_unknown_path(server: ProviderServer, oai: Any) -> None:
    server.queue_error(429)
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model=GPT, messages=CHAT)
    assert info.value.body == {
        "message": "requests: scripted 429 from ProviderServer",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }

    with pytest.raises(openai.NotFoundError) as missing:
        oai.embeddings.create(model="text-embedding-3-small", input="hi")
    assert missing.value.body["message"] == "Unknown request URL: POST /v1/embeddings"
    assert missing.value.body["type"] == "invalid_request_error"


def test_openai_retries_follow_the_headers(server: ProviderServer) -> None:
    client = openai.OpenAI(api_key="test", base_url=server.openai_base_url, max_retries=2)
    server.queue_error(429, headers={"retry-after-ms": "1"})
    server.queue_error(503, headers={"retry-after-ms": "1"})
    assert client.chat.completions.create(model=GPT, messages=CHAT).choices[0].message.content
    assert len(server.requests) == 3
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1", "2"]

    server.reset()
    server.queue_error(500, headers={"x-should-retry": "false"})
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=GPT, messages=CHAT)
    assert len(server.requests) == 1
    client.close()


def test_openai_queued_reply_and_cached_tokens() -> None:
    with ProviderServer(cached_tokens=7) as server:
        client = openai.OpenAI(api_key="test", base_url=server.openai_base_url, max_retries=0)
        server.queue_reply("scripted answer here", input_tokens=1000, output_tokens=3)
        scripted = client.chat.completions.create(model=GPT, messages=CHAT)
        computed = client.chat.completions.create(model=GPT, messages=CHAT)
        client.close()

    assert scripted.choices[0].message.content == "scripted answer here"
    assert (scripted.usage.prompt_tokens, scripted.usage.completion_tokens) == (1000, 3)
    assert scripted.usage.prompt_tokens_details.cached_tokens == 7
    assert computed.choices[0].message.content == CHAT_TEXT  # the override was used once
    assert computed.usage.prompt_tokens == len(json.dumps(CHAT, sort_keys=True)) // 4


def test_openai_async_create_stream_and_error(server: ProviderServer) -> None:
    async def run() -> tuple[Any, list[Any], Exception]:
        async with openai.AsyncOpenAI(
            api_key="test", base_url=server.openai_base_url, max_retries=0
        ) as client:
            completion = await client.chat.completions.create(model=GPT, messages=CHAT)
            stream = await client.chat.completions.create(
                model=GPT, messages=CHAT, stream=True, stream_options={"include_usage": True}
            )
            chunks = [chunk async for chunk in stream]
            server.queue_error(400, message="bad async request")
            try:
                await client.chat.completions.create(model=GPT, messages=CHAT)
            except openai.APIStatusError as exc:
                return completion, chunks, exc
            raise AssertionError("the queued 400 was not raised")

    completion, chunks, error = asyncio.run(run())

    assert completion.choices[0].message.content == CHAT_TEXT
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == CHAT_TEXT
    assert chunks[-1].usage.total_tokens == completion.usage.total_tokens
    assert isinstance(error, openai.BadRequestError)
    assert error.body["message"] == "bad async request"
    assert len(server.requests) == 3


# -- Anthropic ------------------------------------------------------------------------------


def test_anthropic_create_returns_typed_message(server: ProviderServer, ant: Any) -> None:
    message = ant.messages.create(
        model=CLAUDE,
        max_tokens=64,
        system=SYSTEM,
        messages=HISTORY,
        stop_sequences=["###"],
        metadata={"user_id": "u-1"},
        extra_body={"tag": "t2"},
    )

    assert isinstance(message, anthropic.types.Message)
    assert message.id.startswith("msg_")
    assert message.model == CLAUDE
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == CLAUDE_TEXT
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    expected_input = count_input_tokens({"system": SYSTEM, "messages": HISTORY})
    assert message.usage.input_tokens == expected_input
    assert message.usage.output_tokens == len(CLAUDE_TEXT) // 4
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (
        0,
        0,
    )
    assert message._request_id == "req_test000001"

    (received,) = server.requests
    assert received.path == "/v1/messages"
    assert received.body == {
        "model": CLAUDE,
        "max_tokens": 64,
        "system": SYSTEM,
        "messages": HISTORY,
        "stop_sequences": ["###"],
        "metadata": {"user_id": "u-1"},
        "tag": "t2",
    }
    # the key travels as x-api-key (1.x SDKs) or as a bearer token (2.x)
    auth = (received.headers.get("x-api-key"), received.headers.get("authorization"))
    assert auth in {("test", None), (None, "Bearer test")}
    assert "anthropic-version" in received.headers


def test_anthropic_stream_helper_gives_final_message(server: ProviderServer, ant: Any) -> None:
    with ant.messages.stream(
        model=CLAUDE, max_tokens=64, system=SYSTEM, messages=HISTORY
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) >= 3
    assert "".join(pieces) == CLAUDE_TEXT
    assert final.content[0].text == CLAUDE_TEXT
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == count_input_tokens(server.last_body)
    assert final.usage.output_tokens == len(CLAUDE_TEXT) // 4
    assert server.last_body["stream"] is True


def test_anthropic_raw_stream_events_in_order(ant: Any) -> None:
    events = list(ant.messages.create(model=CLAUDE, max_tokens=64, messages=HISTORY, stream=True))

    types = [e.type for e in events]
    deltas = types.count("content_block_delta")
    assert deltas >= 3
    assert types == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0].message.usage.output_tokens == 1
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == CLAUDE_TEXT
    assert events[-2].delta.stop_reason == "end_turn"
    assert events[-2].usage.output_tokens == len(CLAUDE_TEXT) // 4


def test_anthropic_wire_format_has_event_lines_and_ping(server: ProviderServer) -> None:
    """The SDK hides pings; read the raw response with the standard library."""
    port = int(server.base_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    body = {"model": CLAUDE, "max_tokens": 8, "messages": HISTORY, "stream": True}
    conn.request("POST", "/v1/messages", json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    raw = response.read().decode()
    conn.close()

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.headers["request-id"] == response.headers["x-request-id"] == "req_test000001"
    frames = [f for f in raw.split("\n\n") if f]
    names = [f.split("\n")[0].removeprefix("event: ") for f in frames]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    for frame, name in zip(frames, names, strict=True):
        assert json.loads(frame.split("\n")[1].removeprefix("data: "))["type"] == name


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (400, "BadRequestError", "invalid_request_error"),
        (401, "AuthenticationError", "authentication_error"),
        (404, "NotFoundError", "not_found_error"),
        (429, "RateLimitError", "rate_limit_error"),
        (500, "InternalServerError", "api_error"),
        (529, "OverloadedError", "overloaded_error"),
    ],
)
def test_anthropic_queued_error_is_the_sdk_exception(
    server: ProviderServer, ant: Any, status: int, error_class: str, error_type: str
) -> None:
    server.queue_error(status, message=f"scripted failure {status}")

    with pytest.raises(getattr(anthropic, error_class)) as info:
        ant.messages.create(model=CLAUDE, max_tokens=8, messages=HISTORY)

    assert info.value.status_code == status
    assert info.value.body == {
        "type": "error",
        "error": {"type": error_type, "message": f"scripted failure {status}"},
    }
    assert info.value.request_id == "req_test000001"
    assert len(server.requests) == 1
    assert ant.messages.create(model=CLAUDE, max_tokens=8, messages=HISTORY).content[0].text


def test_anthropic_error_on_a_stream_request_and_custom_body(
    server: ProviderServer, ant: Any
) -> None:
    server.queue_error(429)
    with pytest.raises(anthropic.RateLimitError) as info:  # noqa: SIM117 (the error comes at open)
        with ant.messages.stream(model=CLAUDE, max_tokens=8, messages=HISTORY) as stream:
            stream.get_final_message()
    assert (
        info.value.body["error"]["message"] == "rate_limit_error: scripted 429 from ProviderServer"
    )

    custom = {"type": "error", "error": {"type": "invalid_request_error", "message": "too long"}}
    server.queue_error(400, body=custom, headers={"x-custom": "yes"})
    with pytest.raises(anthropic.BadRequestError) as bad:
        ant.messages.create(model=CLAUDE, max_tokens=8, messages=HISTORY)
    assert bad.value.body == custom
    assert bad.value.response.headers["x-custom"] == "yes"


def test_anthropic_count_tokens_and_unknown_path(server: ProviderServer, ant: Any) -> None:
    count = ant.messages.count_tokens(model=CLAUDE, system=SYSTEM, messages=HISTORY)
    assert count.input_tokens == count_input_tokens({"system": SYSTEM, "messages": HISTORY})
    assert server.requests[-1].path == "/v1/messages/count_tokens"

    with pytest.raises(anthropic.NotFoundError) as info:
        ant.models.retrieve("claude-nope")
    assert info.value.body["error"]["type"] == "not_found_error"
    assert info.value.body["error"]["message"] == "Unknown request URL: GET /v1/models/claude-nope"


def test_anthropic_cached_tokens_are_split_out_of_input() -> None:
    with ProviderServer(cached_tokens=10) as server:
        client = anthropic.Anthropic(api_key="test", base_url=server.base_url, max_retries=0)
        message = client.messages.create(model=CLAUDE, max_tokens=8, messages=HISTORY)
        server.queue_reply("scripted", input_tokens=50, cached_tokens=20)
        with client.messages.stream(model=CLAUDE, max_tokens=8, messages=HISTORY) as stream:
            scripted = stream.get_final_message()
        client.close()

    total = count_input_tokens({"messages": HISTORY})
    assert message.usage.input_tokens == total - 10
    assert message.usage.cache_read_input_tokens == 10
    assert scripted.content[0].text == "scripted"
    assert (scripted.usage.input_tokens, scripted.usage.cache_read_input_tokens) == (30, 20)


def test_anthropic_async_create_stream_and_error(server: ProviderServer) -> None:
    async def run() -> tuple[Any, Any, list[str], Exception]:
        async with anthropic.AsyncAnthropic(
            api_key="test", base_url=server.base_url, max_retries=0
        ) as client:
            message = await client.messages.create(model=CLAUDE, max_tokens=8, messages=HISTORY)
            async with client.messages.stream(
                model=CLAUDE, max_tokens=8, messages=HISTORY
            ) as stream:
                pieces = [text async for text in stream.text_stream]
                final = await stream.get_final_message()
            server.queue_error(500, message="async boom")
            try:
                await client.messages.create(model=CLAUDE, max_tokens=8, messages=HISTORY)
            except anthropic.APIStatusError as exc:
                return message, final, pieces, exc
            raise AssertionError("the queued 500 was not raised")

    message, final, pieces, error = asyncio.run(run())

    assert message.content[0].text == final.content[0].text == "".join(pieces) == CLAUDE_TEXT
    assert final.usage.input_tokens == message.usage.input_tokens > 0
    assert isinstance(error, anthropic.InternalServerError)
    assert error.body["error"]["message"] == "async boom"
    assert len(server.requests) == 3


# -- server mechanics -----------------------------------------------------------------------


def test_concurrent_requests_are_all_recorded(server: ProviderServer) -> None:
    client = openai.OpenAI(api_key="test", base_url=server.openai_base_url, max_retries=0)
    answers: dict[int, str] = {}

    def ask(i: int) -> None:
        messages = [{"role": "user", "content": f"question number {i}"}]
        answers[i] = (
            client.chat.completions.create(model=GPT, messages=messages).choices[0].message.content
        )

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    client.close()

    assert answers == {i: f"echo: 1 messages, last user: question number {i}" for i in range(8)}
    contents = sorted(r.body["messages"][0]["content"] for r in server.requests)
    assert contents == sorted(f"question number {i}" for i in range(8))


def test_chunk_delay_spreads_the_stream() -> None:
    with ProviderServer(chunk_delay=0.01) as server:
        client = openai.OpenAI(api_key="test", base_url=server.openai_base_url, max_retries=0)
        stream = client.chat.completions.create(model=GPT, messages=CHAT, stream=True)
        arrivals = [time.monotonic() for _ in stream]
        client.close()

    # role chunk, >= 3 content chunks, finish chunk: at least 4 gaps of 10 ms, each
    # chunk read as it arrived (a lower bound only: sleeps never end early)
    assert len(arrivals) >= 5
    assert arrivals[-1] - arrivals[0] >= 0.01 * (len(arrivals) - 1) * 0.9


def test_reset_forgets_requests_and_queue(server: ProviderServer, oai: Any) -> None:
    oai.chat.completions.create(model=GPT, messages=CHAT)
    server.queue_error(500)
    server.queue_reply("never used")
    assert (len(server.requests), server.queued) == (1, 2)

    server.reset()

    assert (server.requests, server.queued) == ([], 0)
    assert (
        oai.chat.completions.create(model=GPT, messages=CHAT).choices[0].message.content
        == CHAT_TEXT
    )


# -- scripted tool calls -----------------------------------------------------------------

CALLS = [("call_1", "search", {"q": "errors", "limit": 3}), ("call_2", "fetch", {"id": 7})]


def test_openai_tool_calls_plain_and_streamed(server: ProviderServer, oai: Any) -> None:
    server.queue_reply(tool_calls=CALLS)
    done = oai.chat.completions.create(model=GPT, messages=CHAT)
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    got = [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls
    ]
    assert got == CALLS

    server.queue_reply(tool_calls=CALLS[:1])
    with oai.chat.completions.stream(model=GPT, messages=CHAT) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == CALLS[0]
    assert final.choices[0].finish_reason == "tool_calls"


def test_anthropic_tool_use_plain_and_streamed(server: ProviderServer, ant: Any) -> None:
    server.queue_reply("Looking.", tool_calls=CALLS)
    done = ant.messages.create(model=CLAUDE, max_tokens=64, messages=HISTORY)
    assert done.stop_reason == "tool_use"
    assert done.content[0].type == "text" and done.content[0].text == "Looking."
    assert [(b.id, b.name, b.input) for b in done.content[1:]] == CALLS

    server.queue_reply(tool_calls=CALLS[1:])
    with ant.messages.stream(model=CLAUDE, max_tokens=64, messages=HISTORY) as stream:
        final = stream.get_final_message()
    assert [(b.type, b.id, b.name, b.input) for b in final.content] == [("tool_use", *CALLS[1])]
    assert final.stop_reason == "tool_use"

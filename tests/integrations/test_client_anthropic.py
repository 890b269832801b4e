"""HeadroomClient around the real ``anthropic`` SDK clients, against a local API server."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

anthropic = pytest.importorskip(
    "anthropic", reason="the anthropic SDK is needed: pip install -e '.[dev]'"
)

from headroom_core.messages import from_anthropic, to_anthropic  # noqa: E402
from headroom_integrations import HeadroomClient  # noqa: E402

from .provider_server import ProviderServer, count_input_tokens, reply_text  # noqa: E402

MODEL = "claude-haiku-4-5"  # in the price table, and not deprecated by the SDK


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    with ProviderServer(cached_tokens=100) as s:
        yield s


@pytest.fixture()
def srv(server: ProviderServer) -> ProviderServer:
    server.reset()
    return server


@pytest.fixture()
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'metrics.db'}"


@pytest.fixture()
def body(example_history: list[dict[str, Any]]) -> dict[str, Any]:
    """The bundled agent history as an Anthropic request: system + tool_use/tool_result."""
    return to_anthropic(example_history)


def _client(srv: ProviderServer, store_url: str, **kwargs: Any) -> HeadroomClient:
    raw = anthropic.Anthropic(api_key="test", base_url=srv.base_url, max_retries=0)
    return HeadroomClient(raw, store_url=store_url, **kwargs)


def _aclient(srv: ProviderServer, store_url: str, **kwargs: Any) -> HeadroomClient:
    raw = anthropic.AsyncAnthropic(api_key="test", base_url=srv.base_url, max_retries=0)
    return HeadroomClient(raw, store_url=store_url, **kwargs)


def _results(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (block["tool_use_id"], str(block["content"]))
        for m in messages
        if isinstance(m["content"], list)
        for block in m["content"]
        if block.get("type") == "tool_result"
    ]


def test_optimize_compresses_tool_results_and_keeps_pairs(
    srv: ProviderServer, store_url: str, body: dict[str, Any]
) -> None:
    original = copy.deepcopy(body)
    client = _client(srv, store_url, default_mode="optimize")

    message = client.messages.create(model=MODEL, max_tokens=1024, **body)

    assert body == original
    sent = srv.last_body
    assert message.content[0].text == reply_text(sent)
    # The system prompt's date moved behind the stable prefix, never deleted.
    assert "Current date: 2026-11-21 14:32 UTC" in original["system"]
    assert sent["system"].endswith("[Dynamic Context]\nCurrent date: 2026-11-21 14:32 UTC")
    before, after = _results(original["messages"]), _results(sent["messages"])
    assert [i for i, _ in after] == [i for i, _ in before]  # every tool_use keeps its result
    assert sum(len(c) for _, c in after) < sum(len(c) for _, c in before) / 2
    neutral, _ = from_anthropic(sent)  # what went out is a valid, paired Messages request
    assert neutral[-1]["content"] == original["messages"][-1]["content"]
    [rec] = client.get_metrics()
    assert rec.provider == "anthropic" and rec.mode == "optimize"
    assert rec.tokens_input_after < rec.tokens_input_before / 2
    # Input billed = uncached + cache reads, as the API reports it.
    assert rec.extra["usage_input_tokens"] == count_input_tokens(sent)
    assert rec.cached_tokens == 100
    assert rec.cost_after is not None and rec.cost_before is not None
    assert rec.cost_after < rec.cost_before


def test_audit_sends_the_body_byte_for_byte(
    srv: ProviderServer, store_url: str, body: dict[str, Any]
) -> None:
    system = [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}]
    client = _client(srv, store_url)
    client.messages.create(
        model=MODEL,
        max_tokens=300,
        system=system,
        messages=body["messages"],
        stop_sequences=["END"],
    )
    assert srv.last_body["messages"] == body["messages"]
    assert srv.last_body["system"] == system and srv.last_body["stop_sequences"] == ["END"]
    [rec] = client.get_metrics()
    assert rec.mode == "audit" and rec.extra["projected_tokens_after"] < rec.tokens_input_before


def test_system_prompt_dates_move_behind_the_stable_prefix(
    srv: ProviderServer, store_url: str
) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    hashes = []
    for day in ("2026-11-21", "2026-11-22"):
        client.messages.create(
            model=MODEL,
            max_tokens=100,
            system=f"You are a release assistant. Today is {day}. Answer in one line.",
            messages=[{"role": "user", "content": "Status?"}],
        )
        assert srv.last_body["system"].startswith(
            "You are a release assistant. Answer in one line."
        )
        assert day in srv.last_body["system"]  # moved, never deleted
        hashes.append(client.get_metrics(limit=1)[0].extra["prefix_hash"])
    assert hashes[0] == hashes[1]


def test_raw_stream_passes_events_and_records_usage(
    srv: ProviderServer, store_url: str, body: dict[str, Any]
) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    stream = client.messages.create(model=MODEL, max_tokens=1024, stream=True, **body)
    kinds, text = [], ""
    for event in stream:
        kinds.append(event.type)
        if event.type == "content_block_delta":
            text += event.delta.text
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert text == reply_text(srv.last_body)
    [rec] = client.get_metrics()
    assert rec.stream is True
    assert rec.extra["usage_input_tokens"] == count_input_tokens(srv.last_body)
    assert rec.tokens_output == max(1, len(text) // 4)


def test_stream_helper(srv: ProviderServer, store_url: str, body: dict[str, Any]) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    with client.messages.stream(model=MODEL, max_tokens=1024, **body) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == final.content[0].text == reply_text(srv.last_body)
    assert srv.last_body["messages"] != body["messages"]
    [rec] = client.get_metrics()
    assert rec.extra["api"] == "messages.stream"
    assert rec.tokens_output == final.usage.output_tokens and rec.cached_tokens == 100


def test_async_create_and_stream_helper(
    srv: ProviderServer, store_url: str, body: dict[str, Any]
) -> None:
    client = _aclient(srv, store_url, default_mode="optimize")

    async def run() -> tuple[str, str]:
        message = await client.messages.create(model=MODEL, max_tokens=1024, **body)
        async with client.messages.stream(model=MODEL, max_tokens=1024, **body) as stream:
            text = "".join([t async for t in stream.text_stream])
        return message.content[0].text, text

    text, streamed = asyncio.run(run())
    assert text == streamed == reply_text(srv.last_body)
    assert [r.stream for r in client.get_metrics()] == [True, False]


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
    ],
)
def test_provider_errors_reach_the_caller_unchanged(
    srv: ProviderServer,
    store_url: str,
    body: dict[str, Any],
    status: int,
    exc_type: type[Exception],
) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    srv.queue_error(status, message=f"scripted {status}")
    with pytest.raises(exc_type) as info:
        client.messages.create(model=MODEL, max_tokens=64, **body)
    assert type(info.value) is exc_type and info.value.status_code == status
    assert "scripted" in str(info.value)
    [rec] = client.get_metrics()
    assert rec.error is not None and rec.error.startswith(exc_type.__name__)


def test_stream_helper_error_is_raised_and_recorded(
    srv: ProviderServer, store_url: str, body: dict[str, Any]
) -> None:
    client = _client(srv, store_url)
    srv.queue_error(529, message="overloaded")
    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded"),
        client.messages.stream(model=MODEL, max_tokens=64, **body),
    ):
        pass
    [rec] = client.get_metrics()
    assert "overloaded" in (rec.error or "")


def test_simulate_returns_the_anthropic_request(
    srv: ProviderServer, store_url: str, body: dict[str, Any]
) -> None:
    client = _client(srv, store_url)
    plan = client.messages.simulate(model=MODEL, max_tokens=1024, **body)
    assert srv.requests == []
    assert plan.request is not None and plan.request["model"] == MODEL
    assert plan.request["system"].startswith("You are DeployBot")
    assert plan.messages == plan.request["messages"]
    assert plan.tokens_saved > 0 and plan.transforms_applied


def test_count_tokens_and_other_attributes_pass_through(
    srv: ProviderServer, store_url: str, body: dict[str, Any]
) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    result = client.messages.count_tokens(model=MODEL, **body)
    assert srv.last_body["messages"] == body["messages"]  # not compressed: the SDK's own
    assert result.input_tokens == count_input_tokens(srv.last_body)
    assert client.models is client.original.models
    assert client.get_metrics() == []


def test_a_body_we_cannot_read_goes_out_as_given(
    srv: ProviderServer, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    odd = [{"role": "system", "content": "not allowed here"}, {"role": "user", "content": "hi"}]
    with caplog.at_level("WARNING", logger="headroom_integrations"):
        client.messages.create(model=MODEL, max_tokens=64, messages=odd)
    assert srv.last_body["messages"] == odd  # the API, not us, judges it
    assert "goes out unchanged, unrecorded" in caplog.text
    assert client.get_metrics() == []


def test_a_block_we_cannot_read_fails_open(srv: ProviderServer, store_url: str) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    odd = [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "q"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]},
    ]  # tool_use without "input"
    client.messages.create(model=MODEL, max_tokens=64, messages=odd)
    assert srv.last_body["messages"] == odd


def test_untouched_assistant_turns_keep_their_block_order(
    srv: ProviderServer, store_url: str
) -> None:
    rows = [{"id": i, "status": "ok", "region": "eu-west-1"} for i in range(150)]
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "need rows", "signature": "sig1"},
            {"type": "tool_use", "id": "t1", "name": "rows", "input": {}},
            {"type": "text", "text": "and also"},
            {"type": "tool_use", "id": "t2", "name": "rows", "input": {"page": 2}},
        ],
    }
    messages = [
        {"role": "user", "content": "Which rows are not ok?"},
        assistant,
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": json.dumps(rows, indent=2)},
                {"type": "tool_result", "tool_use_id": "t2", "content": "[]"},
            ],
        },
    ]
    client = _client(srv, store_url, default_mode="optimize")
    client.messages.create(model=MODEL, max_tokens=64, messages=messages)
    sent = srv.last_body["messages"]
    assert sent[1] == assistant  # byte for byte: order and signature kept
    assert len(json.dumps(sent[2])) < len(json.dumps(messages[2])) / 2  # the result shrank


def test_a_request_that_would_start_with_an_assistant_turn_is_never_built() -> None:
    from headroom_core.errors import InputError
    from headroom_integrations._plans import with_anthropic_messages as _with_messages

    cut = [
        {"role": "system", "content": "Be terse."},
        {"role": "assistant", "content": "An answer whose question was cut."},
        {"role": "user", "content": "Next?"},
    ]
    with pytest.raises(InputError, match="would not start with a user turn"):
        _with_messages({"model": MODEL, "messages": []}, cut, {})
    sent = _with_messages({"model": MODEL, "system": "x", "messages": []}, cut[2:], {})
    assert sent == {"model": MODEL, "messages": [{"role": "user", "content": "Next?"}]}

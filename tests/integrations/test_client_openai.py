"""HeadroomClient around the real ``openai`` SDK clients, against a local API server.

The server (tests/integrations/provider_server.py) records every body it receives, so each
test asserts on what actually went over the wire, and on the record in a real SQLite store.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

openai = pytest.importorskip("openai", reason="the openai SDK is needed: pip install -e '.[dev]'")

from headroom_core.ccr import retrieve  # noqa: E402
from headroom_core.errors import ConfigError  # noqa: E402
from headroom_core.metrics import open_store  # noqa: E402
from headroom_core.pipeline import SimulationResult  # noqa: E402
from headroom_core.tokens import count_tokens_messages  # noqa: E402
from headroom_integrations import HeadroomClient  # noqa: E402

from .provider_server import ProviderServer, count_input_tokens, reply_text  # noqa: E402

MODEL = "gpt-4o-mini"


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    with ProviderServer(cached_tokens=64) as s:
        yield s


@pytest.fixture()
def srv(server: ProviderServer) -> ProviderServer:
    server.reset()
    return server


@pytest.fixture()
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'metrics.db'}"


def _client(srv: ProviderServer, store_url: str, **kwargs: Any) -> HeadroomClient:
    raw = openai.OpenAI(api_key="test", base_url=srv.openai_base_url, max_retries=0)
    return HeadroomClient(raw, store_url=store_url, **kwargs)


def _aclient(srv: ProviderServer, store_url: str, **kwargs: Any) -> HeadroomClient:
    raw = openai.AsyncOpenAI(api_key="test", base_url=srv.openai_base_url, max_retries=0)
    return HeadroomClient(raw, store_url=store_url, **kwargs)


def _records(store_url: str) -> list[Any]:
    with open_store(store_url) as store:
        return store.get_metrics(limit=None)


def _tool_contents(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages if m.get("role") == "tool"]


# --- optimize / audit / off ---------------------------------------------------------------


def test_optimize_sends_compressed_request_and_records_it(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    original = copy.deepcopy(example_history)
    client = _client(srv, store_url, default_mode="optimize")

    response = client.chat.completions.create(model=MODEL, messages=example_history)

    assert example_history == original  # the caller's list is never mutated
    sent = srv.last_body["messages"]
    assert response.choices[0].message.content == reply_text(srv.last_body)
    # Tool outputs shrank; user and assistant text went out unchanged, pairing intact.
    assert sum(map(len, _tool_contents(sent))) < sum(map(len, _tool_contents(original))) / 2
    assert [m["content"] for m in sent if m["role"] in ("user", "assistant")] == [
        m["content"] for m in original if m["role"] in ("user", "assistant")
    ]
    assert [m.get("tool_call_id") for m in sent if m["role"] == "tool"] == [
        m.get("tool_call_id") for m in original if m["role"] == "tool"
    ]
    [rec] = _records(store_url)
    assert rec.mode == "optimize" and rec.source == "client" and rec.provider == "openai"
    assert rec.tokens_input_before == count_tokens_messages(original, model=MODEL)
    assert rec.tokens_input_after == count_tokens_messages(sent, model=MODEL)
    assert rec.tokens_input_after < rec.tokens_input_before / 2
    assert any(t.startswith("smart_crusher") for t in rec.transforms_applied)
    # Usage is the provider's, cost is priced with the cached share.
    assert rec.extra["usage_input_tokens"] == count_input_tokens(srv.last_body)
    assert rec.cached_tokens == 64
    assert rec.tokens_output == response.usage.completion_tokens
    assert rec.cost_before is not None and rec.cost_after is not None
    assert rec.cost_after < rec.cost_before
    assert rec.extra["api"] == "chat.completions.create" and rec.stream is False
    assert rec.extra["preview"] == original[-1]["content"][:200]


def test_audit_forwards_the_request_unchanged_and_projects_the_saving(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    client = _client(srv, store_url)  # audit is the default
    assert client.default_mode == "audit"

    client.chat.completions.create(model=MODEL, messages=example_history, temperature=0.2)

    assert srv.last_body["messages"] == example_history
    assert srv.last_body["temperature"] == 0.2
    [rec] = _records(store_url)
    assert rec.mode == "audit" and rec.transforms_applied == ()
    assert rec.tokens_input_before == rec.tokens_input_after
    assert rec.extra["projected_tokens_after"] < rec.tokens_input_before / 2
    assert rec.waste_signals["json_bloat_tokens"] > 0
    assert rec.extra["prefix_hash"] and rec.extra["prefix_tokens"] > 0


def test_off_mode_forwards_and_records_nothing(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    client.chat.completions.create(model=MODEL, messages=example_history, headroom_mode="off")
    assert srv.last_body["messages"] == example_history
    assert client.get_metrics() == []


def test_headroom_parameters_are_stripped_and_everything_else_forwarded(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    client = _client(srv, store_url)
    tools = [{"type": "function", "function": {"name": "get_logs", "parameters": {}}}]
    client.chat.completions.create(
        model=MODEL,
        messages=example_history,
        tools=tools,
        metadata={"team": "sre"},
        extra_body={"custom_flag": True},
        headroom_mode="optimize",
        headroom_query="deployment failure",
        headroom_output_buffer_tokens=512,
        headroom_keep_turns=1,
        headroom_tool_profiles={"list_deployments": {"max_array_items": 5}},
    )
    body = srv.last_body
    assert not [k for k in body if k.startswith("headroom")]
    assert body["tools"] == tools and body["metadata"] == {"team": "sre"}
    assert body["custom_flag"] is True and body["model"] == MODEL
    assert body["messages"] != example_history  # optimize via the per-call mode


def test_per_call_budget_cuts_to_fit_and_keeps_everything_retrievable(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    # A 3,000-token window and a 1,000-token reply: the fitter must cut to 2,000 tokens.
    client = _client(srv, store_url, default_mode="optimize", model_context_limits={MODEL: 3000})
    client.chat.completions.create(model=MODEL, messages=example_history, max_tokens=1000)
    sent = srv.last_body["messages"]
    assert count_tokens_messages(sent, model=MODEL) <= 2000
    assert sent[-1] == example_history[-1] and sent[0]["role"] == "system"
    refs = {r for m in sent for r in re.findall(r"ref\W+([0-9a-f]{32})", str(m.get("content")))}
    assert refs and all(retrieve(ref) is not None for ref in refs)


def test_simulate_makes_no_call(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    client = _client(srv, store_url)
    plan = client.chat.completions.simulate(model=MODEL, messages=example_history)
    assert isinstance(plan, SimulationResult)
    assert srv.requests == [] and client.get_metrics() == []
    assert plan.tokens_before == count_tokens_messages(example_history, model=MODEL)
    assert plan.tokens_after == count_tokens_messages(plan.messages, model=MODEL)
    assert plan.tokens_saved == plan.tokens_before - plan.tokens_after > 0
    assert plan.estimated_cost_saving and plan.estimated_cost_saving > 0
    assert plan.request == {"model": MODEL, "messages": plan.messages}
    assert plan.waste_signals.json_bloat_tokens > 0


# --- streaming ------------------------------------------------------------------------------


def test_stream_passes_chunks_through_and_records_usage_at_the_end(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    stream = client.chat.completions.create(
        model=MODEL,
        messages=example_history,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces = []
    for chunk in stream:
        assert isinstance(chunk, openai.types.chat.ChatCompletionChunk)
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
            assert client.get_metrics() == []  # nothing recorded while streaming
    assert len(pieces) >= 3 and "".join(pieces) == reply_text(srv.last_body)
    assert srv.last_body["stream_options"] == {"include_usage": True}
    [rec] = client.get_metrics()
    assert rec.stream is True and rec.mode == "optimize"
    assert rec.extra["usage_input_tokens"] == count_input_tokens(srv.last_body)
    assert rec.tokens_output is not None and rec.tokens_output > 0


def test_stream_without_usage_and_closed_early_is_still_recorded(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    client = _client(srv, store_url)
    with client.chat.completions.create(
        model=MODEL, messages=example_history, stream=True
    ) as stream:
        first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
        assert stream.response.status_code == 200  # SDK attributes pass through
    [rec] = client.get_metrics()
    assert rec.stream is True and rec.tokens_output is None and rec.mode == "audit"


def test_abandoned_stream_is_recorded_when_collected(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    client = _client(srv, store_url)
    stream = client.chat.completions.create(model=MODEL, messages=example_history, stream=True)
    next(stream)
    assert client.get_metrics() == []
    del stream
    gc.collect()
    [rec] = client.get_metrics()
    assert rec.stream is True and rec.error is None


def test_async_create_and_stream(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    client = _aclient(srv, store_url, default_mode="optimize")

    async def run() -> tuple[str, str]:
        response = await client.chat.completions.create(model=MODEL, messages=example_history)
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=example_history,
            stream=True,
            stream_options={"include_usage": True},
        )
        text = ""
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
        return response.choices[0].message.content, text

    text, streamed = asyncio.run(run())
    assert text == streamed == reply_text(srv.last_body)
    assert len(srv.requests) == 2
    assert srv.requests[0].body["messages"] == srv.requests[1].body["messages"]  # deterministic
    assert srv.last_body["messages"] != example_history
    records = client.get_metrics()
    assert [r.stream for r in records] == [True, False]  # newest first
    assert all(r.tokens_input_after < r.tokens_input_before for r in records)


def test_stream_helper_is_compressed_and_recorded(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    with client.chat.completions.stream(model=MODEL, messages=example_history) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == reply_text(srv.last_body)
    assert srv.last_body["messages"] != example_history
    [rec] = client.get_metrics()
    assert rec.extra["api"] == "chat.completions.stream" and rec.stream is True


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
def test_provider_errors_reach_the_caller_unchanged(
    srv: ProviderServer, store_url: str, status: int, exc_type: type[Exception]
) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    srv.queue_error(status, message=f"scripted {status}")
    with pytest.raises(exc_type) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert type(info.value) is exc_type and info.value.status_code == status
    assert "scripted" in str(info.value)
    assert info.traceback[-1].path.name == "_base_client.py"  # raised by the SDK, not re-made
    [rec] = client.get_metrics()
    assert rec.error is not None and rec.error.startswith(exc_type.__name__)


def test_async_provider_error_reaches_the_caller(srv: ProviderServer, store_url: str) -> None:
    client = _aclient(srv, store_url)
    srv.queue_error(503, message="overloaded")

    async def run() -> None:
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )

    with pytest.raises(openai.InternalServerError, match="overloaded"):
        asyncio.run(run())
    [rec] = client.get_metrics()
    assert rec.stream is True and "InternalServerError" in (rec.error or "")


def test_our_failure_never_blocks_the_call(
    srv: ProviderServer,
    store_url: str,
    example_history: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A 600-token window: the system prompt + last turn alone do not fit (BudgetError).
    client = _client(srv, store_url, default_mode="optimize", model_context_limits={MODEL: 600})
    with caplog.at_level(logging.WARNING, logger="headroom_integrations"):
        response = client.chat.completions.create(model=MODEL, messages=example_history)
    assert response.choices[0].message.content.startswith("echo:")
    assert srv.last_body["messages"] == example_history  # sent as the caller built it
    [rec] = client.get_metrics()
    assert rec.tokens_input_after == rec.tokens_input_before and rec.transforms_applied == ()
    assert rec.extra["failures"][0].startswith("client: BudgetError")
    assert "goes out unchanged" in caplog.text


def test_unusable_store_is_logged_once_and_calls_go_on(
    srv: ProviderServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "not-a-db").write_text("this is not sqlite")
    client = _client(srv, f"sqlite:///{tmp_path / 'not-a-db'}")
    with caplog.at_level(logging.WARNING, logger="headroom_integrations"):
        for _ in range(3):
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}]
            )
    assert len(srv.requests) == 3
    assert caplog.text.count("cannot record metrics") == 1


def test_bad_headroom_parameters_fail_before_sending(srv: ProviderServer, store_url: str) -> None:
    client = _client(srv, store_url)
    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(ConfigError, match="headroom_mode"):
        client.chat.completions.create(model=MODEL, messages=msgs, headroom_mode="fast")
    with pytest.raises(ConfigError, match="headroom_keep_turn"):
        client.chat.completions.create(model=MODEL, messages=msgs, headroom_keep_turn=2)
    with pytest.raises(ConfigError, match="headroom_keep_turns"):
        client.chat.completions.create(model=MODEL, messages=msgs, headroom_keep_turns=-1)
    with pytest.raises(ConfigError, match="tool_profiles"):
        client.chat.completions.create(
            model=MODEL, messages=msgs, headroom_tool_profiles={"search": {"max_array_items": "x"}}
        )
    assert srv.requests == []


# --- construction, passthrough, metrics ----------------------------------------------------


def test_construction_errors_name_the_argument(store_url: str) -> None:
    raw = openai.OpenAI(api_key="test", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="default_mode"):
        HeadroomClient(raw, default_mode="optimise", store_url=store_url)
    with pytest.raises(ConfigError, match="speaks the openai API"):
        HeadroomClient(raw, provider="anthropic", store_url=store_url)
    with pytest.raises(ConfigError, match="cannot tell which API"):
        HeadroomClient(object(), store_url=store_url)
    with pytest.raises(ConfigError, match="rolling_window_config"):
        HeadroomClient(raw, rolling_window_config={"enabled": False}, store_url=store_url)


def test_other_attributes_are_the_sdk_clients_own(srv: ProviderServer, store_url: str) -> None:
    from headroom_core import OpenAIProvider

    raw = openai.OpenAI(api_key="test", base_url=srv.openai_base_url, max_retries=0)
    client = HeadroomClient(original_client=raw, provider=OpenAIProvider(), store_url=store_url)
    assert client.embeddings is raw.embeddings and client.files is raw.files
    assert client.chat.completions.with_raw_response is raw.chat.completions.with_raw_response
    assert client.original is raw and client.provider == "openai"
    slower = client.with_options(timeout=7.0)
    assert isinstance(slower, HeadroomClient) and slower.original.timeout == 7.0
    slower.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert len(client.get_metrics()) == 1  # same store


def test_get_metrics_and_summary(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    for mode in ("optimize", "audit", "optimize"):
        client.chat.completions.create(model=MODEL, messages=example_history, headroom_mode=mode)
    assert [m.mode for m in client.get_metrics(limit=2)] == ["optimize", "audit"]
    summary = client.get_summary()
    assert summary.requests == 3 and summary.by_mode == {"audit": 1, "optimize": 2}
    records = client.get_metrics(limit=None)
    assert summary.total_tokens_saved == sum(r.tokens_saved for r in records) > 0
    client.close()


def test_generator_messages_are_read_once_and_forwarded(
    srv: ProviderServer, store_url: str
) -> None:
    client = _client(srv, store_url)
    msgs = ({"role": "user", "content": f"part {i}"} for i in range(3))
    client.chat.completions.create(model=MODEL, messages=msgs)
    assert [m["content"] for m in srv.last_body["messages"]] == ["part 0", "part 1", "part 2"]
    assert json.loads(json.dumps(srv.last_body))["model"] == MODEL


def test_sdk_message_objects_in_messages_are_measured_and_compressed(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    # OpenAI's tool-calling recipe appends the previous response's message object as is.
    client = _client(srv, store_url, default_mode="optimize")
    first = client.chat.completions.create(model=MODEL, messages=example_history[:2])
    history = [*example_history, first.choices[0].message, {"role": "user", "content": "More?"}]
    client.chat.completions.create(model=MODEL, messages=history)
    rec = client.get_metrics(limit=1)[0]
    assert "failures" not in rec.extra
    assert rec.tokens_input_after < rec.tokens_input_before / 2
    sent = srv.last_body["messages"]
    assert sent[-2]["role"] == "assistant" and sent[-2]["content"] == reply_text(
        srv.requests[0].body
    )


def test_provider_object_limits_are_used(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    from headroom_core import OpenAIProvider

    raw = openai.OpenAI(api_key="test", base_url=srv.openai_base_url, max_retries=0)
    client = HeadroomClient(
        raw,
        provider=OpenAIProvider(model_context_limits={MODEL: 3000}),
        default_mode="optimize",
        store_url=store_url,
    )
    client.chat.completions.create(model=MODEL, messages=example_history, max_tokens=1000)
    assert count_tokens_messages(srv.last_body["messages"], model=MODEL) <= 2000


def test_simulate_request_is_the_body_that_would_be_sent(
    srv: ProviderServer, store_url: str, example_history: list[dict[str, Any]]
) -> None:
    client = _client(srv, store_url)
    plan = client.chat.completions.simulate(
        model=MODEL,
        messages=example_history,
        temperature=0.1,
        max_tokens=300,
        extra_body={"custom_flag": True},
        timeout=5,
    )
    assert plan.request == {
        "model": MODEL,
        "messages": plan.messages,
        "temperature": 0.1,
        "max_tokens": 300,
        "custom_flag": True,
    }


def test_a_client_from_with_options_leaves_the_parent_store_open(
    srv: ProviderServer, store_url: str
) -> None:
    client = _client(srv, store_url)
    msgs = [{"role": "user", "content": "hi"}]
    with client.copy(timeout=5.0) as fast:
        fast.chat.completions.create(model=MODEL, messages=msgs)
    client.chat.completions.create(model=MODEL, messages=msgs)
    assert len(client.get_metrics()) == 2


def test_mode_none_means_default_and_text_messages_are_the_sdks_business(
    srv: ProviderServer, store_url: str
) -> None:
    client = _client(srv, store_url, default_mode="optimize")
    client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], headroom_mode=None
    )
    assert client.get_metrics()[0].mode == "optimize"
    with pytest.raises(ConfigError, match="headroom_mode"):
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], headroom_mode=""
        )
    client.chat.completions.create(model=MODEL, messages="hi")  # forwarded as given
    assert srv.last_body["messages"] == "hi" and len(client.get_metrics()) == 1


def test_everything_after_the_client_is_keyword_only(store_url: str) -> None:
    raw = openai.OpenAI(api_key="test", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(TypeError, match="positional"):
        HeadroomClient(raw, "openai", "optimize")  # type: ignore[misc]
    client = HeadroomClient(raw, provider="openai", default_mode="optimize", store_url=store_url)
    assert (client.provider, client.default_mode) == ("openai", "optimize")

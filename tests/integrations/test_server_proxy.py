"""The server's provider routes, driven by the real ``openai`` and ``anthropic`` SDKs
(``base_url`` pointed at it), the server in front of the local fake provider on 127.0.0.1.

Each test asserts on what the upstream received (the fake provider records every body),
what the SDK got back, and the record in a real SQLite store.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

openai = pytest.importorskip("openai", reason="the openai SDK is needed: pip install -e '.[dev]'")
anthropic = pytest.importorskip("anthropic", reason="pip install -e '.[dev]'")
pytest.importorskip("starlette", reason='the server extra is needed: pip install ".[server]"')

from headroom_core.ccr import RETRIEVE_TOOL_NAME, ref_for  # noqa: E402
from headroom_core.config import HeadroomConfig  # noqa: E402
from headroom_core.metrics import open_store  # noqa: E402
from headroom_integrations.server import ServerSettings, create_app  # noqa: E402

from .provider_server import (  # noqa: E402
    ProviderServer,
    count_input_tokens,
    count_output_tokens,
    reply_text,
)
from .server_harness import RunningServer, run_app  # noqa: E402

GPT = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
KEY = "sk-test-SECRET-4f9a1c77e2"  # must never reach a record or a log line
ROWS = [
    {"id": i, "status": "ok" if i % 13 else "error", "region": "eu-west-1", "latency_ms": 40 + i}
    for i in range(200)
]
TOOL_TEXT = json.dumps(ROWS, indent=2)
REF = ref_for(TOOL_TEXT)  # the ref SmartCrusher stores the original under


def chat_history() -> list[dict[str, Any]]:
    call = {"id": "c1", "type": "function", "function": {"name": "query", "arguments": "{}"}}
    return [
        {"role": "system", "content": "You are an SRE assistant."},
        {"role": "user", "content": "Which requests failed?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": TOOL_TEXT},
    ]


def claude_history() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Which requests failed?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "tu1", "name": "query", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "tu1", "content": TOOL_TEXT}],
        },
    ]


@pytest.fixture(scope="module")
def upstream() -> Iterator[ProviderServer]:
    with ProviderServer(cached_tokens=16) as s:
        yield s


@pytest.fixture()
def up(upstream: ProviderServer) -> ProviderServer:
    upstream.reset()
    return upstream


@pytest.fixture()
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'metrics.db'}"


def _server(up: ProviderServer, store_url: str, **settings: Any) -> Any:
    base = {
        "openai_base_url": up.openai_base_url,
        "anthropic_base_url": up.base_url,
        "store": store_url,
    }
    return run_app(create_app(ServerSettings(**{**base, **settings})))


def _oai(srv: RunningServer, **kwargs: Any) -> Any:
    return openai.OpenAI(api_key=KEY, base_url=srv.openai_base_url, max_retries=0, **kwargs)


def _ant(srv: RunningServer, **kwargs: Any) -> Any:
    return anthropic.Anthropic(api_key=KEY, base_url=srv.base_url, max_retries=0, **kwargs)


def _records(srv: RunningServer, store_url: str) -> list[Any]:
    srv.state.sink.flush()
    with open_store(store_url) as store:
        return store.get_metrics(limit=None)


def _tool_texts(body: dict[str, Any]) -> list[str]:
    out = []
    for m in body["messages"]:
        if m.get("role") == "tool":
            out.append(m["content"])
        elif isinstance(m.get("content"), list):
            out += [b["content"] for b in m["content"] if b.get("type") == "tool_result"]
    return out


# -- compressed upstream, sync and async, streams ------------------------------------------


def test_openai_sync_request_goes_upstream_compressed_and_is_recorded(
    up: ProviderServer, store_url: str
) -> None:
    with _server(up, store_url) as srv:
        done = _oai(srv).chat.completions.create(model=GPT, messages=chat_history())
        sent = up.last_body
        assert done.choices[0].message.content == reply_text(sent)
        assert len(_tool_texts(sent)[0]) < len(TOOL_TEXT) / 3  # compressed on the way
        assert REF in _tool_texts(sent)[0]  # a lossy cut: its marker names the ref...
        assert any(t["function"]["name"] == RETRIEVE_TOOL_NAME for t in sent["tools"])  # ...
        assert up.requests[-1].headers["authorization"] == f"Bearer {KEY}"  # the key goes on
        (record,) = _records(srv, store_url)
    assert (record.source, record.mode, record.provider) == ("server", "optimize", "openai")
    assert record.tokens_input_after < record.tokens_input_before / 3
    assert record.tokens_output == done.usage.completion_tokens
    assert record.cached_tokens == 16
    assert record.extra["api"] == "/v1/chat/completions"


def test_openai_async_stream_passes_chunks_and_records_usage(
    up: ProviderServer, store_url: str
) -> None:
    async def run(srv: RunningServer) -> tuple[list[str], Any]:
        client = openai.AsyncOpenAI(api_key=KEY, base_url=srv.openai_base_url, max_retries=0)
        stream = await client.chat.completions.create(
            model=GPT,
            messages=chat_history(),
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces, usage = [], None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            usage = chunk.usage or usage
        await client.close()
        return pieces, usage

    with _server(up, store_url) as srv:
        pieces, usage = asyncio.run(run(srv))
        text = reply_text(up.last_body)
        assert "".join(pieces) == text and len(pieces) > 3  # chunk by chunk
        assert len(_tool_texts(up.last_body)[0]) < len(TOOL_TEXT) / 3
        (record,) = _records(srv, store_url)
    assert record.stream and record.tokens_output == usage.completion_tokens > 0


def test_anthropic_sync_and_async_stream(up: ProviderServer, store_url: str) -> None:
    with _server(up, store_url) as srv:
        done = _ant(srv).messages.create(
            model=CLAUDE, max_tokens=256, system="Be terse.", messages=claude_history()
        )
        sent = up.last_body
        assert done.content[0].text == reply_text(sent)
        assert sent["system"] == "Be terse."
        assert len(_tool_texts(sent)[0]) < len(TOOL_TEXT) / 3

        async def run() -> str:
            client = anthropic.AsyncAnthropic(api_key=KEY, base_url=srv.base_url, max_retries=0)
            async with client.messages.stream(
                model=CLAUDE, max_tokens=256, messages=claude_history()
            ) as stream:
                text = await stream.get_final_text()
            await client.close()
            return text

        assert asyncio.run(run()) == reply_text(up.last_body)
        headers = up.requests[-1].headers  # this SDK sends its key as a bearer token
        assert KEY in (headers.get("x-api-key"), headers.get("authorization", "")[7:])
        records = _records(srv, store_url)
    assert [r.stream for r in sorted(records, key=lambda r: r.timestamp)] == [False, True]
    assert all(r.provider == "anthropic" and r.tokens_output for r in records)


# -- modes -------------------------------------------------------------------------------------


def test_audit_sends_the_request_unchanged_and_off_records_nothing(
    up: ProviderServer, store_url: str
) -> None:
    with _server(up, store_url) as srv:
        client = _oai(srv, default_headers={"x-headroom-mode": "audit"})
        client.chat.completions.create(model=GPT, messages=chat_history())
        assert up.last_body["messages"] == chat_history()
        assert "tools" not in up.last_body
        assert "x-headroom-mode" not in up.requests[-1].headers  # ours, not forwarded
        (record,) = _records(srv, store_url)
        assert record.mode == "audit"
        assert record.extra["projected_tokens_after"] < record.tokens_input_before / 3

        _oai(srv, default_headers={"x-headroom-mode": "off"}).chat.completions.create(
            model=GPT, messages=chat_history()
        )
        assert up.last_body["messages"] == chat_history()
        assert len(_records(srv, store_url)) == 1

    with _server(up, store_url, mode="audit") as srv:  # the server's default mode
        _oai(srv).chat.completions.create(model=GPT, messages=chat_history())
        assert up.last_body["messages"] == chat_history()

        with pytest.raises(openai.BadRequestError, match="x-headroom-mode"):
            _oai(srv, default_headers={"x-headroom-mode": "fast"}).chat.completions.create(
                model=GPT, messages=chat_history()
            )


# -- errors ------------------------------------------------------------------------------------


def test_provider_errors_come_back_with_status_and_body(up: ProviderServer, store_url: str) -> None:
    with _server(up, store_url) as srv:
        up.queue_error(429, message="slow down, scripted")
        with pytest.raises(openai.RateLimitError, match="slow down, scripted") as info:
            _oai(srv).chat.completions.create(model=GPT, messages=chat_history())
        assert info.value.status_code == 429
        assert info.value.response.headers["x-request-id"].startswith("req_test")

        up.queue_error(500, message="scripted outage")
        with pytest.raises(anthropic.InternalServerError, match="scripted outage"):
            _ant(srv).messages.create(model=CLAUDE, max_tokens=64, messages=claude_history())

        up.queue_error(400, message="bad stream request")
        with pytest.raises(openai.BadRequestError, match="bad stream request"):
            _oai(srv).chat.completions.create(model=GPT, messages=chat_history(), stream=True)
        records = sorted(_records(srv, store_url), key=lambda r: r.timestamp)
    assert [r.error for r in records] == [
        "UpstreamError: HTTP 429 requests",
        "UpstreamError: HTTP 500 api_error",
        "UpstreamError: HTTP 400 invalid_request_error",
    ]


def test_an_unreachable_upstream_is_a_502_saying_so(up: ProviderServer, store_url: str) -> None:
    closed = ProviderServer().start()
    dead = closed.base_url
    closed.close()
    with _server(up, store_url, openai_base_url=f"{dead}/v1", anthropic_base_url=dead) as srv:
        with pytest.raises(openai.APIStatusError, match="could not be reached") as info:
            _oai(srv).chat.completions.create(model=GPT, messages=chat_history())
        assert info.value.status_code == 502
        with pytest.raises(anthropic.APIStatusError, match="could not be reached") as ainfo:
            _ant(srv).messages.create(model=CLAUDE, max_tokens=64, messages=claude_history())
        assert ainfo.value.status_code == 502
        records = _records(srv, store_url)
    assert len(records) == 2 and all(r.error.startswith("Connect") for r in records)


def test_a_compression_failure_sends_the_request_unchanged_and_records_it(
    up: ProviderServer, store_url: str
) -> None:
    tiny = HeadroomConfig(model_context_limits={GPT: 100})  # the protected part cannot fit
    with _server(up, store_url, config=tiny) as srv:
        done = _oai(srv).chat.completions.create(model=GPT, messages=chat_history())
        assert up.last_body["messages"] == chat_history()
        assert done.choices[0].message.content == reply_text(up.last_body)
        (record,) = _records(srv, store_url)
    assert "BudgetError" in record.extra["failures"][0]
    assert record.tokens_input_after == record.tokens_input_before


# -- the retrieval loop ----------------------------------------------------------------------


def _retrieve_call(call_id: str = "r1", query: str | None = None) -> tuple[str, str, dict]:
    args: dict[str, Any] = {"ref": REF}
    if query:
        args["query"] = query
    return (call_id, RETRIEVE_TOOL_NAME, args)


def test_openai_retrieval_loop_answers_from_the_store(up: ProviderServer, store_url: str) -> None:
    with _server(up, store_url) as srv:
        up.queue_reply(tool_calls=[_retrieve_call()])
        done = _oai(srv).chat.completions.create(model=GPT, messages=chat_history())
        first, second = up.requests[-2].body, up.requests[-1].body
        assert len(up.requests) == 2
        assert second["messages"][: len(first["messages"])] == first["messages"]
        assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == RETRIEVE_TOOL_NAME
        answer = second["messages"][-1]
        assert (answer["role"], answer["tool_call_id"]) == ("tool", "r1")
        assert json.loads(answer["content"]) == ROWS  # the original, exactly
        assert done.choices[0].message.content == reply_text(second)
        assert done.choices[0].message.tool_calls is None
        (record,) = _records(srv, store_url)
    assert record.extra["retrievals"] == 1
    # usage summed over both upstream calls
    assert record.extra["usage_input_tokens"] == count_input_tokens(first) + count_input_tokens(
        second
    )
    assert record.tokens_output == 1 + count_output_tokens(reply_text(second))


def test_openai_retrieval_loop_streaming(up: ProviderServer, store_url: str) -> None:
    with _server(up, store_url) as srv:
        up.queue_reply(tool_calls=[_retrieve_call(query="error")])
        stream = _oai(srv).chat.completions.create(model=GPT, messages=chat_history(), stream=True)
        chunks = list(stream)
        second = up.last_body
        assert len(up.requests) == 2
        filtered = second["messages"][-1]["content"]
        assert filtered.startswith("[headroom: 16 of 200 items")  # the query filtered it
        assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == reply_text(second)


def test_anthropic_retrieval_loop_plain_and_streaming(up: ProviderServer, store_url: str) -> None:
    with _server(up, store_url) as srv:
        up.queue_reply("Let me look.", tool_calls=[_retrieve_call("toolu_1")])
        done = _ant(srv).messages.create(model=CLAUDE, max_tokens=256, messages=claude_history())
        second = up.last_body
        assert second["messages"][-2]["content"][-1]["name"] == RETRIEVE_TOOL_NAME
        result = second["messages"][-1]["content"][0]
        assert result["tool_use_id"] == "toolu_1" and json.loads(result["content"]) == ROWS
        assert [b.type for b in done.content] == ["text"]
        assert done.content[0].text == reply_text(second)

        up.reset()
        up.queue_reply(tool_calls=[_retrieve_call("toolu_2")])
        with _ant(srv).messages.stream(
            model=CLAUDE, max_tokens=256, messages=claude_history()
        ) as stream:
            final = stream.get_final_message()
        assert len(up.requests) == 2
        assert [b.type for b in final.content] == ["text"]
        assert final.content[0].text == reply_text(up.last_body)
        records = _records(srv, store_url)
    assert sorted(r.extra.get("retrievals") for r in records) == [1, 1]


def test_a_reply_calling_other_tools_too_goes_to_the_caller_and_ours_is_answered_next(
    up: ProviderServer, store_url: str
) -> None:
    with _server(up, store_url) as srv:
        client = _oai(srv)
        up.queue_reply(tool_calls=[_retrieve_call(), ("c2", "query", {"q": "slow"})])
        done = client.chat.completions.create(model=GPT, messages=chat_history())
        calls = done.choices[0].message.tool_calls
        assert [c.function.name for c in calls] == [RETRIEVE_TOOL_NAME, "query"]
        assert len(up.requests) == 1

        history = [
            *chat_history(),
            done.choices[0].message.model_dump(exclude_unset=True, mode="json"),
            {"role": "tool", "tool_call_id": "c2", "content": "no slow requests"},
        ]
        client.chat.completions.create(model=GPT, messages=history)
        sent = up.last_body["messages"]
        tools = [m for m in sent if m.get("role") == "tool"]
        assert [t["tool_call_id"] for t in tools] == ["c1", "c2", "r1"]
        assert json.loads(tools[2]["content"]) == ROWS


def test_no_retrieve_loop_leaves_the_tool_out(up: ProviderServer, store_url: str) -> None:
    with _server(up, store_url, retrieve_loop=False) as srv:
        _oai(srv).chat.completions.create(model=GPT, messages=chat_history())
        assert "tools" not in up.last_body
        assert len(_tool_texts(up.last_body)[0]) < len(TOOL_TEXT) / 3


# -- keys ----------------------------------------------------------------------------------------


def test_keys_are_never_stored_or_logged(
    up: ProviderServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store_url = f"sqlite:///{tmp_path / 'metrics.db'}"
    originals = f"sqlite:///{tmp_path / 'originals.db'}"
    with caplog.at_level(logging.DEBUG), _server(up, store_url, originals=originals) as srv:
        _oai(srv).chat.completions.create(model=GPT, messages=chat_history())
        list(_oai(srv).chat.completions.create(model=GPT, messages=chat_history(), stream=True))
        _ant(srv).messages.create(model=CLAUDE, max_tokens=64, messages=claude_history())
        up.queue_error(401, message="Incorrect API key provided")
        with pytest.raises(openai.AuthenticationError):
            _oai(srv).chat.completions.create(model=GPT, messages=chat_history())
        assert len(_records(srv, store_url)) == 4
    assert up.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it did go upstream
    assert caplog.records  # something was logged (httpx, uvicorn, ours)...
    assert KEY not in caplog.text and KEY[8:] not in caplog.text  # ...never the key
    for path in tmp_path.iterdir():  # the SQLite files and their WAL / SHM companions
        data = path.read_bytes()
        assert KEY.encode() not in data and KEY[8:].encode() not in data, path.name

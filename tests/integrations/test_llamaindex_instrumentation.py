"""HeadroomEventHandler on LlamaIndex's real instrumentation: one row per LLM call, read
back from a real SQLite file, with exact token counts, usage, cost and the compression
stats of HeadroomLLM; store failures are logged once and never raised."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import MockLLM

from headroom_core import ConfigError, StorageError
from headroom_core.metrics import RequestMetrics, SQLiteMetricsStore
from headroom_core.providers import provider_for_model
from headroom_core.tokens import count_tokens_messages, count_tokens_text, get_tokenizer
from headroom_core.waste import detect_waste
from headroom_integrations._compress import count_tools
from headroom_integrations.llamaindex.instrumentation import HeadroomEventHandler
from headroom_integrations.llamaindex.llm import HeadroomLLM

from .test_llamaindex_llm import (
    ANSWER,
    MODEL,
    ScriptedLLM,
    octokit,
    openai_call,
    public,
    repo_script,
    repo_tool,
    run_agent,
    tool_history,
)

# LlamaIndex's workflows inspect the agents' pydantic attributes (deprecated ones included).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

SOURCE = "llamaindex"


@pytest.fixture
def repo_json() -> str:
    return octokit("get-repository__00_get_200.json")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "metrics.db"


@pytest.fixture
def handler(db: Path) -> Iterator[HeadroomEventHandler]:
    with HeadroomEventHandler(f"sqlite:///{db}") as h:
        yield h


def rows(db: Path) -> list[RequestMetrics]:
    """Every record in the file, oldest first, through a connection of our own."""
    with SQLiteMetricsStore(db) as store:
        return list(reversed(store.get_metrics(None)))


def cost(model: str, before: int, output: int, cached: int = 0) -> float | None:
    return provider_for_model(model).estimate_cost(
        input_tokens=before, output_tokens=output, model=model, cached_tokens=cached
    )


# -- agents ------------------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [True, False], ids=["astream_chat", "achat"])
def test_agent_run_records_one_exact_row_per_llm_call(
    db: Path, repo_json: str, streaming: bool
) -> None:
    plain = ScriptedLLM(script=repo_script())  # the same run, unwrapped and unrecorded
    run_agent(plain, [repo_tool(repo_json, [])], streaming=streaming)

    inner = ScriptedLLM(script=repo_script())
    with HeadroomEventHandler(f"sqlite:///{db}"):
        answer = run_agent(HeadroomLLM(llm=inner), [repo_tool(repo_json, [])], streaming=streaming)
    assert answer == ANSWER

    recorded = rows(db)
    assert len(recorded) == len(inner.received) == 2
    tok = get_tokenizer(MODEL)
    call_tokens = (
        3
        + tok.count_text("get_repository")
        + tok.count_text('{"repo": "octokit-fixture-org/hello-world"}')
    )
    outputs = [call_tokens - 3, count_tokens_text(ANSWER)]
    # the tool definitions FunctionAgent sends with every call count, as the provider bills them
    tools = count_tools(inner.call_kwargs[0]["tools"], MODEL)
    assert tools > 20
    for row, sent, uncompressed, output in zip(
        recorded, inner.received, plain.received, outputs, strict=True
    ):
        after = count_tokens_messages(public(sent), model=MODEL) + tools
        before = count_tokens_messages(public(uncompressed), model=MODEL) + tools
        assert (row.tokens_input_before, row.tokens_input_after) == (before, after)
        assert row.extra["tools_tokens"] == tools
        assert row.tokens_output == output
        assert row.extra["tokens_output_source"] == "counted"
        assert (row.model, row.provider, row.source, row.mode) == (
            MODEL,
            "openai",
            SOURCE,
            "optimize",
        )
        assert row.stream is streaming
        assert row.error is None
        assert row.cost_before == pytest.approx(cost(MODEL, before, output))
        assert row.cost_after == pytest.approx(cost(MODEL, after, output))
        assert row.extra["llm"] == "ScriptedLLM"
        assert row.extra["event"]["tokens_before"] == before
        assert row.extra["event"]["tokens_after"] == after
    first, second = recorded
    assert first.transforms_applied == () and first.tokens_saved == 0
    assert second.transforms_applied == ("smart_crusher:1",)
    assert second.tokens_saved > 1000


# -- usage, cost, output ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "response_kwargs", "expected"),
    [
        (  # OpenAI: raw is the ChatCompletion, its usage with cached prompt tokens
            {
                "usage": {
                    "prompt_tokens": 2300,
                    "completion_tokens": 41,
                    "prompt_tokens_details": {"cached_tokens": 1024},
                }
            },
            {},
            (41, 1024, 2300),
        ),
        (  # Anthropic: the Message's usage
            {"usage": {"input_tokens": 2100, "output_tokens": 17, "cache_read_input_tokens": 512}},
            {},
            (17, 512, 2100),
        ),
        (  # LlamaIndex's OpenAI LLM also copies the counts into additional_kwargs
            None,
            {"prompt_tokens": 880, "completion_tokens": 9, "total_tokens": 889},
            (9, None, 880),
        ),
    ],
    ids=["openai_raw", "anthropic_raw", "additional_kwargs"],
)
def test_provider_usage_is_recorded(
    handler: HeadroomEventHandler,
    db: Path,
    repo_json: str,
    raw: Any,
    response_kwargs: dict[str, Any],
    expected: tuple[int, int | None, int],
) -> None:
    inner = ScriptedLLM(
        script=[ChatMessage(role="assistant", content="ok")],
        raw=raw,
        response_kwargs=response_kwargs,
    )
    HeadroomLLM(llm=inner).chat(tool_history(repo_json))
    (row,) = rows(db)
    output, cached, usage_input = expected
    assert (row.tokens_output, row.cached_tokens) == (output, cached)
    assert row.extra["usage_input_tokens"] == usage_input
    assert row.extra["tokens_output_source"] == "usage"
    assert row.cost_after == pytest.approx(cost(MODEL, row.tokens_input_after, output, cached or 0))
    assert row.cost_before > row.cost_after


def test_calls_of_an_llm_that_chats_through_complete_are_recorded_once(
    handler: HeadroomEventHandler, db: Path
) -> None:
    llm = MockLLM()  # CustomLLM: chat calls complete, achat calls chat, streams likewise
    history = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Name three GitHub repository fields."),
    ]
    prompt = "Name three GitHub repository fields."

    async def astream_chat() -> None:
        async for _ in await llm.astream_chat(history):
            pass

    async def astream_complete() -> None:
        async for _ in await llm.astream_complete(prompt):
            pass

    llm.chat(history)
    asyncio.run(llm.achat(history))
    list(llm.stream_chat(history))
    asyncio.run(astream_chat())
    llm.complete(prompt)
    asyncio.run(llm.acomplete(prompt))
    list(llm.stream_complete(prompt))
    asyncio.run(astream_complete())

    recorded = rows(db)
    assert [r.extra["kind"] for r in recorded] == ["chat"] * 4 + ["completion"] * 4
    assert [r.stream for r in recorded] == [False, False, True, True] * 2
    chat_tokens = count_tokens_messages(public(history), model=MODEL)
    prompt_tokens = count_tokens_text(prompt, model=MODEL)
    assert [r.tokens_input_after for r in recorded] == [chat_tokens] * 4 + [prompt_tokens] * 4
    assert all(r.tokens_input_before == r.tokens_input_after for r in recorded)
    assert all(r.model == "gpt-4o" and r.extra["llm"] == "MockLLM" for r in recorded)
    # MockLLM echoes its prompt: the output is counted from what it returned.
    assert recorded[4].tokens_output == prompt_tokens


def test_the_model_is_the_llms_else_the_handlers(db: Path) -> None:
    with HeadroomEventHandler(f"sqlite:///{db}", model="gpt-4.1-mini"):
        MockLLM().complete("hello")  # MockLLM names no model
        ScriptedLLM(script=[ChatMessage(role="assistant", content="hi")]).chat(
            [ChatMessage(role="user", content="hello")]
        )
    assert [r.model for r in rows(db)] == ["gpt-4.1-mini", MODEL]


def test_concurrent_calls_each_get_their_own_compression(
    handler: HeadroomEventHandler, db: Path, repo_json: str
) -> None:
    issues = octokit("paginate-issues__00_get_200.json")
    inner = ScriptedLLM(script=[ChatMessage(role="assistant", content="ok")])
    llm = HeadroomLLM(llm=inner)
    histories = [tool_history(repo_json), tool_history(issues)]

    async def both() -> None:
        await asyncio.gather(*(llm.achat(h) for h in histories))

    asyncio.run(both())
    recorded = rows(db)
    assert len(recorded) == 2
    by_after = {r.tokens_input_after: r for r in recorded}
    for sent in inner.received:
        row = by_after[count_tokens_messages(public(sent), model=MODEL)]
        original = next(h for h in histories if h[0] is sent[0])  # passed through as is
        assert row.tokens_input_before == count_tokens_messages(public(original), model=MODEL)


def test_adding_only_the_event_handler_still_attaches_compression(db: Path, repo_json: str) -> None:
    handler = HeadroomEventHandler(f"sqlite:///{db}")
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        inner = ScriptedLLM(script=[ChatMessage(role="assistant", content="ok")])
        history = tool_history(repo_json)
        HeadroomLLM(llm=inner).chat(history)
    finally:
        root.event_handlers = [h for h in root.event_handlers if h is not handler]
        handler.close()
    (row,) = rows(db)
    assert row.tokens_input_before == count_tokens_messages(public(history), model=MODEL)
    assert row.tokens_input_after == count_tokens_messages(public(inner.received[0]), model=MODEL)
    assert row.transforms_applied == ("smart_crusher:1",)


# -- errors and audit -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["chat", "achat", "stream_chat"])
def test_a_failing_call_is_recorded_and_its_error_raised(
    handler: HeadroomEventHandler, db: Path, method: str
) -> None:
    llm = HeadroomLLM(llm=ScriptedLLM(fail=True))
    history = [ChatMessage(role="user", content="hi")]
    with pytest.raises(RuntimeError, match="provider unavailable"):
        result = getattr(llm, method)(history)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    (row,) = rows(db)
    assert row.error is not None and "provider unavailable" in row.error
    assert row.tokens_input_after == count_tokens_messages(public(history), model=MODEL)
    assert row.tokens_output is None


def test_audit_mode_records_the_waste_of_what_was_sent(db: Path, repo_json: str) -> None:
    inner = ScriptedLLM(script=[ChatMessage(role="assistant", content="ok")])
    with HeadroomEventHandler(f"sqlite:///{db}", mode="audit"):
        HeadroomLLM(llm=inner, mode="audit").chat(tool_history(repo_json))
    (row,) = rows(db)
    expected = detect_waste(public(inner.received[0]), get_tokenizer(MODEL)).to_dict()
    assert row.waste_signals == expected
    assert expected["json_bloat_tokens"] > 0
    assert row.mode == "audit"
    assert row.tokens_input_before == row.tokens_input_after


# -- the store and registration ---------------------------------------------------------------


def test_a_store_that_cannot_be_opened_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="headroom_integrations")
    with HeadroomEventHandler(f"sqlite:///{tmp_path}") as handler:  # a directory
        llm = ScriptedLLM(script=[ChatMessage(role="assistant", content="ok")])
        for _ in range(3):
            assert llm.chat([ChatMessage(role="user", content="hi")]).message.content == "ok"
    assert handler.dropped == 3
    warnings = [r for r in caplog.records if r.name == "headroom_integrations"]
    assert len(warnings) == 1 and "cannot record metrics" in warnings[0].getMessage()
    with pytest.raises(StorageError):
        handler.summary()


def test_a_store_that_fails_later_is_logged_once(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="headroom_integrations")
    store = SQLiteMetricsStore(db)
    store.close()
    llm = ScriptedLLM(script=[ChatMessage(role="assistant", content="ok")])
    with HeadroomEventHandler(store=store) as handler:
        for _ in range(2):
            llm.chat([ChatMessage(role="user", content="hi")])
    assert handler.dropped == 2
    assert len([r for r in caplog.records if r.name == "headroom_integrations"]) == 1


def test_register_unregister_and_the_summary(db: Path) -> None:
    llm = ScriptedLLM(script=[ChatMessage(role="assistant", content="ok")])
    history = [ChatMessage(role="user", content="hi")]
    handler = HeadroomEventHandler(f"sqlite:///{db}")
    root = get_dispatcher()
    assert handler.register() is handler
    handler.register()  # idempotent: still one row per call
    assert sum(h is handler for h in root.event_handlers) == 1
    assert sum(h is handler.span_handler for h in root.span_handlers) == 1
    llm.chat(history)
    handler.unregister()
    handler.unregister()
    llm.chat(history)  # not recorded any more
    assert handler not in root.event_handlers
    assert all(h is not handler.span_handler for h in root.span_handlers)
    summary = handler.summary()
    assert summary.requests == 1
    assert [r.request_id for r in handler.get_metrics()] == [r.request_id for r in rows(db)]
    handler.close()


def test_configuration_errors_raise() -> None:
    with pytest.raises(ConfigError, match="mode"):
        HeadroomEventHandler("memory://", mode="simulate")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown scheme"):
        HeadroomEventHandler("mysql://db")


def test_tool_call_arguments_that_are_not_json_are_counted_as_text(
    handler: HeadroomEventHandler, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="headroom_integrations")
    llm = ScriptedLLM(script=[calling_with_bad_arguments()])
    llm.chat([ChatMessage(role="user", content="hi")])
    (row,) = rows(db)
    assert row.tokens_output == count_tokens_text("f") + count_tokens_text("{not json")
    assert not caplog.records


def calling_with_bad_arguments() -> ChatMessage:
    call = openai_call("c1", "f", {})
    call["function"]["arguments"] = "{not json"
    return ChatMessage(role="assistant", content=None, additional_kwargs={"tool_calls": [call]})

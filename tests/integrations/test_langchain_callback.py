"""HeadroomCallbackHandler: one row per chat-model call, read back from a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler, dispatch_custom_event
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatResult
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.utils.function_calling import convert_to_openai_tool

from headroom_core import ConfigError, StorageError, Tokenizer, count_tokens_messages
from headroom_core.metrics import RequestMetrics, SQLiteMetricsStore, open_store
from headroom_core.providers import provider_for_model
from headroom_core.tokens import count_tokens_text, get_tokenizer
from headroom_core.waste import detect_waste
from headroom_integrations.langchain import (
    EVENT_NAME,
    AsyncHeadroomCallbackHandler,
    HeadroomCallbackHandler,
    HeadroomRunnable,
    to_neutral,
)
from headroom_integrations.langchain._tools import count_tool_tokens

SYSTEM = "You are a support agent. Answer in one sentence."
QUESTION = "Which users are suspended?"


def _users(n: int = 80) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "name": f"user{i}",
            "email": f"user{i}@example.com",
            "status": "suspended" if i % 7 == 0 else "active",
            "created_at": f"2024-01-{i % 28 + 1:02d}T10:00:00Z",
            "score": i * 3 % 17,
        }
        for i in range(n)
    ]


def _history() -> list[BaseMessage]:
    """One tool unit whose output is a pretty-printed JSON array: compressible, wasteful."""
    return [
        AIMessage("", tool_calls=[{"name": "list_users", "args": {}, "id": "call_1"}]),
        ToolMessage(json.dumps(_users(), indent=2), tool_call_id="call_1"),
    ]


PROMPT = ChatPromptTemplate.from_messages(
    [("system", SYSTEM), ("human", "{q}"), MessagesPlaceholder("history")]
)
INPUTS = {"q": QUESTION, "history": _history()}


def _fake(*replies: AIMessage | str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter(replies))


def _url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'metrics.db'}"  # four slashes: an absolute path


def _rows(url: str) -> list[RequestMetrics]:
    """Every row in the file, oldest first, through a store of its own."""
    with open_store(url) as store:
        return list(reversed(store.get_metrics(None)))


def _count(messages: list[BaseMessage], model: str = "gpt-4o") -> int:
    return count_tokens_messages(to_neutral(messages), model=model)


class Spy(BaseCallbackHandler):
    """What the models received and what the entry points reported."""

    def __init__(self) -> None:
        self.received: list[list[BaseMessage]] = []
        self.events: list[dict[str, Any]] = []

    def on_chat_model_start(
        self, serialized: Any, messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        if (kwargs.get("invocation_params") or {}).get("_type") != "headroom":
            self.received.append(messages[0])

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == EVENT_NAME:
            self.events.append(data)


@pytest.fixture(autouse=True)
def no_swallowed_callback_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """LangChain logs and swallows exceptions raised in handlers; none may happen here."""
    caplog.set_level(logging.WARNING)
    yield
    swallowed = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("langchain_core") and "callback" in r.getMessage()
    ]
    assert not swallowed


def _leaks(handler: HeadroomCallbackHandler | AsyncHeadroomCallbackHandler) -> list[Any]:
    r = handler._recorder
    return [x for x in (r._parents, r._calls, r._pending, r._by_run) if x]


# --- a plain model call ----------------------------------------------------------------------


def test_plain_call_records_exact_input_tokens(tmp_path: Any) -> None:
    handler = HeadroomCallbackHandler(_url(tmp_path))
    messages = [SystemMessage(SYSTEM), HumanMessage(QUESTION)]
    reply = _fake("Nobody is.").invoke(messages, config={"callbacks": [handler]})
    assert reply.content == "Nobody is."

    (row,) = _rows(_url(tmp_path))
    by_hand = Tokenizer("gpt-4o").count_messages(
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    )
    assert row.tokens_input_after == row.tokens_input_before == _count(messages) == by_hand
    assert (row.model, row.provider, row.source, row.mode) == (
        "gpt-4o",
        "openai",
        "langchain",
        "optimize",
    )
    assert row.transforms_applied == () and row.waste_signals == {} and row.error is None
    # No usage in the response: the output is counted from the generated text.
    assert row.tokens_output == count_tokens_text("Nobody is.")
    assert row.extra["tokens_output_source"] == "counted"
    expected = provider_for_model("gpt-4o").estimate_cost(
        input_tokens=by_hand, output_tokens=row.tokens_output, model="gpt-4o"
    )
    assert row.cost_before == row.cost_after == pytest.approx(expected)
    assert handler.summary().requests == 1
    assert [m.request_id for m in handler.get_metrics(5)] == [row.request_id]
    assert not _leaks(handler)


def test_model_name_comes_from_the_call_then_the_handler(tmp_path: Any) -> None:
    class NamedFake(GenericFakeChatModel):
        model: str = "gpt-4o-mini"

    handler = HeadroomCallbackHandler(_url(tmp_path), model="gpt-3.5-turbo")
    messages = [HumanMessage("héllo wörld " * 20)]
    NamedFake(messages=iter(["a"])).invoke(messages, config={"callbacks": [handler]})
    _fake("b").invoke(messages, config={"callbacks": [handler]})

    named, fallback = _rows(_url(tmp_path))
    assert named.model == "gpt-4o-mini"
    assert named.tokens_input_after == _count(messages, "gpt-4o-mini")
    assert fallback.model == "gpt-3.5-turbo"  # cl100k: a different count than o200k
    assert fallback.tokens_input_after == _count(messages, "gpt-3.5-turbo")
    assert fallback.tokens_input_after != named.tokens_input_after


def test_usage_metadata_gives_output_and_cached_tokens(tmp_path: Any) -> None:
    usage = {
        "input_tokens": 1234,
        "output_tokens": 56,
        "total_tokens": 1290,
        "input_token_details": {"cache_read": 1000},
    }
    handler = HeadroomCallbackHandler(_url(tmp_path), model="gpt-4o")
    _fake(AIMessage("x", usage_metadata=usage)).invoke(
        [HumanMessage(QUESTION)], config={"callbacks": [handler]}
    )
    (row,) = _rows(_url(tmp_path))
    assert (row.tokens_output, row.cached_tokens) == (56, 1000)
    assert row.extra["usage_input_tokens"] == 1234
    assert row.extra["tokens_output_source"] == "usage"
    n = row.tokens_input_after
    price = provider_for_model("gpt-4o").estimate_cost
    assert row.cost_after == pytest.approx(
        price(input_tokens=n, output_tokens=56, cached_tokens=1000, model="gpt-4o")
    )
    # Cached tokens are billed at the cached price: cheaper than the same call uncached.
    assert row.cost_after < price(input_tokens=n, output_tokens=56, model="gpt-4o")


def test_llm_output_token_usage_is_read_when_there_is_no_usage_metadata(tmp_path: Any) -> None:
    class OpenAIStyleFake(GenericFakeChatModel):
        def _generate(self, messages: Any, stop: Any = None, **kwargs: Any) -> ChatResult:
            result = super()._generate(messages, stop=stop, **kwargs)
            result.llm_output = {
                "token_usage": {
                    "prompt_tokens": 900,
                    "completion_tokens": 7,
                    "prompt_tokens_details": {"cached_tokens": 512},
                }
            }
            return result

    handler = HeadroomCallbackHandler(_url(tmp_path))
    OpenAIStyleFake(messages=iter(["y"])).invoke("hi", config={"callbacks": [handler]})
    (row,) = _rows(_url(tmp_path))
    assert (row.tokens_output, row.cached_tokens, row.extra["usage_input_tokens"]) == (7, 512, 900)


# --- compression stats from our entry points -------------------------------------------------


def test_runnable_in_a_chain_attaches_its_stats_to_the_model_row(tmp_path: Any) -> None:
    handler, spy = HeadroomCallbackHandler(_url(tmp_path)), Spy()
    chain = PROMPT | HeadroomRunnable() | _fake("user0, user7")
    chain.invoke(INPUTS, config={"callbacks": [handler, spy]})

    (row,) = _rows(_url(tmp_path))
    (event,) = spy.events
    (received,) = spy.received
    assert row.tokens_input_after == _count(received)  # what the model got, counted here
    assert row.tokens_input_after == event["tokens_after"]
    assert (
        row.tokens_input_before
        == event["tokens_before"]
        == _count(PROMPT.invoke(INPUTS).to_messages())
    )
    assert row.tokens_input_before > 2 * row.tokens_input_after  # the JSON array was crushed
    assert row.transforms_applied == tuple(event["transforms_applied"]) != ()
    assert row.cost_before > row.cost_after
    assert not _leaks(handler)


def test_a_compression_event_applies_to_the_next_model_call_only(tmp_path: Any) -> None:
    handler = HeadroomCallbackHandler(_url(tmp_path))
    second = RunnableLambda(lambda m: [HumanMessage(QUESTION), m]) | _fake("again")
    chain = PROMPT | HeadroomRunnable() | _fake("first") | second
    chain.invoke(INPUTS, config={"callbacks": [handler]})

    first_row, second_row = _rows(_url(tmp_path))
    assert first_row.transforms_applied and first_row.tokens_saved > 0
    assert second_row.transforms_applied == () and second_row.tokens_saved == 0


def test_an_event_inside_a_wrapping_run_applies_to_the_model_called_in_it(tmp_path: Any) -> None:
    """HeadroomChatModel's layout: the inner model's parent is the run that dispatched."""
    handler = HeadroomCallbackHandler(_url(tmp_path))
    payload = {"tokens_before": 500, "tokens_after": 100, "tokens_saved": 400,
               "transforms_applied": ["x:1"], "model": "gpt-4o", "mode": "optimize", "failures": []}  # fmt: skip
    inner = _fake("ok")

    def wrapper(messages: list[BaseMessage], config: RunnableConfig) -> Any:
        dispatch_custom_event(EVENT_NAME, payload, config=config)
        return inner.invoke(messages, config=config)

    unrelated = _fake("later")
    (RunnableLambda(wrapper) | (lambda m: [m]) | unrelated).invoke(
        [HumanMessage(QUESTION)], config={"callbacks": [handler]}
    )
    row, later = _rows(_url(tmp_path))
    assert row.transforms_applied == ("x:1",)
    assert row.tokens_input_before == row.tokens_input_after + 400
    assert later.transforms_applied == ()


def test_concurrent_chains_each_get_their_own_stats(tmp_path: Any) -> None:
    handler = HeadroomCallbackHandler(_url(tmp_path))
    n = 8
    histories = [
        [AIMessage("", tool_calls=[{"name": "list_users", "args": {}, "id": f"c{i}"}]),
         ToolMessage(json.dumps(_users(20 + 10 * i), indent=2), tool_call_id=f"c{i}")]
        for i in range(n)
    ]  # fmt: skip
    chain = PROMPT | HeadroomRunnable() | _fake(*["ok"] * n)
    chain.batch(
        [{"q": QUESTION, "history": h} for h in histories],
        config={"callbacks": [handler], "max_concurrency": 4},
    )
    rows = _rows(_url(tmp_path))
    assert len(rows) == n
    befores = sorted(r.tokens_input_before for r in rows)
    expected = sorted(
        _count(PROMPT.invoke({"q": QUESTION, "history": h}).to_messages()) for h in histories
    )
    assert befores == expected  # every row got the event of its own chain
    assert all(r.tokens_saved > 0 for r in rows)
    assert not _leaks(handler)


# --- audit mode, errors, streaming -----------------------------------------------------------


def test_audit_mode_records_waste_signals(tmp_path: Any) -> None:
    handler = HeadroomCallbackHandler(_url(tmp_path), mode="audit")
    messages = [
        SystemMessage(f"{SYSTEM} Today is 2024-06-01T09:30:00Z, request req_8f3a9c21d7."),
        HumanMessage(QUESTION),
        *_history(),
    ]
    _fake("ok").invoke(messages, config={"callbacks": [handler]})
    (row,) = _rows(_url(tmp_path))
    neutral = to_neutral(messages)
    assert row.mode == "audit"
    assert row.waste_signals == detect_waste(neutral, get_tokenizer("gpt-4o")).to_dict()
    assert row.waste_signals["json_bloat_tokens"] > 1000
    assert row.waste_signals["dynamic_date_tokens"] > 0


def test_optimize_mode_records_no_waste_signals(tmp_path: Any) -> None:
    handler = HeadroomCallbackHandler(_url(tmp_path))
    _fake("ok").invoke([HumanMessage(QUESTION), *_history()], config={"callbacks": [handler]})
    assert _rows(_url(tmp_path))[0].waste_signals == {}


def test_a_failed_model_call_is_recorded_with_its_error(tmp_path: Any) -> None:
    handler = HeadroomCallbackHandler(_url(tmp_path))
    with pytest.raises(StopIteration):
        _fake().invoke([HumanMessage(QUESTION)], config={"callbacks": [handler]})
    (row,) = _rows(_url(tmp_path))
    assert row.error is not None and row.error.startswith("StopIteration")
    assert row.tokens_output is None and row.tokens_input_after == _count([HumanMessage(QUESTION)])
    assert not _leaks(handler)


def test_streaming_is_flagged(tmp_path: Any) -> None:
    handler = HeadroomCallbackHandler(_url(tmp_path))
    chunks = list(_fake("one two three").stream("hi", config={"callbacks": [handler]}))
    assert len(chunks) > 1
    (row,) = _rows(_url(tmp_path))
    assert row.stream is True and row.tokens_output == count_tokens_text("one two three")


# --- the store never breaks the run -----------------------------------------------------------


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "headroom_integrations"]


def test_a_store_that_cannot_be_opened_is_logged_once(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    handler = HeadroomCallbackHandler(f"sqlite:///{tmp_path}")  # a directory
    assert handler.raise_error is False
    for _ in range(3):
        assert (
            _fake("still here").invoke("hi", config={"callbacks": [handler]}).content
            == "still here"
        )
    (warning,) = _warnings(caplog)
    assert str(tmp_path) in warning.getMessage()
    assert handler.dropped == 3
    with pytest.raises(StorageError, match="directory"):
        handler.summary()


def test_a_closed_store_is_logged_once_and_the_chain_returns(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    store = SQLiteMetricsStore(tmp_path / "closed.db")
    store.close()
    handler = HeadroomCallbackHandler(store=store)
    chain = PROMPT | HeadroomRunnable() | _fake("a", "b")
    assert chain.invoke(INPUTS, config={"callbacks": [handler]}).content == "a"
    assert chain.invoke(INPUTS, config={"callbacks": [handler]}).content == "b"
    (warning,) = _warnings(caplog)
    assert "closed" in warning.getMessage()
    assert handler.dropped == 2
    assert not _leaks(handler)


def test_a_malformed_url_or_mode_fails_at_construction() -> None:
    with pytest.raises(ConfigError, match="scheme"):
        HeadroomCallbackHandler("mysql://nowhere")
    with pytest.raises(ConfigError, match="mode"):
        HeadroomCallbackHandler("memory://", mode="compress")  # type: ignore[arg-type]


def test_pending_events_are_bounded(tmp_path: Any) -> None:
    from headroom_integrations.langchain import callback

    handler = HeadroomCallbackHandler("memory://")

    def flood(x: Any, config: RunnableConfig) -> Any:
        for _ in range(callback._MAX_EVENTS + 50):
            dispatch_custom_event(EVENT_NAME, {"tokens_saved": 1}, config=config)
        # while the chain runs, its own events stay pending but no more than the bound
        assert len(handler._recorder._pending) == callback._MAX_EVENTS
        return x

    (RunnableLambda(flood) | RunnableLambda(lambda x: x)).invoke(1, config={"callbacks": [handler]})
    assert not _leaks(handler)  # the runs ended: nothing can claim those events any more


# --- async ------------------------------------------------------------------------------------


def test_async_handler_with_ainvoke(tmp_path: Any) -> None:
    handler, spy = AsyncHeadroomCallbackHandler(_url(tmp_path), mode="audit"), Spy()
    chain = PROMPT | HeadroomRunnable() | _fake("a", "b", "c")

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(chain.ainvoke(INPUTS, config={"callbacks": [handler, spy]}) for _ in range(3))
        )

    assert sorted(m.content for m in asyncio.run(main())) == ["a", "b", "c"]
    rows = _rows(_url(tmp_path))
    assert len(rows) == 3
    expected_before = _count(PROMPT.invoke(INPUTS).to_messages())
    for row in rows:
        assert row.tokens_input_before == expected_before
        assert row.tokens_input_after == _count(spy.received[0]) < expected_before
        assert row.transforms_applied and row.mode == "optimize"  # the runnable's mode
        assert row.waste_signals  # the handler audits what the model received
    assert not _leaks(handler)


# --- the HeadroomChatModel wrapper -------------------------------------------------------------


def test_chat_model_wrapper_gives_one_row_for_the_inner_call(tmp_path: Any) -> None:
    from headroom_integrations.langchain import HeadroomChatModel

    handler, spy = HeadroomCallbackHandler(_url(tmp_path)), Spy()
    inner = _fake(
        AIMessage(
            "user0, user7",
            usage_metadata={"input_tokens": 600, "output_tokens": 5, "total_tokens": 605},
        )
    )
    messages = PROMPT.invoke(INPUTS).to_messages()
    reply = HeadroomChatModel(llm=inner).invoke(messages, config={"callbacks": [handler, spy]})
    assert reply.content == "user0, user7"

    (row,) = _rows(_url(tmp_path))  # the wrapper's own run is not recorded
    (event,) = spy.events
    (received,) = spy.received
    assert row.tokens_input_before == event["tokens_before"] == _count(messages)
    assert row.tokens_input_after == _count(received) == event["tokens_after"]
    assert row.tokens_saved > 0 and row.transforms_applied == tuple(event["transforms_applied"])
    assert row.tokens_output == 5
    assert not _leaks(handler)


def test_chat_model_wrapper_streaming_gives_one_streamed_row(tmp_path: Any) -> None:
    from headroom_integrations.langchain import HeadroomChatModel

    handler = HeadroomCallbackHandler(_url(tmp_path))
    wrapper = HeadroomChatModel(llm=_fake("user0 and user7"))
    chunks = list(wrapper.stream(PROMPT.invoke(INPUTS), config={"callbacks": [handler]}))
    assert "".join(str(c.content) for c in chunks) == "user0 and user7"
    (row,) = _rows(_url(tmp_path))
    assert row.stream is True and row.tokens_saved > 0 and row.transforms_applied
    assert not _leaks(handler)


# --- agents with HeadroomMiddleware ----------------------------------------------------------


class ToolCallingFake(GenericFakeChatModel):
    """Scripted replies; tools are bound as a provider model binds them (their OpenAI
    definitions passed with every call), and otherwise ignored (the script calls them)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)


def test_middleware_stats_land_on_each_turn_of_an_agent(tmp_path: Any) -> None:
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    from headroom_integrations.langchain import HeadroomMiddleware

    @tool
    def list_users(page: int) -> str:
        """List one page of users."""
        return json.dumps(_users(40 + 20 * page), indent=2)

    script = [
        AIMessage("", tool_calls=[{"name": "list_users", "args": {"page": p}, "id": f"c{p}"}])
        for p in (1, 2)
    ] + [AIMessage("user0, user7 and user14 are suspended.")]
    handler, spy = HeadroomCallbackHandler(_url(tmp_path)), Spy()
    agent = create_agent(
        ToolCallingFake(messages=iter(script)),
        tools=[list_users],
        system_prompt=SYSTEM,
        middleware=[HeadroomMiddleware(retrieval_tool=False)],
    )
    out = agent.invoke({"messages": [("user", QUESTION)]}, config={"callbacks": [handler, spy]})
    assert out["messages"][-1].content.startswith("user0")

    rows = _rows(_url(tmp_path))
    assert len(rows) == len(spy.events) == len(spy.received) == 3
    tools = count_tool_tokens([list_users], "gpt-4o")  # what the provider bills for them
    for row, event, received in zip(rows, spy.events, spy.received, strict=True):
        assert row.tokens_input_after == _count(received) + tools == event["tokens_after"]
        assert row.tokens_input_before == event["tokens_before"]
        assert row.extra["tools_tokens"] == event["tools_tokens"] == tools
    first, *later = rows
    assert first.tokens_saved == 0  # nothing to compress before the first tool result
    assert all(r.tokens_saved > 0 and r.transforms_applied for r in later)
    assert not _leaks(handler)


def test_the_sync_handler_works_under_ainvoke(tmp_path: Any) -> None:
    handler = HeadroomCallbackHandler(_url(tmp_path))
    chain = PROMPT | HeadroomRunnable() | _fake("a")
    assert asyncio.run(chain.ainvoke(INPUTS, config={"callbacks": [handler]})).content == "a"
    (row,) = _rows(_url(tmp_path))
    assert row.tokens_saved > 0 and row.transforms_applied
    assert not _leaks(handler)


def test_stale_events_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from headroom_integrations.langchain import callback

    handler = HeadroomCallbackHandler("memory://")
    seen: list[int] = []

    def dispatch_twice(x: Any, config: RunnableConfig) -> Any:
        dispatch_custom_event(EVENT_NAME, {"tokens_saved": 1}, config=config)
        monkeypatch.setattr(callback, "_EVENT_TTL_S", -1.0)  # everything pending is now stale
        dispatch_custom_event(EVENT_NAME, {"tokens_saved": 2}, config=config)
        seen.extend(e.data["tokens_saved"] for e in handler._recorder._pending.values())
        return x

    RunnableLambda(dispatch_twice).invoke(1, config={"callbacks": [handler]})
    assert seen == [2]

"""HeadroomChatModel over LangChain's own fake chat models: what the wrapped model receives,
that every Runnable entry point behaves as the wrapped model's, tools, structured output,
the custom event, LangChain's agent factory, and real conversations."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

pytest.importorskip("langchain_core")

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from headroom_core import compress, count_tokens_messages, validate_pairing
from headroom_core.ccr import RETRIEVE_TOOL_NAME
from headroom_core.errors import BudgetError
from headroom_core.tokens import count_tokens_text
from headroom_integrations.langchain._convert import from_neutral, to_neutral
from headroom_integrations.langchain.chat_model import HeadroomChatModel

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
STATUSES = SHARED / "api_go_jira_mocks" / "all_statuses.json"


def big_json() -> str:
    """A real 17 KB Jira REST response (37 statuses); generated when the data is absent."""
    if STATUSES.exists():
        return STATUSES.read_text("utf-8")
    rows = [
        {
            "id": str(1000 + i),
            "name": f"Status {i}",
            "description": f"Issues in step {i} of the workflow, owned by team {i % 4}.",
            "iconUrl": f"https://jira.example.com/images/icons/statuses/s{i}.png",
            "statusCategory": {"id": i % 3 + 2, "key": ["new", "indeterminate", "done"][i % 3]},
        }
        for i in range(40)
    ]
    return json.dumps(rows, indent=2)


DATA = big_json()


def history(data: str = DATA, tool_name: str = "list_statuses") -> list[BaseMessage]:
    return [
        SystemMessage("You are a Jira assistant."),
        HumanMessage("Which statuses belong to the done category?"),
        AIMessage("", tool_calls=[{"name": tool_name, "args": {}, "id": "call_1"}]),
        ToolMessage(data, tool_call_id="call_1"),
    ]


def core_compressed(messages: list[BaseMessage], **kwargs: Any) -> list[BaseMessage]:
    return from_neutral(compress(to_neutral(messages), **kwargs).messages)


class RecordingChatModel(GenericFakeChatModel):
    """GenericFakeChatModel that records the messages and kwargs of every call."""

    received: list[list[BaseMessage]] = Field(default_factory=list)
    call_kwargs: list[dict[str, Any]] = Field(default_factory=list)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.received.append(list(messages))
        self.call_kwargs.append(kwargs)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


class ToolCallingChatModel(RecordingChatModel):
    """A recording fake that implements bind_tools (and so with_structured_output) the way
    provider models do: it binds the tools' OpenAI schemas as call kwargs."""

    bound: list[list[str]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        schemas = [convert_to_openai_tool(t) for t in tools]
        self.bound.append([s["function"]["name"] for s in schemas])
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=schemas, **kwargs)


def fake(replies: list[Any], cls: type[RecordingChatModel] = RecordingChatModel) -> Any:
    return cls(messages=iter(replies))


class Recorder(BaseCallbackHandler):
    """Custom events, and the parent of every chat-model and chain run."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], UUID]] = []
        self.models: list[tuple[str, UUID, UUID | None]] = []
        self.chains: dict[UUID, UUID | None] = {}

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data, run_id))

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self.models.append((serialized["id"][-1], run_id, parent_run_id))

    def on_chain_start(
        self,
        serialized: Any,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self.chains[run_id] = parent_run_id


# -- what the wrapped model receives ----------------------------------------------------------


def test_wrapped_model_receives_the_core_compressed_messages() -> None:
    inner = fake(["The done statuses are Done and Closed."])
    out = HeadroomChatModel(llm=inner).invoke(history())

    assert out.content == "The done statuses are Done and Closed."
    (received,) = inner.received
    assert received == core_compressed(history())
    assert received[:3] == history()[:3]  # system, user and call are never changed
    sent = received[3].content
    assert isinstance(sent, str) and sent != DATA
    assert count_tokens_text(sent) < count_tokens_text(DATA) / 2
    assert received[3].tool_call_id == "call_1"


def test_audit_mode_sends_the_messages_unchanged() -> None:
    inner = fake(["ok"])
    recorder = Recorder()
    HeadroomChatModel(llm=inner, mode="audit").invoke(history(), {"callbacks": [recorder]})
    assert inner.received == [history()]
    ((_, data, _),) = recorder.events
    assert data["mode"] == "audit" and data["tokens_before"] == data["tokens_after"]


def test_budget_error_only_when_asked_for() -> None:
    # 4,020 - 4,000 output buffer = 20 tokens: the system prompt and the question alone are
    # more (a tool output may be cut to fit; text never is).
    inner = fake(["never"])
    with pytest.raises(BudgetError):
        HeadroomChatModel(llm=inner, max_tokens=4_020, on_budget="raise").invoke(history())
    assert inner.received == []


def test_a_request_over_the_window_is_fitted_by_default() -> None:
    # Issue 14, item 1: the default never fails the call for the window: the tool output is
    # cut (by the core's fitter, or the adapters' cap) or its unit dropped behind a ref.
    inner = fake(["ok"])
    recorder = Recorder()
    answer = HeadroomChatModel(llm=inner, max_tokens=4_500).invoke(
        history(), {"callbacks": [recorder]}
    )
    assert answer.content == "ok"
    (sent,) = inner.received
    validate_pairing(to_neutral(sent))
    assert count_tokens_messages(to_neutral(sent)) <= 500
    # What was cut is retrievable: a marker's ref=, or the crushed array's "ref" entry.
    assert re.search(r'ref(=|":")[0-9a-f]{32}', "".join(str(m.content) for m in sent))
    ((_, data, _),) = recorder.events
    assert data["fallback"] in (None, "capped", "hardest_cut") and data["failures"] == []


def test_text_alone_over_the_window_is_sent_with_the_failure_reported() -> None:
    # The system prompt and the question alone are over the budget: nothing we may cut makes
    # the request fit, so it goes out compressed and unfitted; the provider decides.
    inner = fake(["ok"])
    recorder = Recorder()
    answer = HeadroomChatModel(llm=inner, max_tokens=4_020).invoke(
        history(), {"callbacks": [recorder]}
    )
    assert answer.content == "ok" and len(inner.received) == 1
    ((_, data, _),) = recorder.events
    assert data["fallback"] == "over_budget"
    assert data["failures"] and data["failures"][-1].startswith("budget: BudgetError: ")


def test_retrieved_original_is_never_compressed_again() -> None:
    inner = fake(["ok"])
    messages = history(tool_name=RETRIEVE_TOOL_NAME)
    HeadroomChatModel(llm=inner).invoke(messages)
    assert inner.received == [messages]


# -- the Runnable surface behaves as the wrapped model's ----------------------------------


REPLIES = ["Done and Closed are in the done category.", "Nothing else."]


def test_invoke_and_batch_match_the_wrapped_model() -> None:
    inner, plain = fake(REPLIES * 2), fake(REPLIES * 2)
    wrapper = HeadroomChatModel(llm=inner)
    assert wrapper.invoke(history()).content == plain.invoke(history()).content
    got = [m.content for m in wrapper.batch([history(), history()], {"max_concurrency": 1})]
    want = [m.content for m in plain.batch([history(), history()], {"max_concurrency": 1})]
    assert got == want == [REPLIES[1], REPLIES[0]]
    assert inner.received == [core_compressed(history())] * 3


def test_ainvoke_and_abatch_match_the_wrapped_model() -> None:
    async def run(model: Any) -> list[Any]:
        first = await model.ainvoke(history())
        rest = await model.abatch([history(), history()], {"max_concurrency": 1})
        return [first.content, *(m.content for m in rest)]

    inner, plain = fake(REPLIES * 2), fake(REPLIES * 2)
    assert asyncio.run(run(HeadroomChatModel(llm=inner))) == asyncio.run(run(plain))
    assert inner.received == [core_compressed(history())] * 3


def test_stream_and_astream_pass_the_wrapped_chunks_through() -> None:
    async def achunks(model: Any) -> list[Any]:
        return [c.content async for c in model.astream(history())]

    inner, plain = fake(REPLIES), fake(REPLIES)
    wrapper = HeadroomChatModel(llm=inner)
    got = [c.content for c in wrapper.stream(history())]
    assert got == [c.content for c in plain.stream(history())]
    assert len(got) > 5 and "".join(got) == REPLIES[0]
    assert asyncio.run(achunks(wrapper)) == asyncio.run(achunks(plain))
    assert inner.received == [core_compressed(history())] * 2


def test_a_model_that_cannot_stream_yields_its_whole_message() -> None:
    inner = fake(["one piece"])
    inner.disable_streaming = True
    chunks = list(HeadroomChatModel(llm=inner).stream(history()))
    assert [c.content for c in chunks] == ["one piece"]


# -- the custom event ----------------------------------------------------------------------


@pytest.mark.parametrize("call", ["invoke", "ainvoke", "stream", "astream"])
def test_event_reaches_handlers_under_the_wrapper_run(call: str) -> None:
    inner = fake(REPLIES)
    wrapper = HeadroomChatModel(llm=inner)
    recorder = Recorder()
    config: Any = {"callbacks": [recorder]}

    async def consume() -> None:
        if call == "ainvoke":
            await wrapper.ainvoke(history(), config)
        else:
            [c async for c in wrapper.astream(history(), config)]

    if call == "invoke":
        wrapper.invoke(history(), config)
    elif call == "stream":
        list(wrapper.stream(history(), config))
    else:
        asyncio.run(consume())

    expected = compress(to_neutral(history()))
    ((name, data, event_run),) = recorder.events
    assert name == "headroom_compression"
    assert data == {
        "tokens_before": expected.tokens_before,
        "tokens_after": expected.tokens_after,
        "tokens_saved": expected.tokens_saved,
        "transforms_applied": list(expected.transforms_applied),
        "model": "gpt-4o",
        "tools_tokens": 0,
        "fallback": None,
        "mode": "optimize",
        "failures": [],
    }
    assert data["tokens_saved"] > 1000
    # The wrapper's run is the parent of both the compression step and the inner call.
    (outer, inner_run) = recorder.models
    assert outer[0] == "HeadroomChatModel" and outer[2] is None
    assert inner_run[0] == "RecordingChatModel" and inner_run[2] == outer[1]
    assert recorder.chains[event_run] == outer[1]


def test_metrics_handler_attaches_the_event_to_the_inner_call(tmp_path: Path) -> None:
    callback = pytest.importorskip("headroom_integrations.langchain.callback")
    handler = callback.HeadroomCallbackHandler(f"sqlite:///{tmp_path / 'metrics.db'}")
    try:
        HeadroomChatModel(llm=fake(["ok"])).invoke(history(), {"callbacks": [handler]})
        (record,) = handler.get_metrics()
    finally:
        handler.close()
    expected = compress(to_neutral(history()))
    assert record.tokens_input_before - record.tokens_input_after == expected.tokens_saved
    assert record.transforms_applied == expected.transforms_applied


# -- tools, structured output, agents --------------------------------------------------------


@tool
def list_statuses() -> str:
    """List every Jira status."""
    return DATA


class Answer(BaseModel):
    """The statuses in the done category."""

    statuses: list[str]


def test_bind_tools_wraps_the_bound_model_and_keeps_the_settings() -> None:
    inner = fake(["ok"], ToolCallingChatModel)
    wrapper = HeadroomChatModel(llm=inner, model="gpt-4o-mini", max_tokens=100_000)
    bound = wrapper.bind_tools([list_statuses], tool_choice="auto")

    assert isinstance(bound, HeadroomChatModel)
    assert (bound.model, bound.max_tokens) == ("gpt-4o-mini", 100_000)
    bound.invoke(history())
    assert inner.bound == [["list_statuses"]]
    (kwargs,) = inner.call_kwargs
    assert kwargs["tool_choice"] == "auto"
    assert [t["function"]["name"] for t in kwargs["tools"]] == ["list_statuses"]
    assert inner.received == [core_compressed(history(), model="gpt-4o-mini")]


def _answer(args: dict[str, Any]) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "Answer", "args": args, "id": "call_9"}])


@pytest.mark.parametrize("include_raw", [False, True])
def test_with_structured_output_is_the_wrapped_models(include_raw: bool) -> None:
    reply = _answer({"statuses": ["Done", "Closed"]})
    inner, plain = fake([reply], ToolCallingChatModel), fake([reply], ToolCallingChatModel)
    got = HeadroomChatModel(llm=inner).with_structured_output(Answer, include_raw=include_raw)
    want = plain.with_structured_output(Answer, include_raw=include_raw)

    result, expected = got.invoke(history()), want.invoke(history())
    if include_raw:
        assert result["parsed"] == expected["parsed"] == Answer(statuses=["Done", "Closed"])
        assert result["raw"].tool_calls == expected["raw"].tool_calls
    else:
        assert result == expected == Answer(statuses=["Done", "Closed"])
    assert inner.bound == [["Answer"]] and inner.call_kwargs[0]["tool_choice"] == "any"
    assert inner.received == [core_compressed(history())]


class ScriptedToolModel(ToolCallingChatModel):
    """Answers from a script, one reply per call, and returns itself from bind_tools."""

    script: list[AIMessage] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        self.bound.append([convert_to_openai_tool(t)["function"]["name"] for t in tools])
        self.call_kwargs.append(kwargs)
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.received.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.script[len(self.received) - 1])])


def test_create_agent_runs_through_the_wrapper() -> None:
    agents = pytest.importorskip("langchain.agents")
    call = AIMessage("", tool_calls=[{"name": "list_statuses", "args": {}, "id": "call_1"}])
    inner = ScriptedToolModel(messages=iter(()), script=[call, AIMessage("Done, Closed.")])
    agent = agents.create_agent(HeadroomChatModel(llm=inner), tools=[list_statuses])

    state = agent.invoke({"messages": [HumanMessage("Which statuses are done?")]})

    assert state["messages"][-1].content == "Done, Closed."
    assert state["messages"][2].content == DATA  # the agent's state keeps the original
    assert inner.bound == [["list_statuses"], ["list_statuses"]]
    seen = inner.received[1][-1]
    assert isinstance(seen, ToolMessage) and seen.content != DATA
    assert inner.received[1] == core_compressed(state["messages"][:3])


def test_create_agent_picks_the_structured_output_strategy_of_the_wrapped_model() -> None:
    # The counting name "gpt-4o" must not make the agent assume provider-native structured
    # output: a fake model gets the tool strategy, as it would unwrapped.
    agents = pytest.importorskip("langchain.agents")
    inner = ScriptedToolModel(messages=iter(()), script=[_answer({"statuses": ["Done"]})])
    agent = agents.create_agent(HeadroomChatModel(llm=inner), tools=[], response_format=Answer)

    state = agent.invoke({"messages": [HumanMessage("Which statuses are done?")]})

    assert state["structured_response"] == Answer(statuses=["Done"])
    assert inner.bound == [["Answer"]]
    assert inner.call_kwargs[0].get("tool_choice") == "any"
    assert "response_format" not in inner.call_kwargs[0]


# -- real conversations ------------------------------------------------------------------------


def test_real_conversations_match_the_core(conversations: list[tuple[str, Any]]) -> None:
    for name, dicts in conversations:
        messages = from_neutral(dicts)
        inner = fake(["ok"])
        HeadroomChatModel(llm=inner).invoke(messages)
        expected = compress(to_neutral(messages))
        assert inner.received == [from_neutral(expected.messages)], name


def test_agent_messages_stream_gets_each_token_once_from_the_inner_call() -> None:
    # LangGraph's "messages" mode attaches a streaming handler: the wrapped model streams in
    # its own run, a child of the wrapper's run, and every token reaches the stream once.
    agents = pytest.importorskip("langchain.agents")
    inner = ScriptedToolModel(messages=iter(()), script=[AIMessage("Done and Closed are done.")])
    agent = agents.create_agent(HeadroomChatModel(llm=inner), tools=[list_statuses])
    recorder = Recorder()

    chunks = [
        chunk
        for chunk, _ in agent.stream(
            {"messages": history()[1:]}, {"callbacks": [recorder]}, stream_mode="messages"
        )
        if isinstance(chunk, AIMessage)
    ]

    assert "".join(str(c.content) for c in chunks) == "Done and Closed are done."
    assert len(chunks) > 3
    (outer, inner_run) = recorder.models
    assert (outer[0], inner_run[0]) == ("HeadroomChatModel", "ScriptedToolModel")
    assert inner_run[2] == outer[1]
    (received,) = inner.received  # the agent's state gives the messages ids: compare content
    assert [m.content for m in received] == [m.content for m in core_compressed(history()[1:])]
    assert received[-1].content != DATA


def test_astream_events_show_the_wrapper_run_streaming_the_wrapped_chunks() -> None:
    async def events() -> list[dict[str, Any]]:
        wrapper = HeadroomChatModel(llm=fake(REPLIES))
        return [e async for e in wrapper.astream_events(history(), version="v2")]

    streamed: dict[str, list[str]] = {}
    names = []
    for event in asyncio.run(events()):
        names.append((event["event"], event["name"]))
        if event["event"] == "on_chat_model_stream":
            streamed.setdefault(event["name"], []).append(event["data"]["chunk"].content)
    assert streamed["HeadroomChatModel"] == streamed["RecordingChatModel"]
    assert "".join(streamed["HeadroomChatModel"]) == REPLIES[0]
    assert ("on_custom_event", "headroom_compression") in names

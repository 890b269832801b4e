"""HeadroomMiddleware in real ``langchain.agents.create_agent`` loops, with a scripted fake
tool-calling model and real tools returning real JSON: what every request carries, what
the graph state keeps, the stable prefix, the retrieval tool, the event, conversations."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
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
from pydantic import Field

from headroom_core import compress, validate_pairing
from headroom_core.ccr import RETRIEVE_TOOL_NAME
from headroom_core.config import HeadroomConfig, SmartCrusherConfig
from headroom_core.errors import BudgetError
from headroom_core.tokens import count_tokens_text
from headroom_integrations.langchain._convert import from_neutral, to_neutral
from headroom_integrations.langchain._tools import count_tool_tokens
from headroom_integrations.langchain.middleware import HeadroomMiddleware

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SYSTEM = "You are a release assistant. Today is 2024-05-01."  # a date: the aligner moves it
# What the middleware runs: the defaults, with retrieved originals never compressed again.
KEEP_RETRIEVED = HeadroomConfig(
    smart_crusher=SmartCrusherConfig(never_compress_tools=(RETRIEVE_TOOL_NAME,))
)


def _real_or(path: Path, generate: Callable[[], Any]) -> str:
    """A real API response from ../shared/data; generated JSON when the data is absent."""
    return path.read_text("utf-8") if path.exists() else json.dumps(generate(), indent=2)


STATUSES = _real_or(  # 17 KB, 37 Jira statuses: a lossy cut with a ref
    SHARED / "api_go_jira_mocks" / "all_statuses.json",
    lambda: [
        {
            "id": str(i),
            "name": f"Status {i}",
            "description": f"Issues in step {i} of the workflow.",
            "statusCategory": {"id": i % 3, "key": ["new", "indeterminate", "done"][i % 3]},
        }
        for i in range(40)
    ],
)
ISSUES = _real_or(  # a recorded GitHub REST page of issues
    SHARED / "api_octokit_fixtures" / "responses" / "paginate-issues__00_get_200.json",
    lambda: [
        {"number": n, "title": f"Bug {n}", "state": "open", "labels": [{"name": "bug"}]}
        for n in range(1, 6)
    ],
)


@tool
def list_statuses() -> str:
    """List every workflow status of the Jira instance."""
    return STATUSES


@tool
def list_issues(page: int) -> str:
    """List the repository's open issues, one page at a time."""
    return ISSUES


Step = AIMessage | Callable[[list[BaseMessage]], AIMessage]


class ScriptedToolModel(GenericFakeChatModel):
    """LangChain's GenericFakeChatModel as a tool-calling model: bind_tools records the
    tool names and returns the model; each call records what the model received and
    answers with the next step of the script (a message, or a function of the messages)."""

    messages: Any = Field(default_factory=lambda: iter(()))
    script: list[Any] = Field(default_factory=list)
    received: list[list[BaseMessage]] = Field(default_factory=list)
    bound: list[list[str]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        self.bound.append([convert_to_openai_tool(t)["function"]["name"] for t in tools])
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.received.append(list(messages))
        step = self.script[len(self.received) - 1]
        reply = step(messages) if callable(step) else step
        return ChatResult(generations=[ChatGeneration(message=reply)])


def call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


def ref_in(messages: list[BaseMessage], call_id: str) -> str:
    """The ref of the first cut in the tool result the model saw for ``call_id``."""
    (result,) = [m for m in messages if isinstance(m, ToolMessage) and m.tool_call_id == call_id]
    found = re.search(r"\bref\W{1,4}([0-9a-f]{32})\b", str(result.content))
    assert found, f"no ref in what the model saw for {call_id}"
    return found.group(1)


def retrieve_statuses(messages: list[BaseMessage]) -> AIMessage:
    return call(RETRIEVE_TOOL_NAME, {"ref": ref_in(messages, "call_1")}, "call_3")


def loop_model() -> ScriptedToolModel:
    return ScriptedToolModel(
        script=[
            call("list_statuses", {}, "call_1"),
            call("list_issues", {"page": 1}, "call_2"),
            retrieve_statuses,
            AIMessage("Done and Closed are the done statuses; issue #13 is open."),
        ]
    )


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], UUID]] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data, run_id))


def run_agent(
    middleware: HeadroomMiddleware, *, use_async: bool = False, callbacks: list[Any] | None = None
) -> tuple[ScriptedToolModel, dict[str, Any]]:
    model = loop_model()
    agent = create_agent(
        model, tools=[list_statuses, list_issues], system_prompt=SYSTEM, middleware=[middleware]
    )
    inputs = {"messages": [HumanMessage("Which statuses are done, and which issues are open?")]}
    config: Any = {"callbacks": callbacks or []}
    if use_async:
        state = asyncio.run(agent.ainvoke(inputs, config))
    else:
        state = agent.invoke(inputs, config)
    return model, state


def result_for(messages: list[BaseMessage], call_id: str) -> ToolMessage:
    (found,) = [m for m in messages if isinstance(m, ToolMessage) and m.tool_call_id == call_id]
    return found


def dumped(messages: list[BaseMessage]) -> list[str]:
    return [m.model_dump_json() for m in messages]


# -- the agent loop ----------------------------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
def test_agent_loop_sends_compressed_requests_and_keeps_the_state(use_async: bool) -> None:
    model, state = run_agent(HeadroomMiddleware(), use_async=use_async)
    requests = model.received
    assert len(requests) == 4
    assert state["messages"][-1].content.startswith("Done and Closed")

    for request in requests:
        validate_pairing(to_neutral(request))  # raises PairingError on a broken request
        assert isinstance(request[0], SystemMessage)
        # What the model saw is the core's compression of what the agent would have sent.
        sent = [SystemMessage(SYSTEM), *state["messages"][: len(request) - 1]]
        assert request == from_neutral(compress(to_neutral(sent), config=KEEP_RETRIEVED).messages)

    # The system prompt was aligned (the date moved to its dynamic tail), never lost.
    assert requests[0][0].content != SYSTEM and "2024-05-01" in requests[0][0].content

    # The tool output is compressed in what the model sees ...
    seen = result_for(requests[1], "call_1").content
    assert isinstance(seen, str) and count_tokens_text(seen) < count_tokens_text(STATUSES) / 2
    # ... while the graph state keeps every original.
    assert result_for(state["messages"], "call_1").content == STATUSES
    assert result_for(state["messages"], "call_2").content == ISSUES

    # Stable prefix: each request starts with the previous one, byte for byte.
    for before, after in zip(requests, requests[1:], strict=False):
        assert dumped(after[: len(before)]) == dumped(before)

    # The model was bound with the retrieval tool, and the ref it found gives the original
    # back, whole, in the state and in what the model sees next.
    assert all(RETRIEVE_TOOL_NAME in names for names in model.bound)
    assert sorted(model.bound[0]) == sorted([RETRIEVE_TOOL_NAME, "list_statuses", "list_issues"])
    retrieved = result_for(state["messages"], "call_3").content
    assert json.loads(retrieved) == json.loads(STATUSES)
    assert result_for(requests[3], "call_3").content == retrieved


def test_the_event_is_dispatched_for_every_model_call() -> None:
    recorder = Recorder()
    middleware = HeadroomMiddleware()
    model, state = run_agent(middleware, callbacks=[recorder])
    assert [name for name, _, _ in recorder.events] == ["headroom_compression"] * 4
    # The tool definitions the model is bound with are part of every request.
    tools = count_tool_tokens([list_statuses, list_issues, *middleware.tools], "gpt-4o")
    assert tools > 100
    for (_, data, _), request in zip(recorder.events, model.received, strict=True):
        sent = [SystemMessage(SYSTEM), *state["messages"][: len(request) - 1]]
        expected = compress(to_neutral(sent), config=KEEP_RETRIEVED)
        assert data["tools_tokens"] == tools and data["fallback"] is None
        assert data["tokens_before"] == expected.tokens_before + tools
        assert data["tokens_after"] == expected.tokens_after + tools
        assert data["transforms_applied"] == list(expected.transforms_applied)
        assert (data["model"], data["mode"], data["failures"]) == ("gpt-4o", "optimize", [])
    assert recorder.events[1][1]["tokens_saved"] > 1000


@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
def test_compress_tool_results_writes_the_compressed_result_into_the_state(
    use_async: bool,
) -> None:
    recorder = Recorder()
    middleware = HeadroomMiddleware(compress_tool_results=True)
    model, state = run_agent(middleware, use_async=use_async, callbacks=[recorder])

    stored = result_for(state["messages"], "call_1")
    assert stored.content != STATUSES
    assert count_tokens_text(str(stored.content)) < count_tokens_text(STATUSES) / 2
    assert result_for(model.received[1], "call_1").content == stored.content
    # The retrieved original is never compressed: the model gets all of it.
    retrieved = result_for(state["messages"], "call_3").content
    assert json.loads(retrieved) == json.loads(STATUSES)
    # One event per tool result it compressed, next to one per model call.
    assert len(recorder.events) > 4


def test_retrieval_tool_can_be_left_out() -> None:
    middleware = HeadroomMiddleware(retrieval_tool=False)
    assert middleware.tools == []
    model = ScriptedToolModel(script=[AIMessage("No tools needed.")])
    agent = create_agent(model, tools=[list_statuses], middleware=[middleware])
    agent.invoke({"messages": [HumanMessage("hi")]})
    assert model.bound == [["list_statuses"]]


def test_budget_error_propagates_out_of_the_agent_when_asked_for() -> None:
    # 4,030 - 4,000 output buffer = 30 tokens: the system prompt and the question alone are
    # more (a tool output would be cut to fit, text never is).
    model = ScriptedToolModel(script=[call("list_statuses", {}, "call_1"), AIMessage("never")])
    agent = create_agent(
        model,
        tools=[list_statuses],
        system_prompt=SYSTEM,
        middleware=[HeadroomMiddleware(max_tokens=4_030, on_budget="raise")],
    )
    with pytest.raises(BudgetError):
        agent.invoke({"messages": [HumanMessage("Which statuses are done? " * 5)]})
    assert model.received == []


# -- real conversations ------------------------------------------------------------------------


def test_real_conversations_match_the_core(conversations: list[tuple[str, Any]]) -> None:
    for name, dicts in conversations:
        messages = [m.model_copy(update={"id": f"m{i}"}) for i, m in enumerate(from_neutral(dicts))]
        head = messages[0] if isinstance(messages[0], SystemMessage) else None
        rest = messages[1:] if head is not None else messages
        model = ScriptedToolModel(script=[AIMessage("ok")])
        agent = create_agent(model, system_prompt=head, middleware=[HeadroomMiddleware()])
        agent.invoke({"messages": rest})
        expected = compress(to_neutral(messages))
        assert model.received == [from_neutral(expected.messages)], name

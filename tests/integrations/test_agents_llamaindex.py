"""Issue 14 with LlamaIndex: ``HeadroomLLM`` inside real ``FunctionAgent`` and
``ReActAgent`` workflows (a scripted function-calling LLM, real tools over real data from
../shared/data, real memories and stores).

1 a turn never raises for the window; 2 the tool definitions a function-calling agent sends
count; 3 the agent's memory no longer drops turns before the wrapper sees them
(``HeadroomMemory``); 4 ReAct observations and Python-repr results are compressed;
5 ``retrieve_tool()`` reads back what a cut left out; 6 exact offline counting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.tools import FunctionTool

from headroom_core import validate_pairing
from headroom_core.ccr import RETRIEVE_TOOL_NAME, MemoryOriginalStore
from headroom_core.tokens import count_tokens_messages, count_tokens_text
from headroom_integrations._compress import count_tools
from headroom_integrations.llamaindex import (
    HeadroomLLM,
    HeadroomMemory,
    retrieve_tool,
    to_neutral,
)

from ._llamaindex_tools import OpenAIToolCalls
from .agent_scenario import LOGS, PROJECTS, REF, bfcl_tools, data_present, log_path

pytestmark = [
    pytest.mark.skipif(not data_present(), reason="../shared/data (loghub, Jira) not found"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect"),
    pytest.mark.filterwarnings("ignore:is_running called from within a step:DeprecationWarning"),
]

Step = Callable[[list[ChatMessage]], ChatMessage]


class ScriptedLLM(OpenAIToolCalls, FunctionCallingLLM):
    """A FunctionCallingLLM answering ``step(messages)``, OpenAI-style tool calls under
    ``additional_kwargs["tool_calls"]``; records what every call received (and its tools)."""

    step: Any = None
    window: int = 128_000
    received: list[list[ChatMessage]] = Field(default_factory=list, exclude=True)
    tools: list[list[dict[str, Any]]] = Field(default_factory=list, exclude=True)

    @classmethod
    def class_name(cls) -> str:
        return "ScriptedLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            model_name="gpt-4o",
            context_window=self.window,
            is_chat_model=True,
            is_function_calling_model=True,
        )

    def _reply(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatMessage:
        self.received.append(list(messages))
        self.tools.append(list(kwargs.get("tools") or ()))
        return self.step(list(messages))  # type: ignore[no-any-return]

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return ChatResponse(message=self._reply(messages, kwargs))

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self.chat(messages, **kwargs)

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        message = self._reply(messages, kwargs)

        def gen() -> ChatResponseGen:
            yield ChatResponse(message=message, delta=message.content or "")

        return gen()

    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        message = self._reply(messages, kwargs)

        async def gen() -> ChatResponseAsyncGen:
            yield ChatResponse(message=message, delta=message.content or "")

        return gen()

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise NotImplementedError

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError


def calling(name: str, args: dict[str, Any], call_id: str) -> ChatMessage:
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }
    return ChatMessage(role="assistant", content=None, additional_kwargs={"tool_calls": [call]})


def fetch_logs(service: str) -> str:
    """Fetch the last 2,000 log lines of a service (HDFS, Apache, OpenSSH, Zookeeper)."""
    return log_path(service).read_text("utf-8")


def list_projects() -> str:
    """List every Jira project (JSON)."""
    return PROJECTS.read_text("utf-8")


def list_projects_data() -> list[dict[str, Any]]:
    """List every Jira project (the tool returns the parsed list; LlamaIndex sends str())."""
    return json.loads(PROJECTS.read_text("utf-8"))  # type: ignore[no-any-return]


def log_step(messages: list[ChatMessage]) -> ChatMessage:
    """A tool call for each question, an answer after each result."""
    last = messages[-1]
    if last.role == MessageRole.TOOL:
        return ChatMessage(role="assistant", content=f"Read {len(str(last.content))} characters.")
    for name in LOGS:
        if f"the {name} log" in str(last.content):
            return calling("fetch_logs", {"service": name}, f"call_{name}")
    return ChatMessage(role="assistant", content="Nothing to fetch.")


def request_tokens(messages: list[ChatMessage], tools: list[dict[str, Any]]) -> int:
    return count_tokens_messages(to_neutral(messages)) + count_tools(tools, "gpt-4o")


def run_turns(agent: Any, questions: list[str], memory: Any) -> list[str | None]:
    """One workflow run per question, the same memory for all; errors recorded."""
    errors: list[str | None] = []

    async def main() -> None:
        for question in questions:
            try:
                await agent.run(question, memory=memory)
                errors.append(None)
            except Exception as exc:  # a turn that raises is the failure being counted
                errors.append(f"{type(exc).__name__}: {exc}")

    asyncio.run(main())
    return errors


LOG_QUESTIONS = [f"Which errors does the {name} log show?" for name in LOGS]


# -- 1 and 2: never raise, tool definitions counted --------------------------------------------


def test_1_2_function_agent_at_16k_never_raises_and_fits_with_its_tools() -> None:
    tools = [FunctionTool.from_defaults(fetch_logs)]
    before = ScriptedLLM(step=log_step)
    agent = FunctionAgent(
        tools=tools, llm=HeadroomLLM(llm=before, max_tokens=16_000, on_budget="raise")
    )
    errors = run_turns(agent, LOG_QUESTIONS, HeadroomMemory.from_defaults())
    assert all(e is None or "BudgetError" in e for e in errors)  # the old policy, on request

    inner = ScriptedLLM(step=log_step)
    llm = HeadroomLLM(llm=inner, max_tokens=16_000)
    agent = FunctionAgent(tools=tools, llm=llm)
    assert run_turns(agent, LOG_QUESTIONS, HeadroomMemory.from_defaults(llm=llm)) == [None] * 4
    assert all(inner.tools) and count_tools(inner.tools[0], "gpt-4o") > 30  # what it sends
    sizes = [request_tokens(m, t) for m, t in zip(inner.received, inner.tools, strict=True)]
    assert len(sizes) == 8 and max(sizes) <= 16_000 - 4_000
    for messages in inner.received:
        validate_pairing(to_neutral(messages))


def test_2_bfcl_schemas_come_off_the_window() -> None:
    bfcl = bfcl_tools()
    inner = ScriptedLLM(step=lambda m: ChatMessage(role="assistant", content="ok"))
    llm = HeadroomLLM(llm=inner, max_tokens=40_000)
    history = [
        ChatMessage(role="user", content="Which errors does the HDFS log show?"),
        calling("fetch_logs", {"service": "HDFS"}, "c1"),
        ChatMessage(
            role="tool", content=fetch_logs("HDFS"), additional_kwargs={"tool_call_id": "c1"}
        ),
        ChatMessage(role="user", content="And the Apache log?"),
        calling("fetch_logs", {"service": "Apache"}, "c2"),
        ChatMessage(
            role="tool", content=fetch_logs("Apache"), additional_kwargs={"tool_call_id": "c2"}
        ),
    ]
    llm.chat(history, tools=bfcl)
    assert count_tools(bfcl, "gpt-4o") > 15_000
    assert request_tokens(inner.received[0], bfcl) <= 40_000 - 4_000
    assert llm.count_tokens(inner.received[0], bfcl) == request_tokens(inner.received[0], bfcl)


# -- 3: the agent's memory ------------------------------------------------------------------------


def test_3_headroom_memory_keeps_the_turn_the_default_buffer_drops() -> None:
    questions = LOG_QUESTIONS[:2]
    tools = [FunctionTool.from_defaults(fetch_logs)]
    # The default: ChatMemoryBuffer(token_limit = 75% of the 16k window) counts the raw
    # history and drops the whole first turn before HeadroomLLM sees it.
    inner = ScriptedLLM(step=log_step, window=16_000)
    llm = HeadroomLLM(llm=inner)
    run_turns(
        FunctionAgent(tools=tools, llm=llm), questions, ChatMemoryBuffer.from_defaults(llm=llm)
    )
    second_turn = inner.received[2]
    assert questions[0] not in [m.content for m in second_turn]

    inner = ScriptedLLM(step=log_step, window=16_000)
    llm = HeadroomLLM(llm=inner)
    memory = HeadroomMemory.from_defaults(llm=llm)
    run_turns(FunctionAgent(tools=tools, llm=llm), questions, memory)
    second_turn = inner.received[2]
    assert questions[0] in [m.content for m in second_turn]  # the first turn is still there
    stored = [m for m in memory.get_all() if m.role == MessageRole.TOOL]
    assert len(stored) == 2
    raw = count_tokens_text(fetch_logs("HDFS"))
    assert count_tokens_text(str(stored[0].content)) < raw / 3  # kept compressed
    # exact counts: what the memory counts is what the request carries
    all_messages = memory.get_all()
    assert memory._token_count_for_messages(all_messages) == count_tokens_messages(
        to_neutral(all_messages)
    )


# -- 4: ReAct observations and Python-repr results ------------------------------------------------


def react_step(action: str, args: dict[str, Any]) -> Step:
    def step(messages: list[ChatMessage]) -> ChatMessage:
        if str(messages[-1].content).startswith("Observation:"):
            return ChatMessage(role="assistant", content="Thought: I can answer.\nAnswer: done.")
        text = f"Thought: I need the data.\nAction: {action}\nAction Input: {json.dumps(args)}"
        return ChatMessage(role="assistant", content=text)

    return step


@pytest.mark.parametrize(
    ("tool", "action", "args", "transform"),
    [
        (fetch_logs, "fetch_logs", {"service": "OpenSSH"}, "log"),
        (list_projects_data, "list_projects_data", {}, "pyrepr"),
    ],
    ids=["log-observation", "repr-observation"],
)
def test_4_react_observations_are_compressed(
    tool: Callable[..., Any], action: str, args: dict[str, Any], transform: str
) -> None:
    inner = ScriptedLLM(step=react_step(action, args))
    llm = HeadroomLLM(llm=inner)
    agent = ReActAgent(tools=[FunctionTool.from_defaults(tool)], llm=llm, streaming=False)
    assert run_turns(agent, ["Which users failed to log in?"], HeadroomMemory.from_defaults()) == [
        None
    ]
    observation = inner.received[1][-1]
    assert observation.role == MessageRole.USER
    assert str(observation.content).startswith("Observation: ")
    raw = count_tokens_text(str(tool(**args)))
    assert raw > 30_000 and count_tokens_text(str(observation.content)) < raw / 3
    body = str(observation.content).removeprefix("Observation: ")
    if transform == "pyrepr":
        assert isinstance(json.loads(body), list)  # the repr went through the JSON compressor


# -- 5: the retrieve tool ---------------------------------------------------------------------------


def test_5_retrieve_tool_reads_back_from_the_llms_store(tmp_path: Path) -> None:
    def step(messages: list[ChatMessage]) -> ChatMessage:
        last = messages[-1]
        if last.role == MessageRole.USER:
            return calling("list_projects", {}, "c1")
        if last.additional_kwargs.get("tool_call_id") == "c1":
            ref = REF.findall(str(last.content))[0]
            return calling(RETRIEVE_TOOL_NAME, {"ref": ref, "query": "HADOOP"}, "c2")
        return ChatMessage(role="assistant", content="HADOOP found.")

    inner = ScriptedLLM(step=step)
    llm = HeadroomLLM(llm=inner, store=f"sqlite:///{tmp_path / 'originals.db'}")
    tools = [FunctionTool.from_defaults(list_projects), retrieve_tool(llm.store)]
    assert run_turns(
        FunctionAgent(tools=tools, llm=llm), ["Find HADOOP."], HeadroomMemory.from_defaults(llm=llm)
    ) == [None]
    assert RETRIEVE_TOOL_NAME in [t["function"]["name"] for t in inner.tools[0]]
    answer = inner.received[-1][-1]
    header, body = str(answer.content).split("\n", 1)
    assert "match 'HADOOP'" in header and any(p["key"] == "HADOOP" for p in json.loads(body))
    # a fresh tool on the same file (a restart) reads the same original; a whole one is paged
    again = retrieve_tool(f"sqlite:///{tmp_path / 'originals.db'}", max_tokens=2_000)
    ref = REF.findall(str(inner.received[1][-1].content))[0]  # the ref the model used
    page = again.call(ref=ref).content
    assert count_tokens_text(page) <= 2_000 and page.startswith("[headroom: items 1-")


# -- 6: exact offline counting -----------------------------------------------------------------------


def test_6_count_tokens_and_tokenizer_are_exact() -> None:
    llm = HeadroomLLM(llm=ScriptedLLM(step=log_step))
    messages = [
        ChatMessage(role="system", content="You are an SRE assistant."),
        ChatMessage(role="user", content="Which errors does the HDFS log show?"),
        calling("fetch_logs", {"service": "HDFS"}, "c1"),
        ChatMessage(
            role="tool", content="081109 ERROR x", additional_kwargs={"tool_call_id": "c1"}
        ),
    ]
    assert llm.count_tokens(messages) == count_tokens_messages(to_neutral(messages))
    assert len(llm.tokenizer("hello world")) == count_tokens_text("hello world") == 2
    memory = ChatMemoryBuffer.from_defaults(token_limit=100, tokenizer_fn=llm.tokenizer)
    assert memory.tokenizer_fn("hello world") == llm.tokenizer("hello world")
    store = MemoryOriginalStore()
    assert HeadroomMemory.from_defaults(llm=HeadroomLLM(llm=llm.llm, store=store)).store is store


# -- 8: scorer="auto" is BM25 on the per-request paths ------------------------------------------


def test_8_auto_scorer_is_bm25_in_the_postprocessor_and_the_pipeline() -> None:
    from headroom_core.config import HeadroomConfig, IntelligentContextConfig
    from headroom_core.relevance import BM25Scorer
    from headroom_core.transforms import IntelligentContextManager, build_transforms
    from headroom_integrations.llamaindex import HeadroomNodePostprocessor

    # Before: the MiniLM hybrid whenever the embeddings extra was installed (seconds a query).
    assert isinstance(HeadroomNodePostprocessor()._scorer, BM25Scorer)
    assert isinstance(HeadroomNodePostprocessor(scorer="auto")._scorer, BM25Scorer)
    config = HeadroomConfig(intelligent_context=IntelligentContextConfig(enabled=True))
    (manager,) = [t for t in build_transforms(config) if isinstance(t, IntelligentContextManager)]
    assert manager.scorer.embedder is None

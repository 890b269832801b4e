"""HeadroomLLM and the LlamaIndex converters, with real LlamaIndex objects and no network:
a scripted function-calling LLM in FunctionAgent / AgentWorkflow runs with a real tool
returning a real GitHub API response, every entry point against the wrapped LLM, and an
exact round trip of every kind of chat message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CitableBlock,
    CitationBlock,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    DocumentBlock,
    ImageBlock,
    LLMMetadata,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import BaseModel, Field
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import LLMChatStartEvent
from llama_index.core.llms import MockFunctionCallingLLM, MockLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool

from headroom_core import BudgetError, HeadroomConfig, compress, validate_pairing
from headroom_core.config import RollingWindowConfig
from headroom_core.messages import check_messages
from headroom_core.tokens import count_tokens_messages, count_tokens_text
from headroom_integrations.llamaindex._convert import LI_KEY, from_neutral, to_neutral
from headroom_integrations.llamaindex.llm import HeadroomCompressionEvent, HeadroomLLM

from ._llamaindex_tools import OpenAIToolCalls

# LlamaIndex's workflows inspect the agents' pydantic attributes (deprecated ones included).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
RESPONSES = SHARED / "api_octokit_fixtures" / "responses"
MODEL = "gpt-4o"
ANSWER = "hello-world is a public repository of octokit-fixture-org."


def octokit(name: str) -> str:
    """A real recorded GitHub REST response; the test skips when the data is absent."""
    path = RESPONSES / name
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    return path.read_text("utf-8")


@pytest.fixture
def repo_json() -> str:
    return octokit("get-repository__00_get_200.json")  # 7.6 KB, ~2,150 tokens


@pytest.fixture
def issues_json() -> str:
    return octokit("paginate-issues__00_get_200.json")


def public(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """What an OpenAI-style request carries for these messages (no private keys)."""
    return [{k: v for k, v in d.items() if k != LI_KEY} for d in to_neutral(messages)]


def openai_call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }


def calling(*calls: dict[str, Any]) -> ChatMessage:
    """An assistant turn that calls tools, kept the way LlamaIndex's OpenAI LLM keeps it."""
    return ChatMessage(
        role="assistant", content=None, additional_kwargs={"tool_calls": list(calls)}
    )


# -- a scripted function-calling LLM ---------------------------------------------------------


class ScriptedLLM(OpenAIToolCalls, FunctionCallingLLM):
    """A FunctionCallingLLM that answers from a script, OpenAI-style (tool calls under
    ``additional_kwargs["tool_calls"]``), records what every call received, and emits the
    real instrumentation events through LlamaIndex's own callback decorators."""

    script: list[ChatMessage] = Field(default_factory=list)
    raw: dict[str, Any] | None = None
    response_kwargs: dict[str, Any] = Field(default_factory=dict)
    fail: bool = False
    received: list[list[ChatMessage]] = Field(default_factory=list, exclude=True)
    methods: list[str] = Field(default_factory=list, exclude=True)
    call_kwargs: list[dict[str, Any]] = Field(default_factory=list, exclude=True)
    prompts: list[str] = Field(default_factory=list, exclude=True)

    @classmethod
    def class_name(cls) -> str:
        return "ScriptedLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            model_name=MODEL,
            context_window=128_000,
            num_output=512,
            is_chat_model=True,
            is_function_calling_model=True,
        )

    def _next(self, method: str, messages: Sequence[ChatMessage], kwargs: Any) -> ChatMessage:
        self.methods.append(method)
        self.received.append(list(messages))
        self.call_kwargs.append(dict(kwargs))
        if self.fail:
            raise RuntimeError("provider unavailable")
        return self.script[min(len(self.received), len(self.script)) - 1]

    def _chunks(self, message: ChatMessage) -> Iterator[ChatResponse]:
        text = message.content or ""
        if not text:
            yield ChatResponse(message=message, delta="", raw=self.raw)
            return
        words = text.split(" ")
        for i in range(len(words)):
            so_far = " ".join(words[: i + 1])
            chunk = ChatMessage(
                role="assistant", content=so_far, additional_kwargs=message.additional_kwargs
            )
            delta = words[i] if i == 0 else " " + words[i]
            yield ChatResponse(message=chunk, delta=delta, raw=self.raw)

    def _response(self, message: ChatMessage) -> ChatResponse:
        return ChatResponse(
            message=message, raw=self.raw, additional_kwargs=dict(self.response_kwargs)
        )

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._response(self._next("chat", messages, kwargs))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._response(self._next("achat", messages, kwargs))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._chunks(self._next("stream_chat", messages, kwargs))

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        chunks = list(self._chunks(self._next("astream_chat", messages, kwargs)))

        async def gen() -> AsyncIterator[ChatResponse]:
            for chunk in chunks:
                yield chunk

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.prompts.append(prompt)
        return CompletionResponse(text=f"echo: {prompt}", raw=self.raw)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return self.complete(prompt, formatted=formatted, **kwargs)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        self.prompts.append(prompt)

        def gen() -> Iterator[CompletionResponse]:
            yield CompletionResponse(text=f"echo: {prompt}", delta=f"echo: {prompt}")

        return gen()

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        self.prompts.append(prompt)

        async def gen() -> AsyncIterator[CompletionResponse]:
            yield CompletionResponse(text=f"echo: {prompt}", delta=f"echo: {prompt}")

        return gen()


def repo_script() -> list[ChatMessage]:
    args = {"repo": "octokit-fixture-org/hello-world"}
    return [
        calling(openai_call("call_repo", "get_repository", args)),
        ChatMessage(role="assistant", content=ANSWER),
    ]


def repo_tool(data: str, log: list[str]) -> FunctionTool:
    def get_repository(repo: str) -> str:
        """Get a GitHub repository by its full name (owner/name)."""
        log.append(repo)
        return data

    return FunctionTool.from_defaults(get_repository)


def run_agent(llm: Any, tools: list[FunctionTool], *, streaming: bool) -> str:
    agent = FunctionAgent(
        tools=tools,
        llm=llm,
        system_prompt="You are a GitHub assistant.",
        streaming=streaming,
    )

    async def main() -> str:
        return str(await agent.run("Tell me about octokit-fixture-org/hello-world."))

    return asyncio.run(main())


def core_view(messages: Sequence[ChatMessage], **kwargs: Any) -> list[dict[str, Any]]:
    """What the core makes of these messages, in the public neutral form."""
    return public(from_neutral(compress(to_neutral(messages), model=MODEL, **kwargs).messages))


class EventLog(BaseEventHandler):
    """Collects every instrumentation event of a test (added to the root dispatcher)."""

    events: list[BaseEvent] = Field(default_factory=list)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)

    def of(self, kind: type[BaseEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def event_log() -> Iterator[EventLog]:
    root = get_dispatcher()
    log = EventLog()
    root.add_event_handler(log)
    yield log
    root.event_handlers = [h for h in root.event_handlers if h is not log]


# -- agents ------------------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [True, False], ids=["astream_chat", "achat"])
def test_function_agent_loop_paired_and_tool_output_compressed(
    repo_json: str, streaming: bool
) -> None:
    # The same run without the wrapper: what the agent passes to its LLM, uncompressed.
    plain = ScriptedLLM(script=repo_script())
    plain_log: list[str] = []
    assert run_agent(plain, [repo_tool(repo_json, plain_log)], streaming=streaming) == ANSWER

    inner = ScriptedLLM(script=repo_script())
    log: list[str] = []
    answer = run_agent(HeadroomLLM(llm=inner), [repo_tool(repo_json, log)], streaming=streaming)

    assert answer == ANSWER
    assert log == plain_log == ["octokit-fixture-org/hello-world"]
    assert inner.methods == [("astream_chat" if streaming else "achat")] * 2
    assert len(inner.received) == len(plain.received) == 2
    for got, uncompressed in zip(inner.received, plain.received, strict=True):
        validate_pairing(to_neutral(got))
        assert public(got) == core_view(uncompressed)
    first, second = (public(r) for r in inner.received)
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    assert second[2]["tool_calls"][0]["id"] == second[3]["tool_call_id"] == "call_repo"
    tool_text = second[3]["content"]
    assert tool_text != repo_json
    assert count_tokens_text(tool_text) < count_tokens_text(repo_json) / 2
    assert '"full_name":"octokit-fixture-org/hello-world"' in tool_text
    # What the agent holds is untouched: only what is sent is compressed.
    assert plain.received[1][3].content == repo_json
    # The tools the agent offered reach the wrapped LLM, whatever it was asked through.
    names = [t["function"]["name"] for t in inner.call_kwargs[0]["tools"]]
    assert names == ["get_repository"]


def test_parallel_tool_calls_stay_paired(repo_json: str, issues_json: str) -> None:
    script = [
        calling(
            openai_call("call_repo", "get_repository", {"repo": "octokit-fixture-org/hello-world"}),
            openai_call("call_issues", "list_issues", {"repo": "octokit-fixture-org/hello-world"}),
        ),
        ChatMessage(role="assistant", content=ANSWER),
    ]

    def list_issues(repo: str) -> str:
        """List the open issues of a repository."""
        return issues_json

    inner = ScriptedLLM(script=script)
    tools = [repo_tool(repo_json, []), FunctionTool.from_defaults(list_issues)]
    assert run_agent(HeadroomLLM(llm=inner), tools, streaming=False) == ANSWER

    sent = public(inner.received[1])
    validate_pairing(sent)
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "tool"]
    assert [c["id"] for c in sent[2]["tool_calls"]] == ["call_repo", "call_issues"]
    assert {sent[3]["tool_call_id"], sent[4]["tool_call_id"]} == {"call_repo", "call_issues"}
    total = count_tokens_text(repo_json) + count_tokens_text(issues_json)
    assert count_tokens_text(sent[3]["content"]) + count_tokens_text(sent[4]["content"]) < total


def test_agent_workflow_with_llamaindex_mock_function_calling_llm(repo_json: str) -> None:
    seen: list[list[ChatMessage]] = []

    class Recording(MockFunctionCallingLLM):
        async def astream_chat(self, messages: Sequence[ChatMessage], **kw: Any) -> Any:
            seen.append(list(messages))
            return await super().astream_chat(messages, **kw)

    log: list[str] = []

    def get_repository(repo: str = "octokit-fixture-org/hello-world") -> str:
        """Get a GitHub repository."""
        log.append(repo)
        return repo_json

    agent = FunctionAgent(
        name="github",
        description="Answers questions about GitHub repositories.",
        tools=[FunctionTool.from_defaults(get_repository)],
        llm=HeadroomLLM(llm=Recording()),
    )
    workflow = AgentWorkflow(agents=[agent])

    async def main() -> str:
        return str(await workflow.run(user_msg="Describe hello-world."))

    assert asyncio.run(main()) == "Tool calls complete."
    assert log == ["octokit-fixture-org/hello-world"]
    assert len(seen) == 2
    for messages in seen:
        validate_pairing(to_neutral(messages))
    tool = next(m for m in seen[1] if m.role == MessageRole.TOOL)
    assert count_tokens_text(tool.content or "") < count_tokens_text(repo_json) / 2


# -- the four chat entry points ---------------------------------------------------------------


def tool_history(data: str) -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content="You are a GitHub assistant."),
        ChatMessage(role="user", content="Who owns octokit-fixture-org/hello-world?"),
        calling(openai_call("call_1", "get_repository", {"repo": "hello-world"})),
        ChatMessage(role="tool", content=data, additional_kwargs={"tool_call_id": "call_1"}),
    ]


def drain(gen: Iterator[ChatResponse]) -> list[tuple[str | None, str | None]]:
    return [(r.delta, r.message.content) for r in gen]


async def adrain(gen: AsyncIterator[ChatResponse]) -> list[tuple[str | None, str | None]]:
    return [(r.delta, r.message.content) async for r in gen]


def test_chat_entry_points_behave_as_the_wrapped_llm(repo_json: str) -> None:
    history = tool_history(repo_json)
    answer = [ChatMessage(role="assistant", content=ANSWER)]
    raw = {"id": "resp-1"}
    direct = ScriptedLLM(script=answer, raw=raw)
    inner = ScriptedLLM(script=answer, raw=raw)
    wrapped = HeadroomLLM(llm=inner)

    assert wrapped.chat(history, temperature=0.1) == direct.chat(history, temperature=0.1)
    assert asyncio.run(wrapped.achat(history)) == asyncio.run(direct.achat(history))
    assert drain(wrapped.stream_chat(history)) == drain(direct.stream_chat(history))

    async def astream(llm: Any) -> list[tuple[str | None, str | None]]:
        return await adrain(await llm.astream_chat(history))

    streamed = asyncio.run(astream(wrapped))
    assert streamed == asyncio.run(astream(direct))
    assert streamed[-1] == (" octokit-fixture-org.", ANSWER)

    assert inner.methods == ["chat", "achat", "stream_chat", "astream_chat"]
    assert inner.call_kwargs[0] == {"temperature": 0.1}
    expected = core_view(history)
    assert expected != public(history)  # the tool output was cut
    for got in inner.received:
        assert public(got) == expected
    assert all(public(got) == public(history) for got in direct.received)


def test_nothing_to_compress_sends_the_same_objects() -> None:
    history = [
        ChatMessage(role="system", content="You are terse."),
        ChatMessage(role="user", content="Say hi."),
    ]
    inner = ScriptedLLM(script=[ChatMessage(role="assistant", content="hi")])
    HeadroomLLM(llm=inner).chat(history)
    assert all(a is b for a, b in zip(inner.received[0], history, strict=True))


@pytest.mark.parametrize("mode", ["off", "audit"])
def test_mode_off_and_audit_send_the_input_unchanged(
    repo_json: str, mode: str, event_log: EventLog
) -> None:
    history = tool_history(repo_json)
    inner = ScriptedLLM(script=[ChatMessage(role="assistant", content="ok")])
    HeadroomLLM(llm=inner, mode=mode).chat(history)
    assert all(a is b for a, b in zip(inner.received[0], history, strict=True))
    (event,) = event_log.of(HeadroomCompressionEvent)
    assert event.mode == mode
    assert event.tokens_before == event.tokens_after == count_tokens_messages(public(history))


def test_compression_event_reports_what_was_sent(repo_json: str, event_log: EventLog) -> None:
    history = tool_history(repo_json)
    inner = ScriptedLLM(script=[ChatMessage(role="assistant", content="ok")])
    HeadroomLLM(llm=inner).chat(history)

    (event,) = event_log.of(HeadroomCompressionEvent)
    (start,) = event_log.of(LLMChatStartEvent)
    assert event_log.events.index(event) < event_log.events.index(start)
    assert event.tokens_before == count_tokens_messages(public(history), model=MODEL)
    assert event.tokens_after == count_tokens_messages(public(inner.received[0]), model=MODEL)
    assert event.tokens_saved == event.tokens_before - event.tokens_after > 1000
    assert event.transforms_applied == ["smart_crusher:1"]
    assert (event.model, event.mode, event.failures) == (MODEL, "optimize", [])
    assert all(a is b for a, b in zip(event.messages, start.messages, strict=True))
    # The event belongs to the wrapper's span; the wrapped LLM's call is a span of its own.
    assert event.span_id.startswith("HeadroomLLM.chat-")
    assert start.span_id.startswith("ScriptedLLM.chat-")
    assert "messages" not in event.model_dump()


def test_a_history_over_the_window_is_fitted_by_cutting_tool_outputs() -> None:
    pages = [octokit(f"paginate-issues__0{i}_get_200.json") for i in range(4)]
    history = [
        ChatMessage(role="system", content="You triage GitHub issues."),
        ChatMessage(role="user", content="Which issues are open?"),
    ]
    for i, page in enumerate(pages):
        history.append(calling(openai_call(f"call_{i}", "list_issues", {"page": i + 1})))
        history.append(
            ChatMessage(role="tool", content=page, additional_kwargs={"tool_call_id": f"call_{i}"})
        )
    config = HeadroomConfig(rolling_window=RollingWindowConfig(output_buffer_tokens=100))
    inner = ScriptedLLM(script=[ChatMessage(role="assistant", content="ok")])
    HeadroomLLM(llm=inner, config=config, max_tokens=3000).chat(history)

    sent = inner.received[0]
    validate_pairing(to_neutral(sent))
    assert count_tokens_messages(public(sent), model=MODEL) <= 3000 - 100
    assert sent[0] is history[0] and sent[1] is history[1]  # the prompt and the task
    calls = [m for m in sent if m.additional_kwargs.get("tool_calls")]
    assert calls == [m for m in history if m.additional_kwargs.get("tool_calls")]  # as is
    results = [m for m in sent if m.role == MessageRole.TOOL]
    assert [m.additional_kwargs["tool_call_id"] for m in results] == [
        f"call_{i}" for i in range(4)
    ]  # every output still there, cut to fit: the newest included
    assert all("ref" in str(m.content) for m in results)


def test_budget_error_only_when_asked_for_and_nothing_is_sent(repo_json: str) -> None:
    inner = ScriptedLLM(script=[ChatMessage(role="assistant", content="ok")])
    llm = HeadroomLLM(llm=inner, max_tokens=500, on_budget="raise")
    with pytest.raises(BudgetError):
        llm.chat(tool_history(repo_json))
    with pytest.raises(BudgetError):
        asyncio.run(llm.achat(tool_history(repo_json)))
    assert inner.received == []


def test_a_compression_failure_sends_the_input_unchanged(
    repo_json: str, event_log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tokenizer exploded")

    monkeypatch.setattr("headroom_integrations._compress.compress", broken)
    history = tool_history(repo_json)
    inner = ScriptedLLM(script=[ChatMessage(role="assistant", content="ok")])
    response = HeadroomLLM(llm=inner).chat(history)
    assert response.message.content == "ok"
    assert all(a is b for a, b in zip(inner.received[0], history, strict=True))
    (event,) = event_log.of(HeadroomCompressionEvent)
    assert event.failures == ["compression: RuntimeError: tokenizer exploded"]


def test_counting_model_and_settings_come_from_the_wrapped_llm() -> None:
    inner = ScriptedLLM(system_prompt="Answer in French.")
    llm = HeadroomLLM(llm=inner)
    assert llm.metadata == inner.metadata
    assert llm.counting_model == MODEL
    assert HeadroomLLM(llm=MockLLM()).counting_model == "gpt-4o"
    assert HeadroomLLM(llm=inner, model="claude-sonnet-4").counting_model == "claude-sonnet-4"
    assert llm.system_prompt == "Answer in French."
    assert llm.callback_manager is inner.callback_manager
    assert HeadroomLLM(llm=inner, system_prompt="Be brief.").system_prompt == "Be brief."
    assert HeadroomLLM.class_name() == "HeadroomLLM"

    inner.script = [ChatMessage(role="assistant", content="Bonjour")]
    assert llm.predict(PromptTemplate("Greet {name}."), name="Ada") == "Bonjour"
    assert public(inner.received[0]) == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Greet Ada."},
    ]


def test_completions_pass_through() -> None:
    inner = ScriptedLLM()
    llm = HeadroomLLM(llm=inner)
    prompt = "Context: a long retrieved passage.\nQuestion: what?"
    assert llm.complete(prompt).text == f"echo: {prompt}"
    assert asyncio.run(llm.acomplete(prompt)).text == f"echo: {prompt}"
    assert [r.delta for r in llm.stream_complete(prompt)] == [f"echo: {prompt}"]

    async def astream() -> list[str | None]:
        return [r.delta async for r in await llm.astream_complete(prompt)]

    assert asyncio.run(astream()) == [f"echo: {prompt}"]
    assert inner.prompts == [prompt] * 4
    assert inner.received == []


def test_tool_helpers_are_the_wrapped_llms() -> None:
    inner = ScriptedLLM()
    llm = HeadroomLLM(llm=inner)
    response = ChatResponse(message=calling(openai_call("c1", "get_repository", {"repo": "x"})))
    assert llm.get_tool_calls_from_response(response) == inner.get_tool_calls_from_response(
        response
    )
    with pytest.raises(ValueError, match="expected a tool call"):
        llm.get_tool_calls_from_response(ChatResponse(message=ChatMessage(content="no")))

    tool = repo_tool("{}", [])
    prepared = llm._prepare_chat_with_tools([tool], user_msg="hi", tool_required=True)
    assert prepared == inner._prepare_chat_with_tools([tool], user_msg="hi", tool_required=True)

    plain = HeadroomLLM(llm=MockLLM())
    with pytest.raises(NotImplementedError, match="MockLLM is not a FunctionCallingLLM"):
        plain.chat_with_tools([tool], user_msg="hi")
    with pytest.raises(NotImplementedError, match="not a FunctionCallingLLM"):
        plain.get_tool_calls_from_response(response)


# -- converters: every kind of message --------------------------------------------------------


class SDKFunction(BaseModel):
    name: str
    arguments: str


class SDKToolCall(BaseModel):
    """Shaped like openai's ChatCompletionMessageToolCall, which LlamaIndex's OpenAI LLM
    keeps in ``additional_kwargs["tool_calls"]``."""

    id: str
    type: str = "function"
    function: SDKFunction


PNG = "https://example.com/chart.png"

MESSAGES: dict[str, ChatMessage] = {
    "system": ChatMessage(role="system", content="You are a GitHub assistant."),
    "developer": ChatMessage(role="developer", content="Be terse."),
    "user": ChatMessage(role="user", content="Who owns hello-world?"),
    "user_extra": ChatMessage(
        role="user", content="hi", additional_kwargs={"name": "ada", "session_id": "s-1"}
    ),
    "user_image": ChatMessage(
        role="user",
        blocks=[TextBlock(text="What is in this chart?"), ImageBlock(url=PNG, detail="low")],
    ),
    "user_media": ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="Summarise these."),
            DocumentBlock(url="https://example.com/a.pdf", title="a.pdf"),
            AudioBlock(url="https://example.com/a.mp3"),
            CachePoint(cache_control=CacheControl(type="ephemeral")),
        ],
    ),
    "user_citable": ChatMessage(
        role="user",
        blocks=[
            CitableBlock(
                title="Docs", source="https://docs.github.com", content="Repos hold code."
            ),
            TextBlock(text="What do repos hold?"),
        ],
    ),
    "assistant": ChatMessage(role="assistant", content="It is owned by octokit-fixture-org."),
    "assistant_empty": ChatMessage(role="assistant"),
    "assistant_thinking": ChatMessage(
        role="assistant",
        blocks=[
            ThinkingBlock(content="The owner field says so.", additional_information={"sig": "x"}),
            TextBlock(text="octokit-fixture-org"),
        ],
    ),
    "assistant_citation": ChatMessage(
        role="assistant",
        blocks=[
            CitationBlock(
                cited_content="Repos hold code.",
                source="https://docs.github.com",
                title="Docs",
                additional_location_info={"start": 0},
            ),
        ],
    ),
    "assistant_openai_dicts": calling(openai_call("call_1", "get_repository", {"repo": "a/b"})),
    "assistant_openai_objects": ChatMessage(
        role="assistant",
        content="Let me look.",
        additional_kwargs={
            "tool_calls": [
                SDKToolCall(id="call_2", function=SDKFunction(name="f", arguments='{"x": 1}'))
            ]
        },
    ),
    "assistant_blocks": ChatMessage(
        role="assistant",
        blocks=[
            TextBlock(text="Calling two tools."),
            ToolCallBlock(tool_call_id="call_3", tool_name="f", tool_kwargs={"x": 1}),
            ToolCallBlock(tool_call_id="call_4", tool_name="g", tool_kwargs='{"y": 2}'),
        ],
    ),
    "assistant_both": ChatMessage(  # the newer OpenAI LLM keeps both, with the same ids
        role="assistant",
        blocks=[ToolCallBlock(tool_call_id="call_5", tool_name="f", tool_kwargs={"x": 1})],
        additional_kwargs={"tool_calls": [openai_call("call_5", "f", {"x": 1})]},
    ),
    "assistant_anthropic": ChatMessage(
        role="assistant",
        additional_kwargs={
            "tool_calls": [{"id": "toolu_1", "name": "f", "input": {"x": 1}, "type": "tool_use"}]
        },
    ),
    "assistant_return_direct": ChatMessage(  # FunctionAgent's return_direct turn
        role="assistant", content="done", additional_kwargs={"tool_call_id": "call_1"}
    ),
    "tool": ChatMessage(
        role="tool", content='{"ok": true}', additional_kwargs={"tool_call_id": "c"}
    ),
    "tool_named": ChatMessage(
        role="tool", content="42", additional_kwargs={"tool_call_id": "c", "name": "f"}
    ),
    "tool_blocks": ChatMessage(
        role="tool",
        blocks=[TextBlock(text="part one"), TextBlock(text="part two")],
        additional_kwargs={"tool_call_id": "c"},
    ),
    "function": ChatMessage(role="function", content="1", additional_kwargs={"name": "f"}),
    "chatbot": ChatMessage(role=MessageRole.CHATBOT, content="Cohere says hi."),
    "model": ChatMessage(role=MessageRole.MODEL, content="Gemini says hi."),
}

NEUTRAL: dict[str, dict[str, Any]] = {
    "system": {"role": "system", "content": "You are a GitHub assistant."},
    "developer": {"role": "developer", "content": "Be terse."},
    "user": {"role": "user", "content": "Who owns hello-world?"},
    "user_extra": {"role": "user", "content": "hi", "name": "ada"},
    "user_image": {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this chart?"},
            {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
        ],
    },
    "user_media": {
        "role": "user",
        "content": [
            {"type": "text", "text": "Summarise these."},
            {"type": "document", "title": "a.pdf"},
            {"type": "audio"},
            {"type": "cache"},
        ],
    },
    "user_citable": {
        "role": "user",
        "content": [
            {"type": "citable", "title": "Docs", "text": "Repos hold code."},
            {"type": "text", "text": "What do repos hold?"},
        ],
    },
    "assistant": {"role": "assistant", "content": "It is owned by octokit-fixture-org."},
    "assistant_empty": {"role": "assistant", "content": None},
    "assistant_thinking": {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "The owner field says so."},
            {"type": "text", "text": "octokit-fixture-org"},
        ],
    },
    "assistant_citation": {
        "role": "assistant",
        "content": [{"type": "citation", "text": "Repos hold code."}],
    },
    "assistant_openai_dicts": {
        "role": "assistant",
        "content": None,
        "tool_calls": [openai_call("call_1", "get_repository", {"repo": "a/b"})],
    },
    "assistant_openai_objects": {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
        ],
    },
    "assistant_blocks": {
        "role": "assistant",
        "content": "Calling two tools.",
        "tool_calls": [openai_call("call_3", "f", {"x": 1}), openai_call("call_4", "g", {"y": 2})],
    },
    "assistant_both": {
        "role": "assistant",
        "content": None,
        "tool_calls": [openai_call("call_5", "f", {"x": 1})],
    },
    "assistant_anthropic": {
        "role": "assistant",
        "content": None,
        "tool_calls": [openai_call("toolu_1", "f", {"x": 1})],
    },
    "assistant_return_direct": {"role": "assistant", "content": "done"},
    "tool": {"role": "tool", "content": '{"ok": true}', "tool_call_id": "c"},
    "tool_named": {"role": "tool", "content": "42", "name": "f", "tool_call_id": "c"},
    "tool_blocks": {
        "role": "tool",
        "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}],
        "tool_call_id": "c",
    },
    "function": {"role": "function", "content": "1", "name": "f"},
    "chatbot": {"role": "assistant", "content": "Cohere says hi."},
    "model": {"role": "assistant", "content": "Gemini says hi."},
}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_to_neutral_gives_the_openai_form(kind: str) -> None:
    (neutral,) = to_neutral([MESSAGES[kind]])
    assert {k: v for k, v in neutral.items() if k != LI_KEY} == NEUTRAL[kind]
    check_messages([neutral])
    # The private key is never counted: its value is not a string.
    assert not isinstance(neutral[LI_KEY], str)
    assert count_tokens_messages([neutral]) == count_tokens_messages([NEUTRAL[kind]])


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_round_trip_returns_the_very_message(kind: str) -> None:
    message = MESSAGES[kind]
    snapshot = message.model_copy(deep=True)
    (back,) = from_neutral(to_neutral([message]))
    assert back is message
    assert message == snapshot  # not mutated


def test_round_trip_of_a_whole_history_through_the_core(repo_json: str) -> None:
    history = [m for m in MESSAGES.values() if m.role != MessageRole.TOOL]
    history += tool_history(repo_json)
    neutral = to_neutral(history)
    result = compress(neutral, model=MODEL, mode="optimize")
    back = from_neutral(result.messages)
    assert len(back) == len(history)
    changed = [i for i, (a, b) in enumerate(zip(back, history, strict=True)) if a is not b]
    assert changed == [len(history) - 1]  # only the tool output
    tool = back[-1]
    assert tool.additional_kwargs == {"tool_call_id": "call_1"}
    assert tool.role == MessageRole.TOOL
    assert public([tool]) == [{k: v for k, v in result.messages[-1].items() if k != LI_KEY}]


def test_a_rewritten_text_part_keeps_every_other_block() -> None:
    image = ImageBlock(url=PNG)
    call = ToolCallBlock(tool_call_id="c9", tool_name="f", tool_kwargs={})
    message = ChatMessage(
        role="tool",
        blocks=[TextBlock(text="long output"), image, call, TextBlock(text="tail")],
        additional_kwargs={"tool_call_id": "c9", "trace": {"a": 1}},
    )
    (neutral,) = to_neutral([message])
    parts = list(neutral["content"])
    parts[0] = {**parts[0], "text": "short"}
    (back,) = from_neutral([{**neutral, "content": parts}])
    assert back is not message
    assert [type(b).__name__ for b in back.blocks] == [
        "TextBlock",
        "ImageBlock",
        "ToolCallBlock",
        "TextBlock",
    ]
    assert back.blocks[0].text == "short"
    assert (
        back.blocks[1] is image and back.blocks[2] is call and back.blocks[3] is message.blocks[3]
    )
    assert back.additional_kwargs is message.additional_kwargs
    assert message.blocks[0].text == "long output"  # the original is untouched


def test_changed_fields_come_back_and_the_rest_stays() -> None:
    message = MESSAGES["assistant_blocks"]
    (neutral,) = to_neutral([message])
    new_calls = [openai_call("call_9", "h", {"z": 3})]
    (back,) = from_neutral([{**neutral, "content": "Calling one tool.", "tool_calls": new_calls}])
    assert back.content == "Calling one tool."
    assert back.additional_kwargs["tool_calls"] == new_calls
    assert [(b.tool_call_id, b.tool_name, b.tool_kwargs) for b in back.blocks[1:]] == [
        ("call_9", "h", {"z": 3})
    ]
    (again,) = to_neutral([back])
    assert again["tool_calls"] == new_calls

    tool = MESSAGES["tool_named"]
    (neutral,) = to_neutral([tool])
    (back,) = from_neutral([{**neutral, "tool_call_id": "c2", "role": "user"}])
    assert back.additional_kwargs == {"tool_call_id": "c2", "name": "f"}
    assert back.role == MessageRole.USER


def test_dicts_the_core_wrote_become_plain_messages() -> None:
    note = {"role": "system", "content": "[headroom: 3 earlier messages were left out]"}
    call = {"role": "assistant", "content": None, "tool_calls": [openai_call("c1", "f", {})]}
    result = {"role": "tool", "content": [{"type": "text", "text": "ok"}], "tool_call_id": "c1"}
    back = from_neutral([note, call, result])
    assert back[0] == ChatMessage(role="system", content=note["content"])
    assert back[1].additional_kwargs == {"tool_calls": [openai_call("c1", "f", {})]}
    assert [(b.tool_call_id, b.tool_name) for b in back[1].blocks] == [("c1", "f")]
    assert back[2].additional_kwargs == {"tool_call_id": "c1"}
    assert back[2].content == "ok"
    assert public(back) == [note, call, {**result, "content": "ok"}]


def test_to_neutral_rejects_what_is_not_a_chat_message() -> None:
    with pytest.raises(TypeError, match=r"messages\[1\] must be a llama_index ChatMessage"):
        to_neutral([MESSAGES["user"], {"role": "user", "content": "hi"}])  # type: ignore[list-item]

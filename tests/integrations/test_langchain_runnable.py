"""HeadroomRunnable in real LangChain chains with LangChain's own fake chat models, the
compression event, the retrieve tool, and the package surface."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable, RunnableSerializable
from langchain_core.tools import BaseTool
from langchain_core.tracers.context import collect_runs
from pydantic import ValidationError

import headroom_integrations.langchain as hl
from headroom_core import BudgetError, HeadroomConfig, compress, validate_pairing
from headroom_core.ccr import (
    RETRIEVE_TOOL_NAME,
    MemoryOriginalStore,
    get_default_store,
    retrieve_tool_definition,
    set_default_store,
)
from headroom_core.tokens import count_tokens_text
from headroom_integrations.langchain import (
    EVENT_NAME,
    HeadroomRunnable,
    from_neutral,
    headroom_retrieve,
    make_retrieve_tool,
    to_neutral,
)

ROWS = [
    {
        "id": 1000 + i,
        "name": f"deployment {i}",
        "status": "failed" if i % 17 == 0 else "ok",
        "region": "eu-west-1",
        "owner": {"team": "sre", "oncall": f"user{i % 5}"},
    }
    for i in range(250)
]
BIG_JSON = json.dumps(ROWS, indent=2)
REF = re.compile(r'ref=([0-9a-f]{32})|"ref":\s*"([0-9a-f]{32})"')
PAYLOAD_KEYS = {
    "tokens_before",
    "tokens_after",
    "tokens_saved",
    "transforms_applied",
    "model",
    "mode",
    "failures",
    "tools_tokens",
    "fallback",
}

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "You are an SRE assistant."),
        MessagesPlaceholder("history"),
        ("human", "{question}"),
    ]
)


def history() -> list[BaseMessage]:
    return [
        HumanMessage("List the deployments."),
        AIMessage(
            "",
            id="a1",
            tool_calls=[{"id": "c1", "name": "list_deployments", "args": {"limit": 250}}],
        ),
        ToolMessage(BIG_JSON, tool_call_id="c1", name="list_deployments", artifact={"rows": 250}),
        AIMessage("There are 250 deployments."),
    ]


INPUTS = {"history": history(), "question": "Why did deployment 1017 fail?"}


class Recorder(BaseCallbackHandler):
    """A real callback handler: what each chat model was given, and every custom event."""

    def __init__(self) -> None:
        self.model_inputs: list[list[BaseMessage]] = []
        self.events: list[tuple[str, Any, UUID]] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.model_inputs.extend(messages)

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data, run_id))


def fake_model(n: int = 1) -> FakeMessagesListChatModel:
    return FakeMessagesListChatModel(responses=[AIMessage(f"answer {i}") for i in range(n)])


def direct(messages: list[BaseMessage], **kwargs: Any) -> tuple[list[BaseMessage], Any]:
    """What headroom_core.compress gives for the same messages, as LangChain messages."""
    result = compress(to_neutral(messages), **kwargs)
    return from_neutral(result.messages), result


@pytest.fixture()
def fresh_store() -> Iterator[MemoryOriginalStore]:
    before = get_default_store()
    store = MemoryOriginalStore()
    set_default_store(store)
    yield store
    set_default_store(before)


# --- the chain ---------------------------------------------------------------------------------


def test_is_a_real_runnable_with_chat_model_types() -> None:
    runnable = HeadroomRunnable()
    assert isinstance(runnable, RunnableSerializable)
    assert runnable.OutputType == list[BaseMessage]
    assert (
        runnable.model,
        runnable.mode,
        runnable.config,
        runnable.query,
        runnable.max_tokens,
    ) == (
        "gpt-4o",
        "optimize",
        None,
        None,
        None,
    )
    with pytest.raises(ValidationError, match="mode"):
        HeadroomRunnable(mode="shrink")  # type: ignore[arg-type,unused-ignore]


def test_model_receives_exactly_what_the_core_gives() -> None:
    rec = Recorder()
    chain = PROMPT | HeadroomRunnable() | fake_model()
    answer = chain.invoke(INPUTS, config={"callbacks": [rec]})
    assert answer.content == "answer 0"

    prompt_messages = PROMPT.invoke(INPUTS).to_messages()
    expected, result = direct(prompt_messages)
    (received,) = rec.model_inputs
    assert received == expected
    assert result.tokens_after < result.tokens_before / 3
    assert received[3].content != BIG_JSON and "1017" in received[3].content
    # Only the tool output changed; the history's other messages are the caller's own objects.
    assert [m is h for m, h in zip(received[1:5], INPUTS["history"], strict=True)] == [
        True,
        True,
        False,
        True,
    ]
    assert isinstance(received[3], ToolMessage) and received[3].artifact == {"rows": 250}
    validate_pairing(to_neutral(received))


def test_event_reports_the_compression() -> None:
    rec = Recorder()
    (PROMPT | HeadroomRunnable() | fake_model()).invoke(INPUTS, config={"callbacks": [rec]})
    _, result = direct(PROMPT.invoke(INPUTS).to_messages())
    ((name, data, _),) = rec.events
    assert name == EVENT_NAME == "headroom_compression"
    assert set(data) == PAYLOAD_KEYS
    assert data == {
        "tokens_before": result.tokens_before,
        "tokens_after": result.tokens_after,
        "tokens_saved": result.tokens_before - result.tokens_after,
        "transforms_applied": list(result.transforms_applied),
        "model": "gpt-4o",
        "mode": "optimize",
        "failures": [],
        "tools_tokens": 0,
        "fallback": None,
    }
    assert data["transforms_applied"] == ["smart_crusher:1"]


def test_run_name_and_event_belong_to_the_runnable_run_in_the_tree() -> None:
    rec = Recorder()
    step = HeadroomRunnable().with_config(run_name="compress-step")
    with collect_runs() as runs:
        (PROMPT | step | fake_model()).invoke(INPUTS, config={"callbacks": [rec]})
    (root,) = runs.traced_runs
    assert [c.name for c in root.child_runs] == [
        "ChatPromptTemplate",
        "compress-step",
        "FakeMessagesListChatModel",
    ]
    compress_run = root.child_runs[1]
    assert compress_run.run_type == "chain" and compress_run.error is None
    assert rec.events[0][2] == compress_run.id
    assert compress_run.outputs is not None


@pytest.mark.parametrize("query", [None, "deployment 1017"])
def test_settings_reach_the_core(query: str | None) -> None:
    config = HeadroomConfig()
    messages = PROMPT.invoke(INPUTS).to_messages()
    got = HeadroomRunnable(model="gpt-4", query=query, config=config).invoke(messages)
    assert got == direct(messages, model="gpt-4", query=query, config=config)[0]


def test_batch_and_abatch() -> None:
    inputs = [INPUTS, {"history": history()[:1], "question": "hi"}, INPUTS]
    rec = Recorder()
    chain = PROMPT | HeadroomRunnable() | fake_model(3)
    answers = chain.batch(inputs, config={"callbacks": [rec], "max_concurrency": 1})
    assert [a.content for a in answers] == ["answer 0", "answer 1", "answer 2"]
    expected = [direct(PROMPT.invoke(i).to_messages())[0] for i in inputs]
    assert rec.model_inputs == expected
    assert len(rec.events) == 3

    arec = Recorder()
    runnable = HeadroomRunnable()
    got = asyncio.run(
        runnable.abatch([PROMPT.invoke(i) for i in inputs], config={"callbacks": [arec]})
    )
    assert got == expected
    # abatch runs the inputs concurrently: one event each, in any order.
    assert sorted(e[1]["tokens_before"] for e in arec.events) == sorted(
        e[1]["tokens_before"] for e in rec.events
    )


def test_ainvoke_dispatches_the_event_asynchronously() -> None:
    rec = Recorder()
    chain = PROMPT | HeadroomRunnable() | fake_model()
    answer = asyncio.run(chain.ainvoke(INPUTS, config={"callbacks": [rec]}))
    assert answer.content == "answer 0"
    assert rec.model_inputs == [direct(PROMPT.invoke(INPUTS).to_messages())[0]]
    ((name, data, _),) = rec.events
    assert name == EVENT_NAME and data["tokens_saved"] > 0


async def astream_all(chain: Runnable[Any, Any], inputs: Any, config: Any) -> list[Any]:
    return [chunk async for chunk in chain.astream(inputs, config=config)]


@pytest.mark.parametrize("use_async", [False, True])
def test_stream_and_astream_through_a_streaming_model(use_async: bool) -> None:
    expected = direct(PROMPT.invoke(INPUTS).to_messages())[0]
    rec = Recorder()
    model = GenericFakeChatModel(messages=iter([AIMessage("streamed answer here")]))
    chain = PROMPT | HeadroomRunnable() | model
    config: Any = {"callbacks": [rec]}
    if use_async:
        chunks = asyncio.run(astream_all(chain, INPUTS, config))
    else:
        chunks = list(chain.stream(INPUTS, config=config))
    assert len(chunks) > 1
    assert "".join(str(c.content) for c in chunks) == "streamed answer here"
    assert rec.model_inputs == [expected]
    assert [e[0] for e in rec.events] == [EVENT_NAME]
    own = HeadroomRunnable()
    prompt_value = PROMPT.invoke(INPUTS)
    own_chunks = (
        asyncio.run(astream_all(own, prompt_value, None))
        if use_async
        else list(own.stream(prompt_value))
    )
    assert own_chunks == [expected]


def test_astream_events_carries_the_custom_event() -> None:
    async def names() -> list[tuple[str, str]]:
        chain = PROMPT | HeadroomRunnable() | fake_model()
        return [(e["event"], e["name"]) async for e in chain.astream_events(INPUTS, version="v2")]

    assert ("on_custom_event", EVENT_NAME) in asyncio.run(names())


@pytest.mark.parametrize(
    "given",
    [
        "just a string",
        [("system", "Be brief."), ("human", "hello")],
        [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}],
    ],
)
def test_takes_what_a_chat_model_takes(given: Any) -> None:
    rec = Recorder()
    model = fake_model()
    (HeadroomRunnable() | model).invoke(given, config={"callbacks": [rec]})
    seen_without = Recorder()
    fake_model().invoke(given, config={"callbacks": [seen_without]})
    assert rec.model_inputs == seen_without.model_inputs


def test_refuses_input_no_chat_model_takes() -> None:
    with pytest.raises(TypeError, match="PromptValue, a str, or a list"):
        HeadroomRunnable().invoke(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["audit", "off"])
def test_audit_and_off_return_the_input_unchanged_and_report(mode: str) -> None:
    messages = PROMPT.invoke(INPUTS).to_messages()
    rec = Recorder()
    got = HeadroomRunnable(mode=mode).invoke(messages, config={"callbacks": [rec]})  # type: ignore[arg-type,unused-ignore]
    assert len(got) == len(messages) and all(a is b for a, b in zip(got, messages, strict=True))
    ((_, data, _),) = rec.events
    assert data["mode"] == mode
    assert data["tokens_before"] == data["tokens_after"] > 0 and data["tokens_saved"] == 0
    assert data["transforms_applied"] == []


def test_mode_none_defers_to_the_config() -> None:
    messages = PROMPT.invoke(INPUTS).to_messages()
    rec = Recorder()
    runnable = HeadroomRunnable(mode=None, config=HeadroomConfig(mode="audit"))
    assert runnable.invoke(messages, config={"callbacks": [rec]}) == messages
    assert rec.events[0][1]["mode"] == "audit"


def test_budget_error_propagates_and_the_run_records_it() -> None:
    step = HeadroomRunnable(max_tokens=1000, on_budget="raise")
    chain = PROMPT | step.with_config(run_name="fit") | fake_model()
    with collect_runs() as runs, pytest.raises(BudgetError, match="budget"):
        chain.invoke(INPUTS)
    fit = next(c for c in runs.traced_runs[0].child_runs if c.name == "fit")
    assert fit.error is not None and "BudgetError" in fit.error


def test_an_unexpected_failure_does_not_break_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tokenizer exploded")

    monkeypatch.setattr("headroom_integrations._compress.compress", broken)
    rec = Recorder()
    answer = (PROMPT | HeadroomRunnable() | fake_model()).invoke(
        INPUTS, config={"callbacks": [rec]}
    )
    assert answer.content == "answer 0"
    assert rec.model_inputs == [PROMPT.invoke(INPUTS).to_messages()]
    ((_, data, _),) = rec.events
    assert data["failures"] == ["compression: RuntimeError: tokenizer exploded"]
    assert data["tokens_saved"] == 0


def test_a_history_over_the_window_arrives_fitted_as_the_core_fits_it() -> None:
    long_history: list[BaseMessage] = [SystemMessage("You are an SRE assistant.")]
    for k in range(8):
        long_history += [
            HumanMessage(f"Show build log {k}. " + "Compare it with the last one. " * 40),
            AIMessage("", tool_calls=[{"id": f"c{k}", "name": "fetch_log", "args": {"build": k}}]),
            ToolMessage(
                "\n".join(f"step {j}: compiled module_{k}_{j}.o in {j * 3} ms" for j in range(120)),
                tool_call_id=f"c{k}",
            ),
            AIMessage(f"Build {k} passed. " + "It took as long as the last one. " * 40),
        ]
    long_history.append(HumanMessage("Which build was slowest?"))
    runnable = HeadroomRunnable(max_tokens=6_000)
    got = runnable.invoke(long_history)
    assert got == direct(long_history, max_tokens=6_000)[0]
    assert len(got) < len(long_history)  # turns were dropped (cutting the logs was not enough)
    assert got[:2] == long_history[:2]  # the system prompt and the task
    notes = [m for m in got if "left out" in str(m.content) and "ref=" in str(m.content)]
    assert notes  # every dropped run is named, with the ref that brings it back
    validate_pairing(to_neutral(got))


def test_real_conversations_compress_as_the_core_does(
    conversations: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    runnable = HeadroomRunnable()
    for name, dicts in conversations:
        messages = convert_to_messages(dicts)
        got = runnable.invoke(messages)
        assert got == direct(messages)[0], name
        # ... and as the core does on the OpenAI dicts themselves.
        assert got == convert_to_messages(compress(dicts).messages), name
        validate_pairing(to_neutral(got), allow_pending=True)  # some end on a pending call


# --- the retrieve tool ---------------------------------------------------------------------------


def test_retrieve_tool_is_the_core_definition() -> None:
    definition = retrieve_tool_definition("openai")["function"]
    assert isinstance(headroom_retrieve, BaseTool)
    assert headroom_retrieve.name == RETRIEVE_TOOL_NAME == "headroom_retrieve"
    assert headroom_retrieve.description == definition["description"]
    schema = headroom_retrieve.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    assert schema["required"] == ["ref"]
    for arg in ("ref", "query"):
        assert (
            schema["properties"][arg]["description"]
            == definition["parameters"]["properties"][arg]["description"]
        )


def test_retrieve_tool_end_to_end(fresh_store: MemoryOriginalStore) -> None:
    rec = Recorder()
    (PROMPT | HeadroomRunnable() | fake_model()).invoke(INPUTS, config={"callbacks": [rec]})
    compressed = rec.model_inputs[0][3].content
    assert isinstance(compressed, str)
    refs = {a or b for a, b in REF.findall(compressed)}
    assert refs and len(fresh_store) > 0
    ref = refs.pop()
    whole = make_retrieve_tool(max_tokens=None)
    assert json.loads(whole.invoke({"ref": ref})) == ROWS
    # the default tool pages what is over its cap (8,000 tokens); every page fits
    first = headroom_retrieve.invoke({"ref": ref})
    head, body = first.split("\n", 1)
    assert head.startswith("[headroom: items 1-") and f"ref={ref}" in head
    assert json.loads(body) == ROWS[: len(json.loads(body))]
    assert count_tokens_text(first) <= 8_000
    filtered = headroom_retrieve.invoke({"ref": ref, "query": "deployment 17"})
    assert filtered.startswith("[headroom:") and '"id":1017' in filtered
    # As the model calls it: a ToolCall in, a ToolMessage out.
    reply = headroom_retrieve.invoke(
        {"type": "tool_call", "id": "r1", "name": RETRIEVE_TOOL_NAME, "args": {"ref": ref}}
    )
    assert isinstance(reply, ToolMessage) and reply.tool_call_id == "r1"
    assert reply.content == first
    assert asyncio.run(headroom_retrieve.ainvoke({"ref": ref, "offset": 0})) == first


def test_retrieve_tool_never_raises() -> None:
    unknown = headroom_retrieve.invoke({"ref": "0123456789abcdef0123456789abcdef"})
    assert unknown.startswith(
        "[headroom: no original stored under ref '0123456789abcdef0123456789abcdef'"
    )
    malformed = headroom_retrieve.invoke({"ref": "not-a-ref"})
    assert "is not a valid ref" in malformed
    wrong_type = headroom_retrieve.invoke({"ref": 123})
    assert wrong_type.startswith("[headroom: invalid arguments for headroom_retrieve (ref:")
    missing = headroom_retrieve.invoke({"query": "x"})
    assert "ref: Field required" in missing


def test_make_retrieve_tool_reads_the_store_it_is_given() -> None:
    store = MemoryOriginalStore()
    ref = store.put("only in this store", kind="text")
    own = make_retrieve_tool(store=store)
    assert own.invoke({"ref": ref}) == "only in this store"
    assert headroom_retrieve.invoke({"ref": ref}).startswith("[headroom: no original stored")


# --- the package ---------------------------------------------------------------------------------


def test_package_exports() -> None:
    assert {
        "HeadroomRunnable",
        "to_neutral",
        "from_neutral",
        "make_retrieve_tool",
        "headroom_retrieve",
        "HeadroomChatModel",
        "HeadroomCallbackHandler",
        "AsyncHeadroomCallbackHandler",
        "HeadroomMiddleware",
    } <= set(hl.__all__)
    assert hl.HeadroomRunnable is HeadroomRunnable
    assert isinstance(hl.HeadroomRunnable(), Runnable)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        hl.Nope  # noqa: B018


def test_a_missing_adapter_module_is_an_attribute_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(hl._LAZY, "HeadroomFuture", "not_written_yet")
    assert not hasattr(hl, "HeadroomFuture")
    with pytest.raises(AttributeError, match="not_written_yet is missing"):
        hl.HeadroomFuture  # noqa: B018


def test_without_langchain_the_import_fails_with_the_install_hint() -> None:
    probe = (
        "import sys; sys.modules['langchain_core'] = None\n"
        "try:\n"
        "    import headroom_integrations.langchain\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert 'pip install "headroom-context[langchain]"' in out.stdout

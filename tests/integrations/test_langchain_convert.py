"""LangChain messages <-> neutral dicts: exact round trip, core-valid neutral form."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)

from headroom_core import compress, count_tokens_messages, validate_pairing
from headroom_core.messages import check_messages
from headroom_integrations.langchain import from_neutral, to_neutral
from headroom_integrations.langchain._convert import LC_KEY


class Artifact:
    """Not JSON, not comparable by value: an artifact must ride through as the same object."""

    def __init__(self, payload: str) -> None:
        self.payload = payload


ARTIFACT = Artifact("the full output the model never sees")

MESSAGES: dict[str, BaseMessage] = {
    "system": SystemMessage("You are an SRE assistant."),
    "system_full": SystemMessage(
        "Prompt",
        id="s1",
        name="ops",
        additional_kwargs={"cache": True},
        response_metadata={"k": "v"},
    ),
    "developer": SystemMessage("Be terse.", additional_kwargs={"__openai_role__": "developer"}),
    "human": HumanMessage("Why did dep-1027 fail?", id="h1", name="alice"),
    "human_blocks": HumanMessage(
        content=[
            {"type": "text", "text": "What is in this image?"},
            {"type": "image", "url": "https://example.com/a.png"},
            "a bare string part",
        ]
    ),
    "ai_text": AIMessage(
        "It failed on a timeout.",
        id="run-1",
        usage_metadata={
            "input_tokens": 10,
            "output_tokens": 5,
            "total_tokens": 15,
            "input_token_details": {"cache_read": 4},
        },
        response_metadata={"model_name": "gpt-4o", "finish_reason": "stop"},
        additional_kwargs={"refusal": None},
    ),
    "ai_tools": AIMessage(
        "",
        tool_calls=[
            {"id": "c1", "name": "list_deployments", "args": {"env": "prod", "limit": 50}},
            {"id": "c2", "name": "get_logs", "args": {"q": "naïve ünïcode", "n": [1, 2.5, None]}},
        ],
        invalid_tool_calls=[
            {"id": "c3", "name": "broken", "args": "{not json", "error": "bad JSON"}
        ],
    ),
    "ai_blocks": AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "think"},
            {"type": "text", "text": "Calling the tool."},
            {"type": "tool_call", "id": "c9", "name": "f", "args": {}},
        ],
        tool_calls=[{"id": "c9", "name": "f", "args": {}}],
        response_metadata={"output_version": "v1"},
    ),
    "ai_chunk": AIMessageChunk(
        content="partial",
        tool_call_chunks=[{"name": "f", "args": '{"a": 1}', "id": "c7", "index": 0}],
    ),
    "tool": ToolMessage(
        '[{"id": 1}]',
        tool_call_id="c1",
        name="list_deployments",
        id="t1",
        artifact=ARTIFACT,
    ),
    "tool_error": ToolMessage(
        content=[{"type": "text", "text": "Traceback ..."}],
        tool_call_id="c2",
        status="error",
        artifact={"exit_code": 1},
    ),
    "chat_user": ChatMessage(content="from a known role", role="user"),
    "chat_other": ChatMessage(content="critique: too long", role="critic", id="x"),
    "function": FunctionMessage(content='{"ok": true}', name="legacy_fn"),
    "human_chunk": HumanMessageChunk(content="streamed"),
    "extra_field": HumanMessage("with an extra", custom_field={"a": 1}),
}


def assert_same(got: BaseMessage, want: BaseMessage) -> None:
    assert type(got) is type(want)
    for name in type(want).model_fields:
        assert getattr(got, name) == getattr(want, name), name
    assert got.model_extra == want.model_extra
    assert got == want


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_round_trip_is_exact_for_every_message_type(key: str) -> None:
    message = MESSAGES[key]
    (neutral,) = to_neutral([message])
    (back,) = from_neutral([neutral])
    assert_same(back, message)


def test_round_trip_keeps_the_artifact_object_itself() -> None:
    (back,) = from_neutral(to_neutral([MESSAGES["tool"]]))
    assert isinstance(back, ToolMessage)
    assert back.artifact is ARTIFACT


def test_neutral_form_is_openai_chat_and_valid_for_the_core() -> None:
    history = [MESSAGES[k] for k in ("system", "human", "ai_tools")] + [
        ToolMessage("deployments", tool_call_id="c1", name="list_deployments"),
        ToolMessage("logs", tool_call_id="c2"),
        ToolMessage("error: unparseable arguments", tool_call_id="c3", status="error"),
        AIMessage("done"),
    ]
    neutral = to_neutral(history)
    check_messages(neutral)
    validate_pairing(neutral)
    assert [d["role"] for d in neutral] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "tool",
        "assistant",
    ]
    assert neutral[1]["name"] == "alice" and "name" not in neutral[0]
    calls = neutral[2]["tool_calls"]
    assert [c["id"] for c in calls] == ["c1", "c2", "c3"]
    assert all(c["type"] == "function" for c in calls)
    assert json.loads(calls[1]["function"]["arguments"]) == {
        "q": "naïve ünïcode",
        "n": [1, 2.5, None],
    }
    assert (
        "naïve" in calls[1]["function"]["arguments"]
    )  # ensure_ascii=False, as LangChain writes it
    assert calls[2]["function"] == {"name": "broken", "arguments": "{not json"}
    assert neutral[3]["tool_call_id"] == "c1"
    assert all(isinstance(d[LC_KEY], dict) for d in neutral)
    assert {k for d in neutral for k in d} <= {
        "role",
        "content",
        "name",
        "tool_calls",
        "tool_call_id",
        LC_KEY,
    }


@pytest.mark.parametrize(
    ("key", "role"),
    [
        ("developer", "developer"),
        ("chat_user", "user"),
        ("chat_other", "user"),
        ("function", "function"),
        ("ai_chunk", "assistant"),
        ("human_chunk", "user"),
    ],
)
def test_roles_of_the_less_common_messages(key: str, role: str) -> None:
    (neutral,) = to_neutral([MESSAGES[key]])
    assert neutral["role"] == role


def test_langchain_fields_cost_no_tokens_and_serialise_to_nothing() -> None:
    neutral = to_neutral(list(MESSAGES.values()))
    bare = [{k: v for k, v in d.items() if k != LC_KEY} for d in neutral]
    assert count_tokens_messages(neutral) == count_tokens_messages(bare)
    dumped = orjson.dumps(neutral).decode()  # the context fitter stores dropped messages as JSON
    assert ARTIFACT.payload not in dumped and "exit_code" not in dumped and "gpt-4o" not in dumped
    assert json.loads(json.dumps(neutral))[0][LC_KEY] == {"type": "system", "message": ""}


def test_copies_and_pickles_of_neutral_dicts_still_round_trip() -> None:
    messages = [m for k, m in MESSAGES.items() if k != "tool"]  # Artifact is a local class
    neutral = to_neutral(messages)
    for again in (copy.copy(neutral), copy.deepcopy(neutral), pickle.loads(pickle.dumps(neutral))):
        for got, want in zip(from_neutral(again), messages, strict=True):
            assert_same(got, want)


def test_changed_content_comes_back_with_every_other_field_as_before() -> None:
    tool, ai = MESSAGES["tool"], MESSAGES["ai_text"]
    neutral = to_neutral([tool, ai])
    neutral = [{**neutral[0], "content": "[compressed]"}, {**neutral[1], "content": ["a", "b"]}]
    new_tool, new_ai = from_neutral(neutral)
    assert new_tool.content == "[compressed]" and new_ai.content == ["a", "b"]
    assert new_tool.model_dump(exclude={"content"}) == tool.model_dump(exclude={"content"})
    assert new_ai.model_dump(exclude={"content"}) == ai.model_dump(exclude={"content"})
    assert isinstance(new_tool, ToolMessage) and new_tool.artifact is ARTIFACT


def test_changed_tool_calls_are_parsed_like_langchain_parses_openai_calls() -> None:
    (neutral,) = to_neutral([MESSAGES["ai_tools"]])
    neutral["tool_calls"] = [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "list_deployments", "arguments": '{"env": "dev"}'},
        },
        {"id": "c3", "type": "function", "function": {"name": "broken", "arguments": "{still not"}},
    ]
    (back,) = from_neutral([neutral])
    assert isinstance(back, AIMessage)
    assert [(tc["id"], tc["args"]) for tc in back.tool_calls] == [("c1", {"env": "dev"})]
    assert [(tc["id"], tc["args"]) for tc in back.invalid_tool_calls] == [("c3", "{still not")]


def test_dicts_without_langchain_fields_become_plain_messages_of_their_role() -> None:
    note = {
        "role": "system",
        "content": "[headroom: 8 earlier messages were left out; ref=0123456789abcdef]",
    }
    plain: list[dict[str, Any]] = [
        note,
        {"role": "user", "content": "hi", "name": "bob"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "developer", "content": "terse"},
    ]
    got = from_neutral(plain)
    assert got[0] == SystemMessage(note["content"])
    assert got[1] == HumanMessage("hi", name="bob")
    assert isinstance(got[2], AIMessage)
    assert got[2].tool_calls == [{"id": "c1", "name": "f", "args": {"x": 1}, "type": "tool_call"}]
    assert got[3] == ToolMessage("42", tool_call_id="c1")
    assert isinstance(got[4], SystemMessage) and got[4].content == "terse"


def test_anything_but_a_message_is_refused_with_a_hint() -> None:
    with pytest.raises(TypeError, match=r"messages\[1\].*convert_to_messages"):
        to_neutral([HumanMessage("ok"), ("user", "a tuple")])  # type: ignore[list-item]


def test_the_core_output_converts_back_with_compressed_content() -> None:
    rows = [
        {"id": i, "name": f"item {i}", "status": "ok" if i % 7 else "error"} for i in range(300)
    ]
    history = [
        SystemMessage("Be brief."),
        HumanMessage("status of item 7?"),
        AIMessage("", tool_calls=[{"id": "c1", "name": "search", "args": {}}], id="a1"),
        ToolMessage(json.dumps(rows, indent=2), tool_call_id="c1", artifact=ARTIFACT, id="t1"),
    ]
    result = compress(to_neutral(history))
    assert result.tokens_after < result.tokens_before
    back = from_neutral(result.messages)
    for got, want in zip(back[:3], history[:3], strict=True):
        assert_same(got, want)
    tool = back[3]
    assert isinstance(tool, ToolMessage)
    assert tool.content == result.messages[3]["content"] != history[3].content
    assert (tool.tool_call_id, tool.id, tool.artifact) == ("c1", "t1", ARTIFACT)


def test_real_conversations_round_trip(
    conversations: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    for name, dicts in conversations:
        messages = convert_to_messages(dicts)
        neutral = to_neutral(messages)
        check_messages(neutral)
        back = from_neutral(neutral)
        assert len(back) == len(messages), name
        for got, want in zip(back, messages, strict=True):
            assert_same(got, want)
        # The neutral form is the conversation as OpenAI sent it (content None reads as "").
        for d, original in zip(neutral, dicts, strict=True):
            assert d["role"] == original["role"], name
            assert d["content"] == (original["content"] or ""), name
            assert d.get("tool_call_id") == original.get("tool_call_id"), name
            assert [c["id"] for c in d.get("tool_calls", [])] == [
                c["id"] for c in original.get("tool_calls") or []
            ], name


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(
    content=st.text(max_size=200),
    args=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    call_id=st.text(min_size=1, max_size=12),
    status=st.sampled_from(["success", "error"]),
)
def test_round_trip_property(content: str, args: dict[str, Any], call_id: str, status: str) -> None:
    messages: list[BaseMessage] = [
        HumanMessage(content),
        AIMessage(content, tool_calls=[{"id": call_id, "name": "tool", "args": args}]),
        ToolMessage(content, tool_call_id=call_id, status=status, artifact=args),
    ]
    neutral = to_neutral(messages)
    assert json.loads(neutral[1]["tool_calls"][0]["function"]["arguments"]) == args
    for got, want in zip(from_neutral(neutral), messages, strict=True):
        assert_same(got, want)

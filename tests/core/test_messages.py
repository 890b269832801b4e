from __future__ import annotations

import copy
import json

import pytest

from headroom_core import PairingError, find_tool_units, from_anthropic, to_anthropic
from headroom_core.errors import InputError
from headroom_core.messages import check_messages, content_text, pairing_is_valid, validate_pairing


def call(cid: str, name: str = "f", args: str = "{}") -> dict:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def unit(*ids: str) -> list[dict]:
    msgs = [{"role": "assistant", "content": None, "tool_calls": [call(i) for i in ids]}]
    msgs += [{"role": "tool", "tool_call_id": i, "content": f"r{i}"} for i in ids]
    return msgs


def test_find_tool_units_groups_calls_with_all_results() -> None:
    msgs = [
        {"role": "user", "content": "q"},
        *unit("a", "b"),
        {"role": "user", "content": "x"},
        *unit("c"),
    ]
    units = find_tool_units(msgs)
    assert [(u.call_index, u.result_indices, u.tool_call_ids) for u in units] == [
        (1, (2, 3), ("a", "b")),
        (5, (6,), ("c",)),
    ]
    assert units[0].indices == (1, 2, 3)


def test_valid_pairing_passes() -> None:
    validate_pairing(
        [{"role": "user", "content": "q"}, *unit("a", "b"), {"role": "assistant", "content": "ok"}]
    )


@pytest.mark.parametrize(
    "msgs,index,fragment",
    [
        ([{"role": "tool", "tool_call_id": "zz", "content": "x"}], 0, "'zz'"),
        ([*unit("a")[:1], {"role": "user", "content": "q"}], 0, "whose results do not follow"),
        (unit("a")[:1], 0, "have no result"),
        (
            [*unit("a"), {"role": "tool", "tool_call_id": "a", "content": "again"}],
            2,
            "already answered",
        ),
        ([{"role": "assistant", "tool_calls": [call("a"), call("a")]}], 0, "repeats"),
    ],
)
def test_broken_pairing_names_the_message(msgs: list, index: int, fragment: str) -> None:
    with pytest.raises(PairingError, match=f"messages\\[{index}\\]") as info:
        validate_pairing(msgs)
    assert fragment.strip("'") in str(info.value)
    assert info.value.index == index


def test_pending_calls_allowed_on_request() -> None:
    assert pairing_is_valid(unit("a")[:1], allow_pending=True)
    assert not pairing_is_valid(unit("a")[:1])


def test_check_messages_rejects_wrong_shapes() -> None:
    with pytest.raises(InputError, match="list of dicts, got str"):
        check_messages("hello")
    with pytest.raises(InputError, match=r"messages\[1\] must be a dict"):
        check_messages([{"role": "user", "content": "x"}, 3])
    with pytest.raises(InputError, match=r"messages\[0\] has unknown role 'robot'"):
        check_messages([{"role": "robot"}])


def test_content_text_joins_text_parts() -> None:
    msg = {
        "role": "user",
        "content": [
            {"type": "text", "text": "a"},
            {"type": "image_url"},
            {"type": "text", "text": "b"},
        ],
    }
    assert content_text(msg) == "a\nb"
    assert content_text({"role": "assistant", "content": None}) == ""


ANTHROPIC_BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
    "messages": [
        {"role": "user", "content": "Find order 7"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "need lookup", "signature": "sig"},
                {"type": "text", "text": "Looking."},
                {
                    "type": "tool_use",
                    "id": "tu1",
                    "name": "lookup",
                    "input": {"id": 7, "deep": {"x": [1, None]}},
                },
                {
                    "type": "tool_use",
                    "id": "tu2",
                    "name": "lookup",
                    "input": {},
                    "cache_control": {"type": "ephemeral"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "tu1", "content": '{"status": "shipped"}'},
                {
                    "type": "tool_result",
                    "tool_use_id": "tu2",
                    "is_error": True,
                    "content": [{"type": "text", "text": "not found"}],
                },
                {"type": "text", "text": "Thanks, and?"},
            ],
        },
        {"role": "assistant", "content": "Shipped."},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x9"}]},
    ],
}


def test_anthropic_round_trip_is_exact() -> None:
    body = copy.deepcopy(ANTHROPIC_BODY)
    messages, rest = from_anthropic(body)
    assert body == ANTHROPIC_BODY  # input untouched
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "user",
        "assistant",
        "tool",
    ]
    assert messages[2]["tool_calls"][0]["function"] == {
        "name": "lookup",
        "arguments": json.dumps({"id": 7, "deep": {"x": [1, None]}}, separators=(",", ":")),
    }
    assert messages[4]["is_error"] is True
    assert to_anthropic(messages, rest) == ANTHROPIC_BODY


def test_anthropic_body_of_real_request_round_trips(shared_data) -> None:
    for name in (
        "headroom_fixtures/crates__headroom-proxy__tests__fixtures__anthropic_messages_request_real.json",
        "headroom_fixtures/scripts__fixtures__anthropic_replay_body.json",
    ):
        body = json.loads((shared_data / name).read_text())
        messages, rest = from_anthropic(body)
        validate_pairing(messages)
        assert to_anthropic(messages, rest) == body


def test_anthropic_bad_body() -> None:
    with pytest.raises(InputError, match="'messages' list"):
        from_anthropic({"model": "claude"})
    with pytest.raises(InputError, match=r"messages\[0\] must be a user or assistant"):
        from_anthropic({"messages": [{"role": "system", "content": "x"}]})


# --- malformed messages: InputError naming the index and the field (issue 19) ------------

_CALL = {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}


@pytest.mark.parametrize(
    "message, where",
    [
        ({"role": "user", "content": 42}, r"messages\[1\]\.content must be .* got int"),
        ({"role": "user", "content": 1.5}, r"messages\[1\]\.content .* got float"),
        ({"role": "user", "content": True}, r"messages\[1\]\.content .* got bool"),
        ({"role": "assistant", "tool_calls": "c1"}, r"messages\[1\]\.tool_calls must be a list"),
        ({"role": "assistant", "tool_calls": {"id": "c1"}}, r"tool_calls must be a list, got dict"),
        ({"role": "assistant", "tool_calls": 3}, r"tool_calls must be a list, got int"),
        ({"role": "assistant", "tool_calls": [3]}, r"tool_calls\[0\] must be a dict"),
        (
            {"role": "assistant", "tool_calls": [{**_CALL, "function": "t"}]},
            r"messages\[1\]\.tool_calls\[0\]\.function must be a dict, got str",
        ),
        (
            {"role": "assistant", "tool_calls": [{**_CALL, "id": 7}]},
            r"tool_calls\[0\]\.id must be a string, got int",
        ),
        (
            {"role": "assistant", "tool_calls": [{**_CALL, "function": {"name": "t"}}]},
            r"tool_calls\[0\]\.function\.arguments must be a string, got null",
        ),
        (
            {"role": "tool", "tool_call_id": ["c1"], "content": "x"},
            r"tool_call_id must be a string",
        ),
    ],
)
def test_malformed_messages_are_an_input_error_naming_index_and_field(
    message: dict, where: str
) -> None:
    from headroom_core import compress

    messages = [{"role": "system", "content": "s"}, message]
    with pytest.raises(InputError, match=where):
        check_messages(messages)
    with pytest.raises(InputError, match=where):
        compress(messages)


@pytest.mark.parametrize(
    "block, field",
    [
        ({"type": "tool_use", "name": "t", "input": {}}, "'id'"),
        ({"type": "tool_use", "id": "u1", "input": {}}, "'name'"),
        ({"type": "tool_use", "id": "u1", "name": "t"}, "'input'"),
    ],
)
def test_anthropic_block_missing_a_field_is_an_input_error(block: dict, field: str) -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [block]}]
    }
    with pytest.raises(
        InputError, match=rf"messages\[1\]\.content\[0\]: a tool_use block needs {field}"
    ):
        from_anthropic(body)
    result = {"messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]}
    with pytest.raises(InputError, match=r"messages\[0\]\.content\[0\]: .* needs 'tool_use_id'"):
        from_anthropic(result)


def test_anthropic_round_trip_keeps_text_after_a_tool_use_in_place() -> None:
    body = {
        "model": "claude-haiku-4-5",
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "first"},
                    {"type": "tool_use", "id": "u1", "name": "t", "input": {"a": 1}},
                    {"type": "text", "text": "after the call"},
                    {"type": "tool_use", "id": "u2", "name": "t", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "u1", "content": "r1"},
                    {"type": "tool_result", "tool_use_id": "u2", "content": "r2"},
                ],
            },
        ],
    }
    messages, rest = from_anthropic(body)
    assert to_anthropic(messages, rest) == body


def test_anthropic_round_trip_keeps_nan_as_the_sdk_sends_it() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "u1",
                        "name": "t",
                        "input": {"x": float("inf"), "n": [1.5]},
                    }
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "u1", "content": "r"}],
            },
        ]
    }
    messages, rest = from_anthropic(body)
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == '{"x":Infinity,"n":[1.5]}'
    back = to_anthropic(messages, rest)
    assert back["messages"][1]["content"][0]["input"] == {"x": float("inf"), "n": [1.5]}

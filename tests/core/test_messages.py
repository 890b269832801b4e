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

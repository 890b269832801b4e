from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_core.transforms import json_codec
from headroom_core.transforms.json_codec import decode, encode, has_reserved_keys


def test_table_states_keys_once_and_constants_once() -> None:
    rows = [{"id": i, "kind": "issue", "ok": i % 2 == 0} for i in range(5)]
    enc = encode(rows)
    assert enc[0] == {json_codec.COLS: ["id", "kind", "ok"], json_codec.CONST: {"kind": "issue"}}
    assert enc[1:] == [[0, True], [1, False], [2, True], [3, False], [4, True]]
    assert decode(enc) == rows


def test_table_needs_same_keys_in_same_order() -> None:
    rows = [{"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 1, "b": 2}]
    assert encode(rows) == rows
    assert encode([{"a": 1}, {"a": 2}]) == [{"a": 1}, {"a": 2}]  # too few rows


def test_repeats_collapse_with_count() -> None:
    data = {"x": [7, 7, 7, 7, 1, 1, "a"]}
    enc = encode(data)
    assert enc == {"x": [{json_codec.REPEAT: 4, "value": 7}, 1, 1, "a"]}
    assert decode(enc) == data
    assert encode([1, 1.0, True]) == [1, 1.0, True]  # equal in Python, not the same JSON


def test_reserved_keys_detected_anywhere() -> None:
    assert has_reserved_keys({"a": [{"b": {"__headroom_cols": 1}}]})
    assert not has_reserved_keys({"a": [{"b": {"headroom": 1}}]})


def test_markers_pass_through_a_table() -> None:
    marker = {"__headroom_truncated": 5, "of": 9, "ref": "abcd"}
    rows = [{"id": 1}, {"id": 2}, {"id": 3}, marker]
    enc = encode(rows)
    assert enc[-1] == marker and decode(enc) == rows


json_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda kids: (
        st.lists(kids, max_size=6)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "id"]), kids, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(json_data)
def test_decode_inverts_encode(data) -> None:
    if has_reserved_keys(data):
        return
    enc = encode(data)
    assert decode(enc) == data
    assert json.dumps(decode(json.loads(json.dumps(enc)))) == json.dumps(data)


hostile_keys = st.sampled_from(
    ["a", "id", "__headroom", "__headroom_id", "__headroom_cols", "__headroom_repeat",
     "__headroom_key:x", "__headroom_truncated", "value"]
)  # fmt: skip
hostile_data = st.recursive(
    st.none() | st.integers(-5, 5) | st.text(max_size=3),
    lambda kids: st.lists(kids, max_size=6) | st.dictionaries(hostile_keys, kids, max_size=4),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(hostile_data)
def test_a_tools_own_headroom_keys_are_escaped_and_restored(data) -> None:
    """Keys that imitate ours never mix with the forms: escape, encode, decode is exact."""
    from headroom_core.transforms.json_codec import escape, is_ours

    escaped = escape(data)
    assert not any(k in json_codec.OURS for k in _all_keys(escaped))
    enc = encode(escaped)
    assert decode(json.loads(json.dumps(enc))) == data
    assert is_ours(escaped) == has_reserved_keys(data)


def _all_keys(data):
    if isinstance(data, dict):
        for k, v in data.items():
            yield k
            yield from _all_keys(v)
    elif isinstance(data, list):
        for v in data:
            yield from _all_keys(v)


def test_real_api_responses_round_trip(shared_data) -> None:
    checked = 0
    for path in sorted(shared_data.glob("api_*/**/*.json")):
        try:
            data = json.loads(path.read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not has_reserved_keys(data):
            assert decode(json.loads(json.dumps(encode(data)))) == data, path.name
            checked += 1
    if checked == 0:
        pytest.skip("no api_* JSON files found")
    assert checked > 100

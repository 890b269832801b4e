"""Hostile values inside otherwise normal histories (issue 19): every safety rule holds, and
one tool output we cannot handle never switches compression off for the others.

Generated histories hold several large JSON tool outputs; one of them is replaced by a
hostile value: an integer of 2**64 and more, JSON nested deeper than 255, a lone surrogate
(escaped in JSON, or raw in a log), keys imitating our markers, a tool's own ``__headroom``
keys, broken JSON, an original larger than the store's bound.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headroom_core import HeadroomConfig, compress
from headroom_core.ccr import MemoryOriginalStore, retrieve, use_store
from headroom_core.messages import pairing_is_valid
from headroom_core.tokens import count_tokens_messages, count_tokens_text

BIG_ROWS = 400


def big_output(seed: int) -> str:
    rows = [
        {"id": seed * 1000 + i, "status": "ok" if i % 37 else "failed", "ms": 40 + (i * seed) % 90}
        for i in range(BIG_ROWS)
    ]
    return json.dumps(rows, indent=2)


HOSTILE: dict[str, str] = {
    "int_2_64": json.dumps([{"id": i, "n": 2**64 + i} for i in range(300)], indent=2),
    "int_2_200": '{"n": ' + str(2**200) + ', "rows": ' + json.dumps(list(range(500))) + "}",
    "deep_json": "[" * 300 + "1" + "]" * 300,
    "escaped_surrogate": json.dumps([{"id": i, "s": "\ud800 x"} for i in range(300)], indent=2),
    "raw_surrogate_log": "INFO start\n" + "WARN disk \ud800 low\n" * 1500,
    "imitated_marker": json.dumps(
        [*({"id": i} for i in range(300)), {"__headroom_truncated": 9, "ref": "0" * 32}]
    ),
    "own_headroom_keys": json.dumps([{"__headroom_id": i, "v": "x" * 30} for i in range(300)]),
    "broken_json": big_output(7)[:-40],
    "nan": "[" + ", ".join(["NaN", "Infinity", "1"] * 300) + "]",
}


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int, str]:
    """(messages, index of the hostile tool message, hostile kind)."""
    n_tools = draw(st.integers(2, 4))
    hostile_at = draw(st.integers(0, n_tools - 1))
    kind = draw(st.sampled_from(sorted(HOSTILE)))
    user = draw(st.sampled_from(["Which requests failed?", "Summarise the results.", "id 1005?"]))
    calls = [
        {"id": f"c{k}", "type": "function", "function": {"name": f"tool{k}", "arguments": "{}"}}
        for k in range(n_tools)
    ]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are an SRE assistant."},
        {"role": "user", "content": user},
        {"role": "assistant", "content": None, "tool_calls": calls},
    ]
    for k in range(n_tools):
        text = HOSTILE[kind] if k == hostile_at else big_output(k + 1)
        messages.append({"role": "tool", "tool_call_id": f"c{k}", "content": text})
    messages.append({"role": "assistant", "content": draw(st.sampled_from(["Done.", "ok"]))})
    return messages, 3 + hostile_at, kind


def _texts(messages: list[dict[str, Any]], role: str) -> list[Any]:
    return [m.get("content") for m in messages if m.get("role") == role]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(histories())
def test_one_hostile_output_never_switches_the_others_off(
    case: tuple[list[dict[str, Any]], int, str],
) -> None:
    messages, hostile_at, kind = case
    snapshot = copy.deepcopy(messages)
    with use_store(MemoryOriginalStore()):
        result = compress(messages, model="gpt-4o")
    out = result.messages
    assert messages == snapshot, "input mutated"
    assert pairing_is_valid(out)
    assert _texts(out, "user") == _texts(messages, "user")
    assert _texts(out, "assistant") == _texts(messages, "assistant")
    for i, (before, after) in enumerate(zip(messages, out, strict=True)):
        if before["role"] != "tool" or i == hostile_at:
            continue
        # beyond what compact JSON alone saves (a half): the router compressed it
        assert count_tokens_text(after["content"]) < count_tokens_text(before["content"]) / 5, (
            f"{kind}: the tool output at {i} was not compressed"
        )
    assert result.tokens_after < result.tokens_before


def test_an_original_over_the_stores_bound_leaves_only_that_output_whole() -> None:
    store = MemoryOriginalStore(max_chars=60_000)
    huge = json.dumps([{"id": i, "v": "y" * 40} for i in range(3000)])  # ~170k chars
    calls = [
        {"id": f"c{k}", "type": "function", "function": {"name": "t", "arguments": "{}"}}
        for k in range(3)
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Which failed?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c0", "content": big_output(1)},
        {"role": "tool", "tool_call_id": "c1", "content": huge},
        {"role": "tool", "tool_call_id": "c2", "content": big_output(2)},
    ]
    with use_store(store):
        result = compress(messages, model="gpt-4o")
    out = result.messages
    for i, seed in ((2, 1), (4, 2)):  # beyond compact JSON (a half): the router compressed it
        assert count_tokens_text(out[i]["content"]) < count_tokens_text(big_output(seed)) / 5
    assert len(out[3]["content"]) <= len(huge)  # whole, or a lossless form of it
    assert any("larger than max_chars" in f for f in result.failures)


def _turns(first_output: str, turns: int = 4) -> list[dict[str, Any]]:
    """A multi-turn history whose oldest tool output is ``first_output``."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are an SRE assistant."}]
    for t in range(turns):
        call = {"id": f"c{t}", "type": "function", "function": {"name": "q", "arguments": "{}"}}
        messages += [
            {"role": "user", "content": f"question {t}: which requests failed?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {
                "role": "tool",
                "tool_call_id": f"c{t}",
                "content": first_output if t == 0 else big_output(t + 1),
            },
            {"role": "assistant", "content": f"answer {t}"},
        ]
    return messages


FIT_WINDOW = 4_000 + 1_200  # the output buffer, then 1,200 tokens for the messages


@pytest.mark.parametrize("fitter", ["rolling_window", "intelligent_context"])
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_value_in_the_droppable_history_fits_as_a_clean_copy_does(
    kind: str, fitter: str
) -> None:
    # Issue 19, item 1: the same values anywhere in the droppable history made fitting fail
    # (a spurious BudgetError where a clean copy fits).
    config = HeadroomConfig(fitter=fitter)
    clean, hostile = _turns(big_output(1)), _turns(HOSTILE[kind])
    store = MemoryOriginalStore()
    with use_store(store):
        fitted_clean = compress(clean, model="gpt-4o", max_tokens=FIT_WINDOW, config=config)
        result = compress(hostile, model="gpt-4o", max_tokens=FIT_WINDOW, config=config)
    assert count_tokens_messages(fitted_clean.messages) <= 1_200
    assert count_tokens_messages(result.messages) <= 1_200
    assert pairing_is_valid(result.messages)
    assert result.messages[-1] == hostile[-1] and hostile[-4] in result.messages  # newest turn
    # What was left out is kept: each ref the request names retrieves an original.
    refs = re.findall(r"ref\W+([0-9a-f]{32})", json.dumps([m["content"] for m in result.messages]))
    assert refs and all(store.get(ref) is not None for ref in refs)


@pytest.mark.parametrize("fitter", ["rolling_window", "intelligent_context"])
def test_an_original_the_store_refuses_is_left_out_anyway_and_reported(fitter: str) -> None:
    # Fitting never fails the turn because the store refuses an original (over its bound, or
    # a shared store that is down): the note goes out, the failure names the lost ref.
    store = MemoryOriginalStore(max_chars=60_000)
    huge = json.dumps([{"id": i, "v": "y" * 40} for i in range(3000)])  # ~188k chars
    messages = _turns(huge)
    with use_store(store):
        result = compress(
            messages, model="gpt-4o", max_tokens=FIT_WINDOW, config=HeadroomConfig(fitter=fitter)
        )
    assert count_tokens_messages(result.messages) <= 1_200
    assert pairing_is_valid(result.messages)
    lost = [f for f in result.failures if "cannot be retrieved" in f]
    assert lost and "larger than max_chars=60000" in lost[0]
    (ref,) = re.findall(r"ref=([0-9a-f]{32})", lost[0])
    assert store.get(ref) is None
    assert "no original stored" in retrieve(ref, store=store)

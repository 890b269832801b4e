"""``compress(frozen_message_count=N)``: the first N messages come back byte-identical."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from headroom_core import BudgetError, ConfigError, HeadroomConfig, compress, validate_pairing
from headroom_core.config import RollingWindowConfig
from headroom_core.pipeline import frozen_length
from headroom_core.tokens import get_tokenizer

ROWS = [
    {"id": i, "status": "ok" if i % 7 else "error", "region": "eu-west-1", "latency_ms": 40 + i}
    for i in range(120)
]
BIG = json.dumps(ROWS, indent=2)


def _unit(call_id: str, text: str) -> list[dict[str, Any]]:
    call = {"id": call_id, "type": "function", "function": {"name": "query", "arguments": "{}"}}
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": text},
    ]


def history() -> list[dict[str, Any]]:
    """system, user, unit c1 (big JSON), assistant, user, unit c2 (big JSON)."""
    return [
        {"role": "system", "content": "You are an SRE assistant."},
        {"role": "user", "content": "Which requests failed?"},
        *_unit("c1", BIG),
        {"role": "assistant", "content": "Request 7 and a few others failed."},
        {"role": "user", "content": "And which were slow?"},
        *_unit("c2", BIG),
    ]


def _dump(messages: list[dict[str, Any]]) -> bytes:
    return json.dumps(messages, sort_keys=True).encode()


def test_frozen_messages_come_back_byte_identical_and_the_rest_is_compressed() -> None:
    msgs = history()
    before = copy.deepcopy(msgs)
    free = compress(msgs, model="gpt-4o")
    assert free.messages[3]["content"] != BIG and free.messages[7]["content"] != BIG

    r = compress(msgs, model="gpt-4o", frozen_message_count=6)

    assert msgs == before  # never mutated
    assert all(a is b for a, b in zip(r.messages[:6], msgs[:6], strict=True))
    assert _dump(r.messages[:6]) == _dump(msgs[:6])
    assert r.messages[7]["content"] == free.messages[7]["content"]  # the rest as without freezing
    tok = get_tokenizer("gpt-4o")
    assert r.tokens_before == tok.count_messages(msgs)
    assert r.tokens_after == tok.count_messages(r.messages) < r.tokens_before
    validate_pairing(r.messages)


def test_freezing_what_would_not_change_gives_the_same_result() -> None:
    """The rest is ranked against the user turn it served, even when that turn is frozen."""
    msgs = history()
    free = compress(msgs, model="gpt-4o")
    for n in (1, 2):  # system, then the question the first tool call served
        assert _dump(compress(msgs, model="gpt-4o", frozen_message_count=n).messages) == _dump(
            free.messages
        )


def test_a_frozen_tool_call_freezes_its_results() -> None:
    msgs = history()
    assert frozen_length(msgs, 3) == 4  # c1's call is frozen: its result comes with it
    r = compress(msgs, model="gpt-4o", frozen_message_count=3)
    assert r.messages[3] is msgs[3] and r.messages[3]["content"] == BIG
    assert r.messages[7]["content"] != BIG
    validate_pairing(r.messages)

    several = [
        msgs[0],
        msgs[1],
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": i, "type": "function", "function": {"name": "q", "arguments": "{}"}}
                for i in ("a", "b")
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": BIG},
        {"role": "tool", "tool_call_id": "b", "content": BIG},
        {"role": "user", "content": "thanks"},
    ]
    assert frozen_length(several, 4) == 5  # inside a run of results: the run is frozen whole
    assert frozen_length(several, 3) == 5
    assert frozen_length(several, 6) == 6 and frozen_length(several, 60) == 6
    assert frozen_length(several, 0) == 0


def test_anthropic_shaped_tool_result_after_a_frozen_tool_use_is_frozen() -> None:
    msgs = [
        {"role": "user", "content": "Which requests failed?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "tu1", "name": "query", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "tu1", "content": BIG}],
        },
        {"role": "assistant", "content": "Request 7."},
    ]
    assert frozen_length(msgs, 2) == 3
    r = compress(msgs, model="gpt-4o", frozen_message_count=2)
    assert r.messages[2] is msgs[2]
    assert compress(msgs, model="gpt-4o").messages[2] != msgs[2]


def test_the_frozen_prefix_counts_in_the_window() -> None:
    msgs = history()
    tok = get_tokenizer("gpt-4o")
    prefix = sum(tok.count_message(m) for m in msgs[:6])
    config = HeadroomConfig(rolling_window=RollingWindowConfig(output_buffer_tokens=100))
    compressed = compress(msgs, model="gpt-4o", config=config).tokens_after
    window = compressed - 1  # nothing after the prefix can be cut that far: the fit must fail
    with pytest.raises(BudgetError, match="frozen"):
        compress(msgs, model="gpt-4o", config=config, max_tokens=window, frozen_message_count=6)

    with pytest.raises(BudgetError):  # the frozen part alone is over the window
        compress(msgs, model="gpt-4o", config=config, max_tokens=prefix, frozen_message_count=6)

    # Room for the prefix and a cut rest: only the rest is cut, the prefix is kept whole.
    longer = [
        *msgs,
        {"role": "assistant", "content": "Requests 3 and 9."},
        {"role": "user", "content": "And in eu-west-1?"},
        *_unit("c3", BIG),
    ]
    config = HeadroomConfig(
        rolling_window=RollingWindowConfig(output_buffer_tokens=100, preserve_recent_turns=1)
    )
    prefix = sum(tok.count_message(m) for m in longer[:4])
    window = prefix + 100 + 1200  # a 120-row table stays whole (under lossless_below_tokens)
    r = compress(longer, model="gpt-4o", config=config, max_tokens=window, frozen_message_count=4)
    assert all(a is b for a, b in zip(r.messages[:4], longer[:4], strict=True))
    # the rest is fitted (its tool outputs cut before any turn is dropped), the prefix not
    assert any(t.startswith(("cut_to_fit:", "rolling_window:")) for t in r.transforms_applied)
    assert any(re.search(r"ref\W+[0-9a-f]{32}", str(m.get("content"))) for m in r.messages[4:])
    assert r.messages[-1]["tool_call_id"] == "c3"
    assert r.tokens_after <= window - 100
    validate_pairing(r.messages)


@pytest.mark.parametrize("bad", [-1, True, "2", 1.5, None])
def test_a_bad_count_is_a_config_error_naming_it(bad: object) -> None:
    with pytest.raises(ConfigError, match="frozen_message_count"):
        compress(history(), frozen_message_count=bad)  # type: ignore[arg-type]


def test_everything_frozen_or_audit_changes_nothing() -> None:
    msgs = history()
    r = compress(msgs, model="gpt-4o", frozen_message_count=len(msgs) + 5)
    assert all(a is b for a, b in zip(r.messages, msgs, strict=True))
    assert r.tokens_after == r.tokens_before and r.transforms_applied == ()
    audit = compress(msgs, model="gpt-4o", mode="audit", frozen_message_count=3)
    assert audit.messages == msgs

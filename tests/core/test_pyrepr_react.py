"""Issue 14, item 4: ReAct observations (user-role text after an ``Action:``) and Python-repr
tool results (``str(list_of_dicts)``) are compressed like tool outputs, with the same
safety rules; anything that is not plain data passes through unchanged."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from headroom_core import compress
from headroom_core.ccr import MemoryOriginalStore, retrieve, use_store
from headroom_core.pipeline import default_query
from headroom_core.tokens import count_tokens_messages, count_tokens_text
from headroom_core.transforms._pyrepr import parse_repr
from headroom_core.transforms._react import action_name, observation_start

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PROJECTS = SHARED / "api_go_jira_mocks" / "all_projects.json"
LOG = SHARED / "logs_loghub" / "OpenSSH" / "OpenSSH_2k.log"


def _read(path: Path) -> str:
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    return path.read_text("utf-8")


def tool_request(output: str, name: str = "list_projects") -> list[dict[str, Any]]:
    call = {"id": "c1", "type": "function", "function": {"name": name, "arguments": "{}"}}
    return [
        {"role": "user", "content": "Which Jira project has the key HADOOP?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": output},
    ]


def react_request(observation: str, action: str = "fetch_logs") -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "Answer with the ReAct format."},
        {"role": "user", "content": "Which users failed to log in over ssh?"},
        {
            "role": "assistant",
            "content": f"Thought: I need the logs.\nAction: {action}\nAction Input: {{}}",
        },
        {"role": "user", "content": f"Observation: {observation}"},
    ]


# -- Python repr -------------------------------------------------------------------------------


def test_a_python_repr_of_a_real_list_is_compressed_like_its_json() -> None:
    data = json.loads(_read(PROJECTS))
    text = str(data)  # what a tool returning str(result) sends: ~127k tokens
    store = MemoryOriginalStore()
    with use_store(store):
        result = compress(tool_request(text))
    out = result.messages[-1]["content"]
    assert result.transforms_applied == ("pyrepr:1",)
    assert result.tokens_after < result.tokens_before / 10
    # the same cut the JSON compressor makes of the data as (compact) JSON, same ref
    compact = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    with use_store(MemoryOriginalStore()):
        as_json = compress(tool_request(compact))
    assert out == as_json.messages[-1]["content"]
    # the kept items are verbatim, the marker's ref gives back every item (as JSON)
    kept = [item for item in json.loads(out) if "__headroom_truncated" not in item]
    assert any(p["key"] == "HADOOP" for p in kept)
    assert all(item in data for item in kept)
    (marker,) = [item for item in json.loads(out) if "__headroom_truncated" in item]
    assert json.loads(retrieve(marker["ref"], store=store, max_tokens=None)) == data


@pytest.mark.parametrize(
    "text",
    [
        "[{'when': datetime.datetime(2024, 5, 1), 'id': 1}] " * 40,  # a call: not a literal
        "[{'tags': {'a', 'b'}, 'id': n} for n in range(500)]",  # code, not data
        "__import__('os').system('touch /tmp/headroom-pwned')",  # never evaluated
        str([{1: "int keys have no JSON form", "id": n} for n in range(300)]),
        str([{"blob": b"bytes", "id": n} for n in range(300)]),
        str([{"x": float("inf"), "id": n} for n in range(300)]),
        "{'single': 'quotes'}",  # small: below min_tokens_to_crush, left alone
    ],
)
def test_what_is_not_plain_data_passes_through_unchanged(text: str) -> None:
    messages = tool_request(text)
    snapshot = copy.deepcopy(messages)
    result = compress(messages)
    assert result.messages[-1]["content"] == text
    assert result.failures == () and messages == snapshot
    assert not Path("/tmp/headroom-pwned").exists()


def test_parse_repr_reads_tuples_as_lists_and_rejects_the_rest() -> None:
    assert parse_repr("({'a': (1, 2.5, None, True)},)") == [{"a": [1, 2.5, None, True]}]
    assert parse_repr("'just a string'") is None
    assert parse_repr("[" * 5000 + "]" * 5000) is None  # too deep for the parser: no crash
    assert parse_repr("[1, 2") is None


# -- ReAct observations ------------------------------------------------------------------------


def test_a_react_observation_is_compressed_and_keeps_its_prefix() -> None:
    log = _read(LOG)
    messages = react_request(log)
    result = compress(messages)
    sent = result.messages[-1]
    assert sent["role"] == "user" and sent["content"].startswith("Observation: ")
    assert result.transforms_applied == ("log:1",)
    assert count_tokens_text(sent["content"]) < count_tokens_text(log) / 3
    # every other message is as it was
    assert result.messages[:-1] == messages[:-1]
    assert count_tokens_messages(result.messages) == result.tokens_after


def test_a_repr_observation_goes_through_the_json_compressor() -> None:
    data = json.loads(_read(PROJECTS))
    result = compress(react_request(str(data), action="list_projects"))
    assert result.transforms_applied == ("pyrepr:1",)
    body = result.messages[-1]["content"].removeprefix("Observation: ")
    assert isinstance(json.loads(body), list)


def test_the_question_is_the_users_not_the_observation() -> None:
    messages = react_request("[]")
    assert default_query(messages) == "Which users failed to log in over ssh?"
    assert observation_start(messages, 3) == len("Observation: ")
    assert action_name(messages, 3) == "fetch_logs"


@pytest.mark.parametrize(
    "previous",
    [
        "Thought: no tool needed.\nAnswer: 42",  # no Action line
        None,  # no assistant message before it
    ],
)
def test_user_text_that_is_not_an_observation_is_never_touched(previous: str | None) -> None:
    log = _read(LOG)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Observation: " + log}]
    if previous is not None:
        messages.insert(0, {"role": "assistant", "content": previous})
    result = compress(messages)
    assert result.messages == messages
    assert observation_start(messages, len(messages) - 1) is None

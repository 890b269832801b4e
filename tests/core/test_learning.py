"""Learning from retrievals, end to end: a cut the model undoes is not repeated."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from headroom_core import compress
from headroom_core.ccr import MemoryOriginalStore, get_default_store, retrieve, set_default_store
from headroom_core.toin import MemoryToin, get_toin, set_toin
from headroom_core.transforms._first_sight import forget


@pytest.fixture()
def fresh() -> Iterator[tuple[MemoryToin, MemoryOriginalStore]]:
    old_toin, old_store = get_toin(), get_default_store()
    toin, store = MemoryToin(), MemoryOriginalStore()
    set_toin(toin)
    set_default_store(store)
    forget()  # what this process saw first belongs to the other tests' learning
    yield toin, store
    set_toin(old_toin)
    set_default_store(old_store)


N_REPOS = 14  # over lossless_below_tokens: the hypermedia cut applies


def repo(i: int) -> dict:
    base = f"https://api.example.com/repos/acme/r{i}"
    return {
        "id": i,
        "name": f"r{i}",
        "url": base,
        "html_url": f"https://example.com/acme/r{i}",
        "followers_url": f"{base}/followers",
        "forks_url": f"{base}/forks",
        "issues_url": f"{base}/issues{{/number}}",
        "tags_url": f"{base}/tags",
        "keys_url": f"{base}/keys{{/key_id}}",
        "description": "x" * 60,
    }


def request(first: int = 0) -> list[dict]:
    return [
        {"role": "user", "content": "list the repos"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c",
                    "type": "function",
                    "function": {"name": "list_repos", "arguments": "{}"},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "c",
            "content": json.dumps([repo(i) for i in range(first, first + N_REPOS)], indent=2),
        },
    ]


def test_fields_the_model_fetched_back_are_spared_next_time(fresh) -> None:
    toin, store = fresh
    first = compress(request()).messages[2]["content"]
    assert "followers_url" not in first.split("__headroom_omitted")[0]
    assert toin.stats()["list_repos"].compressions == 1
    ref = re.search(r'"ref":"([0-9a-f]{32})"', first).group(1)
    assert "followers" in retrieve(ref, query="followers_url", store=store)
    assert "followers_url" in toin.fields_for("list_repos")
    # The output already sent compresses as it did (its turn's bytes, and the provider's
    # cached prefix, stay the same); the tool's next output spares the field.
    assert compress(request()).messages[2]["content"] == first
    again = compress(request(first=100)).messages[2]["content"]
    assert again.count("/followers") == N_REPOS  # spared in every item now
    assert "forks_url" not in again.split("__headroom_omitted")[0]  # the rest is still cut


def test_another_process_meeting_an_old_output_uses_the_fields_of_its_first_cut(fresh) -> None:
    """Across processes (a shared store of originals), the stored original records what its
    cut spared, so a process that never saw the output does not apply newer learning."""
    toin, store = fresh
    first = compress(request()).messages[2]["content"]
    ref = re.search(r'"ref":"([0-9a-f]{32})"', first).group(1)
    retrieve(ref, query="followers_url", store=store)
    forget()  # a process that never saw this output, sharing the store and the learning
    assert compress(request()).messages[2]["content"] == first
    new = compress(request(first=100)).messages[2]["content"]
    new_ref = re.search(r'"ref":"([0-9a-f]{32})"', new).group(1)
    assert "followers_url" in store.get(new_ref).meta["spared"]

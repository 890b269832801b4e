"""Every marker that compression leaves on the real data names a ref that retrieves the
exact original (parsed-equal for JSON, byte-equal for text)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headroom_core import compress
from headroom_core.ccr import MemoryOriginalStore, get_default_store, retrieve, set_default_store

REF = re.compile(r'ref=([0-9a-f]{32})|"ref":\s*"([0-9a-f]{32})"')


def request(text: str, tool: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "What went wrong, and what is the status of item 1000?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": tool, "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": text},
    ]


def cases(data: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for path in sorted(data.glob("api_*/**/*.json")):
        text = path.read_text("utf-8", errors="replace")
        if len(text) >= 2048:
            yield path.name, request(text, "http_get")
    for path in sorted(data.glob("logs_loghub/*/*.log")):
        yield path.name, request(path.read_text("utf-8", errors="replace"), "fetch_logs")
    for path in sorted(data.glob("code_files/**/*")):
        if path.suffix in (".py", ".js", ".go"):
            yield path.name, request(path.read_text("utf-8"), "view_file")
    for path in sorted((data / "conversations").glob("*.json")):
        if path.name != "index.json":
            yield path.name, json.loads(path.read_text("utf-8"))


def _same(retrieved: str, original: str) -> bool:
    if retrieved == original:
        return True
    try:
        return json.loads(retrieved) == json.loads(original)
    except ValueError:
        return False


@pytest.fixture()
def fresh_store() -> Iterator[MemoryOriginalStore]:
    before = get_default_store()
    store = MemoryOriginalStore()
    set_default_store(store)
    yield store
    set_default_store(before)


def test_every_marker_retrieves_its_original(
    shared_data: Path, fresh_store: MemoryOriginalStore
) -> None:
    refs_checked = 0
    for name, messages in cases(shared_data):
        result = compress(messages)
        originals = {
            m.get("tool_call_id"): m["content"] for m in messages if m.get("role") == "tool"
        }
        for m in result.messages:
            if m.get("role") != "tool" or not isinstance(m.get("content"), str):
                continue
            original = originals[m.get("tool_call_id")]
            for match in REF.finditer(m["content"]):
                ref = match.group(1) or match.group(2)
                assert _same(retrieve(ref, store=fresh_store, max_tokens=None), original), (
                    f"{name}: ref {ref}"
                )
                refs_checked += 1
    assert refs_checked >= 200

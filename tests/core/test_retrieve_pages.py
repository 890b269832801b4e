"""``retrieve`` answers are capped and paged: a 450 KB Jira list and a 2,000-line loghub log
come back in pages that each fit the cap, and reading every page gives the whole original."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from headroom_core.ccr import RETRIEVE_MAX_TOKENS, RETRIEVE_TOOL_NAME, MemoryOriginalStore, retrieve
from headroom_core.ccr import retrieve_tool_definition as definition
from headroom_core.tokens import count_tokens_text

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
JIRA = SHARED / "api_go_jira_mocks" / "all_projects.json"  # 451,600 bytes, 567 projects
LOG = SHARED / "logs_loghub" / "HDFS" / "HDFS_2k.log"  # 2,000 lines


def _read(path: Path) -> str:
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    return path.read_text("utf-8")


NEXT = re.compile(r"offset=(\d+) for more")


def pages(ref: str, store: MemoryOriginalStore, **kwargs: object) -> list[str]:
    """Every page of an answer, following the offset each header names."""
    out, offset = [], 0
    while True:
        answer = retrieve(ref, store=store, offset=offset, **kwargs)  # type: ignore[arg-type]
        out.append(answer)
        found = NEXT.search(answer.split("\n", 1)[0])
        if found is None:
            return out
        assert int(found.group(1)) > offset
        offset = int(found.group(1))


def test_a_450kb_json_list_comes_back_in_pages_that_fit() -> None:
    text = _read(JIRA)
    store = MemoryOriginalStore()
    ref = store.put(text)
    first = retrieve(ref, store=store, max_tokens=4_000)
    head, body = first.split("\n", 1)
    assert count_tokens_text(first) <= 4_000
    assert head.startswith("[headroom: items 1-") and "of 567" in head and f"ref={ref}" in head
    assert json.loads(body) == json.loads(text)[: len(json.loads(body))]
    got = pages(ref, store, max_tokens=4_000)
    assert len(got) > 10
    assert all(count_tokens_text(p) <= 4_000 for p in got)
    items = [item for p in got for item in json.loads(p.split("\n", 1)[1])]
    assert items == json.loads(text)  # every item once, in order: nothing lost
    assert got[-1].split("\n", 1)[0].endswith("nothing follows]")


def test_a_2000_line_log_pages_by_lines_and_the_default_cap_applies() -> None:
    text = _read(LOG)
    store = MemoryOriginalStore()
    ref = store.put(text, kind="text")
    got = pages(ref, store, max_tokens=RETRIEVE_MAX_TOKENS)  # the tools' cap (8,000)
    assert all(count_tokens_text(p) <= 8_000 for p in got)
    lines = [line for p in got for line in p.split("\n")[1:]]
    assert lines == text.splitlines()
    assert got[0].startswith("[headroom: lines 1-")


def test_limit_and_offset_pick_a_range_and_a_query_is_paged_too() -> None:
    text = _read(LOG)
    store = MemoryOriginalStore()
    ref = store.put(text, kind="text")
    assert retrieve(ref, store=store) == text  # no cap asked for: the whole, as stored
    answer = retrieve(ref, store=store, offset=10, limit=5)
    assert answer.split("\n")[1:] == text.splitlines()[10:15]
    assert answer.split("\n", 1)[0] == (
        f"[headroom: lines 11-15 of 2000, ref={ref}; call headroom_retrieve with "
        f"ref={ref} and offset=15 for more]"
    )
    matches = [(n, line) for n, line in enumerate(text.splitlines(), 1) if "WARN" in line]
    assert len(matches) > 3
    paged = retrieve(ref, "warn", store=store, limit=2, offset=1)
    head, *rows = paged.split("\n")
    assert head.startswith(f"[headroom: {len(matches)} of 2000 lines match 'warn'; matches 2-3")
    assert rows == [f"{n}: {line}" for n, line in matches[1:3]]


def test_a_line_longer_than_a_page_is_cut_into_parts_that_join_back() -> None:
    long_line = " ".join(f"token{i}" for i in range(6_000))  # ~12k tokens on one line
    text = f"short first line\n{long_line}\nlast line"
    store = MemoryOriginalStore()
    ref = store.put(text, kind="text")
    got = pages(ref, store, max_tokens=2_000)
    assert all(count_tokens_text(p) <= 2_000 for p in got)
    body = [line for p in got for line in p.split("\n")[1:]]
    parts = [re.sub(r"^\[line 2 \(part \d+/\d+\)\] ", "", b) for b in body if "[line 2" in b]
    assert len(parts) > 5 and "".join(parts) == long_line
    assert body[0] == "short first line" and body[-1] == "last line"


def test_pages_of_a_nested_array_carry_the_document_around_it() -> None:
    doc = {
        "total": 300,
        "page": {"size": 300, "next": None},
        "data": {"hits": [{"id": i, "name": f"host-{i}", "up": i % 7 != 0} for i in range(300)]},
    }
    store = MemoryOriginalStore()
    ref = store.put(json.dumps(doc, indent=2))
    got = pages(ref, store, max_tokens=1_000)
    assert len(got) > 3 and all(count_tokens_text(p) <= 1_000 for p in got)
    first = got[0].split("\n")
    assert first[0].startswith("[headroom: the document around the 300 items in .data.hits, then")
    around = json.loads(first[1].removeprefix("[the document around the items] "))
    assert around == {**doc, "data": {"hits": "<the 300 items of .data.hits>"}}
    hits = [item for p in got for item in json.loads(p.split("\n")[-1])]
    assert {**around, "data": {"hits": hits}} == doc  # the document, whole, from its pages
    # limit counts items only, never the document around them
    assert len(json.loads(retrieve(ref, store=store, limit=3).split("\n")[-1])) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offset": -1}, "offset must be a whole number >= 0"),
        ({"offset": "ten"}, "offset must be a whole number >= 0"),
        ({"limit": 0}, "limit must be a whole number >= 1"),
    ],
)
def test_bad_paging_arguments_give_a_message(kwargs: dict[str, object], message: str) -> None:
    store = MemoryOriginalStore()
    ref = store.put("a\nb\nc")
    assert message in retrieve(ref, store=store, **kwargs)  # type: ignore[arg-type]
    assert retrieve(ref, store=store, offset="1", limit="1").endswith("\nb")  # strings parse


def test_offset_past_the_end_says_so() -> None:
    store = MemoryOriginalStore()
    ref = store.put("a\nb\nc")
    assert "offset 7 is past the end; there are 3 lines" in retrieve(ref, store=store, offset=7)


def test_the_tool_definition_offers_offset_and_limit() -> None:
    for fmt, key in (("openai", "parameters"), ("anthropic", "input_schema")):
        tool = definition(fmt)  # type: ignore[arg-type]
        schema = tool["function"][key] if fmt == "openai" else tool[key]
        assert set(schema["properties"]) == {"ref", "query", "offset", "limit"}
        assert schema["properties"]["offset"]["type"] == "integer"
        assert schema["required"] == ["ref"]
    text = definition()["function"]["description"]
    assert RETRIEVE_TOOL_NAME == "headroom_retrieve" and "offset" in text

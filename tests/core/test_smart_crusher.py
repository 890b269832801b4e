from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_core import HeadroomConfig, SmartCrusherConfig, compress
from headroom_core.ccr import MemoryOriginalStore, retrieve
from headroom_core.tokens import get_tokenizer
from headroom_core.transforms import json_codec
from headroom_core.transforms._content import ContentContext
from headroom_core.transforms.smart_crusher import SmartCrusher

TOK = get_tokenizer("gpt-4o")


def crush(
    data: Any, query: str | None = None, tool: str | None = None, **cfg: Any
) -> tuple[Any, MemoryOriginalStore, str]:
    store = MemoryOriginalStore()
    sc = SmartCrusher(SmartCrusherConfig(**cfg), store)
    text = json.dumps(data, indent=2)
    result = sc.compress(text, ContentContext(TOK.count_text, sc.config, store, query, tool))
    assert result is not None
    return json_codec.decode(json.loads(result.text)), store, result.text


def rows(n: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"user{i}", "status": "active", "score": 50 + (i % 7)} for i in range(n)
    ]


def marker_of(items: list[Any]) -> dict[str, Any]:
    assert "__headroom_truncated" in items[-1]
    return items[-1]


def test_long_array_keeps_head_tail_and_marks_the_cut_with_a_retrievable_ref() -> None:
    data = rows(200)
    out, store, _ = crush(data)
    kept = out[:-1]
    marker = marker_of(out)
    assert kept[:3] == data[:3] and kept[-2:] == data[-2:]
    assert [r["id"] for r in kept] == sorted(r["id"] for r in kept)  # original order
    assert marker["__headroom_truncated"] == 200 - len(kept) and marker["of"] == 200
    omitted = set()
    for part in marker["omitted"].split(","):
        a, _, b = part.partition("-")
        omitted |= set(range(int(a), int(b or a) + 1))
    assert omitted == set(range(200)) - {r["id"] for r in kept}
    assert json.loads(retrieve(marker["ref"], store=store, max_tokens=None)) == data
    filtered = retrieve(marker["ref"], query="user137", store=store)
    assert '"user137"' in filtered and '"user138"' not in filtered


def test_every_error_item_is_kept_verbatim_beyond_the_cap() -> None:
    data = rows(300)
    errors = {
        17: {"status": 503},
        90: {"error": {"message": "disk full"}},
        150: {"level": "ERROR"},
        151: {"status_code": 404},
        220: {"state": "failed"},
    }
    for i, extra in errors.items():
        data[i] = {**data[i], **extra}
    out, _, _ = crush(data, max_items_after_crush=5)
    kept = {r["id"]: r for r in out[:-1]}
    for i in errors:
        assert kept[i] == data[i]


def test_numeric_anomaly_and_change_point_are_kept() -> None:
    data = [{"t": i, "latency_ms": 20 + (i % 3)} for i in range(120)]
    data[77]["latency_ms"] = 9000  # outlier
    for i in range(95, 120):  # level shift
        data[i]["latency_ms"] += 400
    out, _, _ = crush(data)
    kept_t = [r["t"] for r in out[:-1]]
    assert 77 in kept_t
    assert any(93 <= t <= 97 for t in kept_t)


def test_query_named_item_is_kept_verbatim_even_when_nested() -> None:
    data = {"page": 1, "data": {"items": [{**r, "notes": "x" * 30} for r in rows(150)]}}
    out, _, _ = crush(data, query="What is the status of user118?")
    kept = out["data"]["items"][:-1]
    assert data["data"]["items"][118] in kept


def test_tool_profile_caps_items_and_never_compress_list_is_honoured() -> None:
    data = rows(100)
    out, _, _ = crush(
        data,
        tool="search",
        tool_profiles={"search": {"max_array_items": 5}},
        lossless_below_tokens=0,
    )
    assert len(out) - 1 <= 5
    cfg = HeadroomConfig(smart_crusher=SmartCrusherConfig(never_compress_tools=("read_file",)))
    text = json.dumps(data, indent=2)
    msgs = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": text},
    ]
    assert compress(msgs, config=cfg).messages[2]["content"] == text


def test_below_min_tokens_only_lossless_forms() -> None:
    data = rows(30)
    out, store, text = crush(data, min_tokens_to_crush=100_000)
    assert out == data and len(store) == 0
    assert TOK.count_text(text) < TOK.count_text(json.dumps(data, separators=(",", ":")))


def test_long_strings_cut_with_marker_and_ref() -> None:
    data = {"id": 1, "body": "lorem ipsum " * 1000}
    out, store, _ = crush(data)
    match = re.search(r"…\[headroom: (\d+) chars cut; ref=([0-9a-f]{32})\]$", out["body"])
    assert match and int(match.group(1)) == len(data["body"]) - 1000
    assert json.loads(retrieve(match.group(2), store=store, max_tokens=None)) == data


def test_hypermedia_links_pruned_with_marker() -> None:
    user = {"login": "octo", "id": 1, "url": "https://api.x/u/octo", "html_url": "https://x/octo"}
    user |= {
        f"{k}_url": f"https://api.x/u/octo/{k}" for k in ("followers", "repos", "events", "gists")
    }
    data = {
        "sender": user,
        "repository": {"id": 9, "owner": user, "full_name": "octo/r"},
        "pad": "y" * 800,
    }
    out, store, _ = crush(data, lossless_below_tokens=0)
    assert "followers_url" not in out["sender"] and out["sender"]["html_url"] == "https://x/octo"
    omitted = out["__headroom_omitted"]
    assert omitted["fields"] == ["events_url", "followers_url", "gists_url", "repos_url"]
    assert omitted["count"] == 8
    assert json.loads(retrieve(omitted["ref"], store=store, max_tokens=None)) == data
    kept, _, _ = crush(data, query="what is the followers_url of octo?", lossless_below_tokens=0)
    assert kept["sender"]["followers_url"] == user["followers_url"]


def test_deterministic_and_idempotent() -> None:
    data = rows(120)
    _, _, first = crush(data, query="user 7")
    _, _, second = crush(data, query="user 7")
    assert first == second
    store = MemoryOriginalStore()
    sc = SmartCrusher(SmartCrusherConfig(), store)
    assert sc.compress(first, ContentContext(TOK.count_text, sc.config, store, "user 7")) is None


scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=12)
records = st.fixed_dictionaries({"id": st.integers(0, 10**6), "v": scalars, "w": scalars})


@settings(max_examples=40, deadline=None)
@given(st.lists(records, min_size=0, max_size=80), st.sampled_from([None, "id 5", "error"]))
def test_never_more_tokens_than_compact_json(data: list, query: str | None) -> None:
    store = MemoryOriginalStore()
    sc = SmartCrusher(SmartCrusherConfig(min_tokens_to_crush=50), store)
    text = json.dumps(data, indent=1)
    result = sc.compress(text, ContentContext(TOK.count_text, sc.config, store, query))
    compact = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if result is not None:
        assert TOK.count_text(result.text) <= TOK.count_text(compact)
        if not result.lossy:
            assert json_codec.decode(json.loads(result.text)) == data


def test_reserved_keys_and_malformed_json_are_left_alone() -> None:
    store = MemoryOriginalStore()
    sc = SmartCrusher(SmartCrusherConfig(), store)
    ctx = ContentContext(TOK.count_text, sc.config, store)
    assert sc.compress(json.dumps([{"__headroom_cols": 1}] * 50), ctx) is None
    assert sc.compress('{"a": [1, 2,', ctx) is None


def _refs(node: Any) -> list[str]:
    found = []
    text = json.dumps(node)
    found += re.findall(r'"ref": "([0-9a-f]{32})"', text)
    found += re.findall(r"ref=([0-9a-f]{32})", text)
    return found


def test_every_marker_on_real_data_retrieves_the_exact_original(shared_data) -> None:
    store = MemoryOriginalStore()
    sc = SmartCrusher(SmartCrusherConfig(), store)
    checked = 0
    for path in sorted(shared_data.glob("api_*/**/*.json")) + sorted(
        shared_data.glob("db_tau_bench/samples/*.json")
    ):
        text = path.read_text("utf-8")
        if len(text) < 2048:
            continue
        result = sc.compress(
            text, ContentContext(TOK.count_text, sc.config, store, "status of 1000")
        )
        if result is None or not result.lossy:
            continue
        original = json.loads(text)
        for ref in set(_refs(json.loads(result.text))):
            assert json.loads(retrieve(ref, store=store, max_tokens=None)) == original, path.name
            checked += 1
    assert checked >= 50


class SynonymScorer:
    """A Scorer that knows 'broken' means 'failed' (what an embedding scorer adds over BM25)."""

    def score_items(self, items: list[str], query: str) -> list[float]:
        wants = "failed" if "broken" in query else query
        return [1.0 if wants in item else 0.0 for item in items]


def test_a_configured_scorer_picks_the_relevant_items() -> None:
    data = [{"id": i, "state": "ok", "note": f"run {i}"} for i in range(100)]
    data[64]["note"] = "run failed twice"
    store = MemoryOriginalStore()
    query = "which run is broken?"
    cfg = SmartCrusherConfig(lossless_below_tokens=0)
    bm25 = SmartCrusher(cfg, store)
    ctx = ContentContext(TOK.count_text, bm25.config, store, query)
    bm25_kept = json_codec.decode(json.loads(bm25.compress(json.dumps(data), ctx).text))
    assert data[64] not in bm25_kept  # no shared word: BM25 cannot see it
    semantic = SmartCrusher(cfg, store, scorer=SynonymScorer())
    kept = json_codec.decode(json.loads(semantic.compress(json.dumps(data), ctx).text))
    assert data[64] in kept


def test_a_tools_own_headroom_keys_are_escaped_not_a_reason_to_skip() -> None:
    """A ``__headroom*`` key in a tool's JSON no longer switches compression off: it is
    escaped, the output is compressed, the documented decoder restores the key and the ref
    the exact original (issue 19)."""
    data = [{"__headroom_id": f"h{i}", **r} for i, r in enumerate(rows(400))]
    out, store, text = crush(data)
    assert '"__headroom_key:__headroom_id"' in text  # escaped, never one of our keys
    kept = out[:-1]
    marker = marker_of(out)
    assert kept[0] == data[0] and all("__headroom_id" in r for r in kept)
    assert json.loads(retrieve(marker["ref"], store=store)) == data
    small = [{"__headroom_id": 1, "a": 2}, {"__headroom_id": 3, "a": 4}]
    lossless, _, _ = crush(small, lossless_below_tokens=10_000)
    assert lossless == small


def test_an_exact_imitation_of_our_markers_is_left_alone() -> None:
    """Data holding one of our own keys reads as our output already: not trusted, not
    re-cut, passed through as it is (compressing our output again changes nothing)."""
    fake = [*rows(300), {"__headroom_truncated": 5, "of": 9, "ref": "0" * 16}]
    store = MemoryOriginalStore()
    sc = SmartCrusher(SmartCrusherConfig(), store)
    text = json.dumps(fake, indent=2)
    ctx = ContentContext(TOK.count_text, sc.config, store, None, None)
    assert sc.compress(text, ctx) is None
    assert len(store) == 0

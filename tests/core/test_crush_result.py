"""SmartCrusher.crush: the compressed value and one Omission per cut, read from the markers."""

from __future__ import annotations

from typing import Any

from headroom_core import SmartCrusher, SmartCrusherConfig
from headroom_core.ccr import MemoryOriginalStore, retrieve
from headroom_core.transforms import CrushResult, Omission


def crusher(**cfg: Any) -> SmartCrusher:
    """Cuts at any size (these tests read the shape of each omission, not the threshold)."""
    return SmartCrusher(
        SmartCrusherConfig(**{"lossless_below_tokens": 0, **cfg}), MemoryOriginalStore()
    )


def test_array_cut_is_one_items_omission_naming_the_dropped_positions() -> None:
    data = {"page": {"results": [{"id": i, "v": "x" * 20} for i in range(100)]}}
    result = crusher(max_items_after_crush=10).crush(data)
    (cut,) = result.omitted
    kept = [r["id"] for r in result.data["page"]["results"][:-1]]
    assert cut == Omission(
        "$.page.results", "items", 100 - len(kept), 100, cut.detail, result.refs[0]
    )
    dropped = [i for i in range(100) if i not in kept]
    assert _expand(cut.detail) == dropped
    assert result.lossy and result.dropped == len(dropped) and result.was_modified


def test_records_fields_and_long_strings_are_reported_each_in_their_kind() -> None:
    records = {f"user-{i}": {"name": f"n{i}", "n": i} for i in range(40)}
    links = [
        {
            "login": f"u{i}",
            "followers_url": f"https://api.example.com/u{i}/followers",
            "repos_url": f"https://api.example.com/u{i}/repos",
            "events_url": f"https://api.example.com/u{i}/events",
        }
        for i in range(3)
    ]
    data = {"records": records, "people": links, "note": "word " * 1000}
    sc = crusher(max_items_after_crush=10)
    result = sc.crush(data, "user-7")
    kinds = {o.kind: o for o in result.omitted}
    assert set(kinds) == {"records", "fields", "chars"}
    assert kinds["records"].path == "$.records" and kinds["records"].of == 40
    assert kinds["records"].count == 40 - (len(result.data["records"]) - 1)
    assert "user-7" in result.data["records"]  # the record the query names
    assert kinds["fields"].path == "$" and kinds["fields"].count == 9
    assert kinds["fields"].detail == "events_url,followers_url,repos_url"
    assert kinds["chars"].path == "$.note" and kinds["chars"].count > 0
    assert {o.ref for o in result.omitted} == set(result.refs)
    assert retrieve(result.refs[0], store=sc.store).startswith('{"records"')


def test_what_is_left_alone_comes_back_unchanged() -> None:
    for data in ([1, 2, 3], {"__headroom_truncated": 1}, {"big": 2**70}):
        result = crusher().crush(data)
        assert isinstance(result, CrushResult)
        assert result.data == data and result.omitted == () and not result.lossy
        assert result.tokens_before == result.tokens_after and not result.was_modified


def test_lossless_forms_decode_to_the_input() -> None:
    rows = [{"id": i, "status": "ok", "region": "eu"} for i in range(8)]
    result = crusher().crush(rows)
    assert result.data == rows and result.omitted == () and not result.lossy
    assert result.tokens_after < result.tokens_before  # the table form, lossless


def _expand(ranges: str) -> list[int]:
    out: list[int] = []
    for part in ranges.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out

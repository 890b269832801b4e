"""Store of originals for reversible compression: refs, both stores, LRU, retrieve, tool."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from headroom_core.ccr import (
    RETRIEVE_TOOL_NAME,
    MemoryOriginalStore,
    OriginalStore,
    SQLiteOriginalStore,
    StoredOriginal,
    add_retrieval_listener,
    get_default_store,
    is_ref,
    open_original_store,
    ref_for,
    remove_retrieval_listener,
    retrieve,
    retrieve_tool_definition,
    set_default_store,
)
from headroom_core.errors import ConfigError, InputError, StorageError
from headroom_core.metrics import RequestMetrics, SQLiteMetricsStore

KINDS = ("memory", "sqlite")
N_PROCS, PER_PROC, SHARED = 3, 40, 10


def make_store(
    kind: str, tmp_path: Path, **bounds: int
) -> MemoryOriginalStore | SQLiteOriginalStore:
    if kind == "sqlite":
        return SQLiteOriginalStore(tmp_path / "originals.db", **bounds)
    return MemoryOriginalStore(**bounds)


SHARED_KINDS = ("redis", "postgresql")


def shared_url(request: pytest.FixtureRequest, kind: str, query: str = "") -> str:
    """A fresh Redis db or PostgreSQL database on the session's throwaway server."""
    url = str(request.getfixturevalue("redis_url" if kind == "redis" else "pg_url"))
    return url + (f"&{query}" if query else "")


@pytest.fixture(params=(*KINDS, *SHARED_KINDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OriginalStore]:
    if request.param in SHARED_KINDS:
        opened: Any = open_original_store(shared_url(request, request.param))
    else:
        opened = make_store(request.param, tmp_path)
    with opened as s:
        yield s


@pytest.fixture
def default_store() -> Iterator[MemoryOriginalStore]:
    """A fresh default store for one test; the previous default comes back afterwards."""
    previous = get_default_store()
    fresh = MemoryOriginalStore()
    set_default_store(fresh)
    try:
        yield fresh
    finally:
        set_default_store(previous)


# --- refs ---------------------------------------------------------------------------------


def test_ref_is_the_sha256_prefix_of_the_utf8_bytes() -> None:
    text = "héllo wörld ✓"
    assert ref_for(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    assert ref_for("") == "e3b0c44298fc1c149afbf4c8996fb924"  # 128 bits
    assert is_ref(ref_for(text)) and ref_for("a") != ref_for("b")
    with pytest.raises(InputError, match="expected a str"):
        ref_for(b"bytes")  # type: ignore[arg-type]


def test_ref_is_the_same_in_another_process() -> None:
    code = "from headroom_core.ccr import ref_for; print(ref_for('héllo ✓ 🚀'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ref_for("héllo ✓ 🚀")


@pytest.mark.parametrize("value", ["0123456789abcdef" * 2, "f" * 32])
def test_is_ref_accepts_32_lowercase_hex(value: str) -> None:
    assert is_ref(value)


@pytest.mark.parametrize(
    "value",
    [
        "0123456789ABCDEF" * 2,
        "0123456789abcdef",  # the 64-bit refs of earlier versions
        "0123456789abcdef" * 2 + "a",
        "0123456789abcdef0123456789abcdeg",
        "",
        None,
        123,
    ],
)
def test_is_ref_rejects_everything_else(value: object) -> None:
    assert not is_ref(value)


# --- both stores ------------------------------------------------------------------------


def test_both_stores_satisfy_the_protocol(tmp_path: Path) -> None:
    for kind in KINDS:
        with make_store(kind, tmp_path) as s:
            assert isinstance(s, OriginalStore)
    assert not isinstance(object(), OriginalStore)


def test_put_get_and_idempotence(store: OriginalStore) -> None:
    text = '[{"id": 1}, {"id": 2}]'
    ref = store.put(text, tool="search", kind="json", meta={"items": 2, "nested": {"a": [1]}})
    assert ref == ref_for(text)
    again = store.put(text, tool="other", kind="text", meta={"x": 1})
    assert again == ref and len(store) == 1 and ref in store
    got = store.get(ref)
    assert got is not None
    assert (got.ref, got.text, got.tool, got.kind, got.size) == (
        ref,
        text,
        "search",
        "json",
        len(text),
    )
    assert got.meta == {"items": 2, "nested": {"a": [1]}}  # the first put's metadata is kept
    assert got.created_at > 1.6e9
    other = store.put("plain text", kind="text")
    got_other = store.get(other)
    assert got_other is not None and got_other.tool is None and got_other.meta == {}
    assert len(store) == 2


def test_get_hands_out_a_fresh_meta(store: OriginalStore) -> None:
    ref = store.put("x", meta={"k": [1]})
    first = store.get(ref)
    assert first is not None
    first.meta["k"].append(2)
    second = store.get(ref)
    assert second is not None and second.meta == {"k": [1]}


def test_stored_original_is_a_frozen_record(store: OriginalStore) -> None:
    got = store.get(store.put("x"))
    assert isinstance(got, StoredOriginal)
    with pytest.raises(AttributeError):
        got.text = "y"  # type: ignore[misc]
    assert not hasattr(got, "__dict__")


def test_unknown_and_malformed_refs_are_absent(store: OriginalStore) -> None:
    store.put("something")
    assert store.get("0000000000000000") is None
    assert store.get("not-a-ref") is None
    assert store.get(ref_for("something").upper()) is None
    assert "0000000000000000" not in store and 42 not in store


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ünïcödé ✓ — 中文 日本語 한국어 🚀👩‍👩‍👧 e\u0301",
        "nul\x00byte\r\nwindows\rmac\nunix\u2028sep",
        "lone surrogate \ud800 survives",
        "x" * 1_000_000,
        "".join(chr(32 + (i * 7919) % 60000) for i in range(1_000_000)),  # incl. surrogates
    ],
    ids=["empty", "unicode", "control", "surrogate", "1MB-ascii", "1M-chars-mixed"],
)
def test_exact_round_trip(store: OriginalStore, text: str) -> None:
    ref = store.put(text)
    got = store.get(ref)
    assert got is not None
    assert got.text == text and got.size == len(text)


def test_clear_forgets_everything(store: OriginalStore) -> None:
    refs = [store.put(f"text {i}") for i in range(5)]
    store.clear()
    assert len(store) == 0 and all(store.get(r) is None for r in refs)
    ref = store.put("after clear")
    assert store.get(ref) is not None and len(store) == 1


@pytest.mark.parametrize(
    "bad", [{"meta": {"x": object()}}, {"meta": [1, 2]}, {"tool": 3}, {"kind": ""}]
)
def test_bad_put_arguments_are_refused(store: OriginalStore, bad: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        store.put("text", **bad)
    with pytest.raises(InputError, match="original must be a str"):
        store.put(b"bytes")  # type: ignore[arg-type]
    assert len(store) == 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "bounds", [{"max_entries": 0}, {"max_entries": True}, {"max_entries": 1.5}]
)
def test_bad_bounds_are_config_errors(kind: str, tmp_path: Path, bounds: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="max_entries"):
        make_store(kind, tmp_path, **bounds)


# --- LRU eviction ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_lru_eviction_by_entries(kind: str, tmp_path: Path) -> None:
    with make_store(kind, tmp_path, max_entries=3) as s:
        a, b, c = (s.put(t) for t in ("a", "b", "c"))
        assert s.get(a) is not None  # order of use: b, c, a
        d = s.put("d")  # evicts b -> c, a, d
        assert b not in s and all(r in s for r in (a, c, d))
        assert s.put("c") == c  # a put of stored text is a use -> a, d, c
        e = s.put("e")  # evicts a -> d, c, e
        assert a not in s and all(r in s for r in (c, d, e)) and len(s) == 3
        assert s.get(d) is not None  # -> c, e, d
        s.put("f")  # evicts c
        assert c not in s and all(r in s for r in (d, e)) and len(s) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_lru_eviction_by_size(kind: str, tmp_path: Path) -> None:
    bound = "max_chars" if kind == "memory" else "max_bytes"  # ASCII: chars == bytes
    with make_store(kind, tmp_path, **{bound: 10}) as s:
        a = s.put("aaaa")  # 4
        b = s.put("bbbb")  # 8
        assert s.get(a) is not None  # order b, a
        c = s.put("cc")  # 10: at the bound, nothing goes
        assert len(s) == 3
        d = s.put("ddd")  # 13: b, the least recently used, goes -> 9
        assert b not in s and all(r in s for r in (a, c, d))
        assert s.put("aaaa") == a  # order c, d, a
        e = s.put("ee")  # 11: c goes -> 9
        assert c not in s and all(r in s for r in (a, d, e))
        f = s.put("ffffffffff")  # 19: everything else goes to make room
        assert len(s) == 1 and f in s
        with pytest.raises(StorageError, match="larger than"):
            s.put("x" * 11)  # refused rather than stored and evicted at once
        assert len(s) == 1 and f in s


def test_sqlite_bound_counts_utf8_bytes_not_chars(tmp_path: Path) -> None:
    with SQLiteOriginalStore(tmp_path / "o.db", max_bytes=10) as s:
        first = s.put("éé")  # 2 chars, 4 bytes
        s.put("ééé")  # 3 chars, 6 bytes: 10 bytes, at the bound
        assert len(s) == 2 and s.total_bytes == 10
        s.put("é")  # 12 bytes: the oldest goes
        assert first not in s and len(s) == 2 and s.total_bytes == 8
        with pytest.raises(StorageError, match=str(tmp_path)):
            s.put("ééééé!")  # 6 chars but 11 bytes


def test_memory_store_counts_chars() -> None:
    s = MemoryOriginalStore(max_chars=5)
    s.put("ééééé")  # 5 chars (10 bytes) fits
    assert len(s) == 1 and s.total_chars == 5


def test_memory_store_is_thread_safe_and_stays_bounded() -> None:
    s = MemoryOriginalStore(max_entries=500, max_chars=10**9)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(200):
                ref = s.put(f"thread {t} item {i}")
                s.get(ref)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert errors == []
    held = [
        t for t in (f"thread {t} item {i}" for t in range(8) for i in range(200)) if ref_for(t) in s
    ]
    assert len(s) == len(held) == 500
    assert s.total_chars == sum(map(len, held))


# --- SQLite: persistence, processes, failures --------------------------------------------


def test_sqlite_persists_across_reopen_with_its_lru_order(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "dir" / "o.db"
    with SQLiteOriginalStore(db, max_entries=3) as s:
        a, b, c = (s.put(t, tool="t", meta={"n": i}) for i, t in enumerate(("a", "b", "c")))
    assert db.exists()
    with SQLiteOriginalStore(db, max_entries=3) as s:
        assert len(s) == 3
        got = s.get(a)  # order b, c, a
        assert got is not None and (got.text, got.tool, got.meta) == ("a", "t", {"n": 0})
    with SQLiteOriginalStore(db, max_entries=3) as s:
        s.put("d")
        assert b not in s and a in s and c in s


def test_sqlite_texts_are_stored_compressed(tmp_path: Path) -> None:
    text = json.dumps([{"id": i, "name": "same name", "ok": True} for i in range(20_000)])
    with SQLiteOriginalStore(tmp_path / "o.db") as s:
        ref = s.put(text)
    with sqlite3.connect(tmp_path / "o.db") as conn:
        (stored,) = conn.execute(
            "SELECT length(body) FROM ccr_originals WHERE ref = ?", (ref,)
        ).fetchone()
    assert stored < len(text) / 5


def _write_from_process(path: str, worker: int, barrier: Any) -> None:
    store = SQLiteOriginalStore(path)
    barrier.wait(timeout=60)
    for i in range(PER_PROC):
        store.put(f"process {worker} text {i} " + "é" * i, tool=f"w{worker}")
        if i < SHARED:
            store.put(f"shared text {i}")  # the same text from every process: stored once
    store.close()


def test_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "shared" / "o.db"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(N_PROCS)
    procs = [
        ctx.Process(target=_write_from_process, args=(str(db), w, barrier)) for w in range(N_PROCS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * N_PROCS
    expected = [f"process {w} text {i} " + "é" * i for w in range(N_PROCS) for i in range(PER_PROC)]
    expected += [f"shared text {i}" for i in range(SHARED)]
    with SQLiteOriginalStore(db) as s:
        assert len(s) == len(expected) == N_PROCS * PER_PROC + SHARED
        for text in expected:
            got = s.get(ref_for(text))
            assert got is not None and got.text == text
        assert s.total_bytes == sum(len(t.encode()) for t in expected)


def test_corrupt_file_is_a_storage_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"this is not a sqlite database at all " * 200)
    with pytest.raises(StorageError, match=r"corrupt\.db"):
        SQLiteOriginalStore(bad)
    with pytest.raises(StorageError, match="is a directory"):
        SQLiteOriginalStore(tmp_path)
    with pytest.raises(ConfigError, match="file path is required"):
        SQLiteOriginalStore(":memory:")


def test_corrupt_row_is_a_storage_error_and_retrieve_says_so(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    with SQLiteOriginalStore(db) as s:
        ref = s.put("soon damaged")
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE ccr_originals SET body = x'00112233' WHERE ref = ?", (ref,))
        with pytest.raises(StorageError, match=r"o\.db"):
            s.get(ref)
        message = retrieve(ref, store=s)
        assert message.startswith("[headroom: the store of originals could not be read")
        assert str(db) in message


def test_closed_store_raises_and_retrieve_says_so(tmp_path: Path) -> None:
    s = SQLiteOriginalStore(tmp_path / "o.db")
    ref = s.put("text")
    s.close()
    s.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        s.get(ref)
    assert "could not be read" in retrieve(ref, store=s)


@pytest.mark.parametrize("originals_first", [True, False])
def test_sqlite_file_can_hold_metrics_too(tmp_path: Path, originals_first: bool) -> None:
    db = tmp_path / "headroom.db"
    creators: list[Any] = [SQLiteOriginalStore, SQLiteMetricsStore]
    for create in creators if originals_first else creators[::-1]:
        create(db).close()  # each lays out its own tables without disturbing the other's
    for i in range(2):
        with SQLiteOriginalStore(db) as o, SQLiteMetricsStore(db) as m:
            o.put("kept beside the metrics")
            m.record(
                RequestMetrics(
                    request_id=f"r{i}",
                    timestamp=datetime.now(timezone.utc),
                    model="m",
                    mode="audit",
                    tokens_input_before=2,
                    tokens_input_after=1,
                )
            )
    with SQLiteOriginalStore(db) as o, SQLiteMetricsStore(db) as m:
        assert len(o) == 1 and o.get(ref_for("kept beside the metrics")) is not None
        assert sorted(r.request_id for r in m.get_metrics()) == ["r0", "r1"]


# --- opening by URL and the default store ------------------------------------------------


def test_open_original_store_by_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_original_store(), MemoryOriginalStore)
    assert isinstance(open_original_store("memory://"), MemoryOriginalStore)
    monkeypatch.chdir(tmp_path)
    rel = open_original_store("sqlite:///rel/o.db")
    assert isinstance(rel, SQLiteOriginalStore) and rel.path == tmp_path / "rel" / "o.db"
    rel.close()
    absolute = tmp_path / "abs" / "o.db"
    abs_store = open_original_store(f"sqlite:///{absolute}")
    assert isinstance(abs_store, SQLiteOriginalStore) and abs_store.path == absolute
    abs_store.close()


@pytest.mark.parametrize("url", ["mongodb://localhost", "nonsense", "sqlite:/x.db"])
def test_unknown_scheme_names_the_known_ones(url: str) -> None:
    with pytest.raises(
        ConfigError,
        match=r"known schemes: memory://, postgres://, postgresql://, redis://, rediss://, sqlite://",
    ):
        open_original_store(url)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://o.db", "memory://x"])
def test_malformed_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="original store URL"):
        open_original_store(url)


def test_default_store(default_store: MemoryOriginalStore) -> None:
    assert get_default_store() is default_store
    ref = default_store.put("in the default store")
    assert retrieve(ref) == "in the default store"
    other = MemoryOriginalStore()
    set_default_store(other)
    assert get_default_store() is other
    assert retrieve(ref).startswith("[headroom: no original stored under ref")
    with pytest.raises(ConfigError, match="expected an OriginalStore"):
        set_default_store("memory://")  # type: ignore[arg-type]
    assert get_default_store() is other


# --- retrieve -------------------------------------------------------------------------------


ROWS = [
    {
        "id": i,
        "name": f"user {i}",
        "status": "ERROR" if i % 250 == 7 else "ok",
        "city": "Zürich" if i % 2 else "Paris",
    }
    for i in range(1000)
]


def test_retrieve_without_query_is_the_exact_original(store: OriginalStore) -> None:
    text = json.dumps(ROWS, indent=2)  # ~27k tokens: over the default cap, so no cap here
    ref = store.put(text)
    assert retrieve(ref, store=store, max_tokens=None) == text
    assert retrieve(f"  {ref.upper()} ", store=store, max_tokens=None) == text  # pasted noise
    assert retrieve(ref, "   ", store=store, max_tokens=None) == text  # blank query: no query
    small = json.dumps(ROWS[:20], indent=2)
    assert retrieve(store.put(small), store=store) == small  # under the cap: whole, as stored


def test_query_filters_a_json_array(store: OriginalStore) -> None:
    ref = store.put(json.dumps(ROWS))
    out = retrieve(ref, "error", store=store)
    header, body = out.split("\n", 1)
    assert header == "[headroom: 4 of 1000 items match 'error'; call again without query for all]"
    assert json.loads(body) == [r for r in ROWS if r["status"] == "ERROR"]
    assert "\n" not in body and ", " not in body  # compact JSON
    both = retrieve(ref, "Error ZÜRICH", store=store)  # every term, case-insensitively
    assert json.loads(both.split("\n", 1)[1]) == [
        r for r in ROWS if r["status"] == "ERROR" and r["city"] == "Zürich"
    ]
    none = retrieve(ref, "nobody", store=store)
    assert none == (
        "[headroom: 0 of 1000 items match 'nobody'; call again without query for all]\n[]"
    )


def test_query_filters_the_largest_array_of_an_object(store: OriginalStore) -> None:
    doc = {"total": 1000, "page": {"size": 1000, "next": None}, "results": ROWS}
    out = retrieve(store.put(json.dumps(doc)), "user 998", store=store)
    header, body = out.split("\n", 1)
    assert header == (
        "[headroom: 1 of 1000 items in .results match 'user 998'; call again without query for all]"
    )
    assert json.loads(body) == [ROWS[998]]


def test_query_descends_into_nested_objects(store: OriginalStore) -> None:
    doc = {"meta": {"took_ms": 3}, "data": {"count": 1000, "hits": {"items": ROWS}}}
    out = retrieve(store.put(json.dumps(doc)), '"id": 999', store=store)
    header, body = out.split("\n", 1)
    assert "1 of 1000 items in .data.hits.items" in header
    assert json.loads(body) == [ROWS[999]]
    odd = {"weird key": [{"v": 1}, {"v": 2}], "x": 1}
    out = retrieve(store.put(json.dumps(odd)), '"v":2', store=store)
    assert '1 of 2 items in ["weird key"]' in out and out.endswith('[{"v":2}]')


def test_query_keeps_json_numbers_exact(store: OriginalStore) -> None:
    text = '[{"id": 123456789012345678901234567890, "tag": "big"}, {"id": 1, "tag": "small"}]'
    out = retrieve(store.put(text), "big", store=store)
    assert out.endswith('[{"id":123456789012345678901234567890,"tag":"big"}]')


def test_query_filters_lines_with_their_numbers(store: OriginalStore) -> None:
    log = "\n".join(
        f"2025-01-01 12:00:{i % 60:02d} {'ERROR disk full' if i in (3, 77) else 'INFO ok'} #{i}"
        for i in range(1, 201)
    )
    out = retrieve(store.put(log, kind="text"), "error", store=store)
    assert out.splitlines() == [
        "[headroom: 2 of 200 lines match 'error'; call again without query for all]",
        "3: 2025-01-01 12:00:03 ERROR disk full #3",
        "77: 2025-01-01 12:00:17 ERROR disk full #77",
    ]


def test_json_without_an_array_is_filtered_by_lines(store: OriginalStore) -> None:
    text = json.dumps({"name": "widget", "owner": {"team": "core"}}, indent=2)
    out = retrieve(store.put(text), "TEAM", store=store)
    assert out.splitlines()[0].startswith("[headroom: 1 of ")
    assert out.splitlines()[1] == '4:     "team": "core"'


def test_missing_ref_gives_a_message_with_the_store_size(store: OriginalStore) -> None:
    store.put("one")
    store.put("two")
    out = retrieve("0123456789abcdef" * 2, store=store)
    assert out == (
        f"[headroom: no original stored under ref '{'0123456789abcdef' * 2}'; it may have "
        "been evicted (store holds 2 entries); re-run the tool]"
    )


@pytest.mark.parametrize("ref", ["abc", "0123456789abcdeX", "", "0123456789abcdef0", None, 7])
def test_malformed_ref_gives_a_message(store: OriginalStore, ref: Any) -> None:
    out = retrieve(ref, "q", store=store)
    assert out.startswith("[headroom: ") and "is not a valid ref" in out
    assert "32 hex characters" in out


def test_evicted_ref_gives_the_missing_message() -> None:
    s = MemoryOriginalStore(max_entries=1)
    first = s.put("first")
    s.put("second")
    assert f"no original stored under ref '{first}'" in retrieve(first, store=s)
    assert "(store holds 1 entries)" in retrieve(first, store=s)


# --- listeners ------------------------------------------------------------------------------


def test_listener_is_called_on_success_only(store: OriginalStore) -> None:
    calls: list[tuple[str, str | None, str | None]] = []

    def listener(original: StoredOriginal, query: str | None) -> None:
        calls.append((original.ref, original.tool, query))

    ref = store.put("[1, 2, 3]", tool="numbers")
    add_retrieval_listener(listener)
    try:
        retrieve(ref, store=store)
        retrieve(ref, "2", store=store)
        retrieve("0000000000000000", store=store)  # missing: no call
        retrieve("bad", store=store)  # malformed: no call
    finally:
        remove_retrieval_listener(listener)
    retrieve(ref, store=store)  # removed: no call
    assert calls == [(ref, "numbers", None), (ref, "numbers", "2")]
    remove_retrieval_listener(listener)  # removing twice is harmless


def test_listener_exception_is_logged_not_raised(
    store: OriginalStore, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken(original: StoredOriginal, query: str | None) -> None:
        raise RuntimeError("listener blew up")

    def after(original: StoredOriginal, query: str | None) -> None:
        seen.append(original.text)

    ref = store.put("still retrieved")
    add_retrieval_listener(broken)
    add_retrieval_listener(after)
    try:
        with caplog.at_level(logging.ERROR, logger="headroom_core.ccr"):
            assert retrieve(ref, store=store) == "still retrieved"
    finally:
        remove_retrieval_listener(broken)
        remove_retrieval_listener(after)
    assert seen == ["still retrieved"]  # a broken listener does not stop the next one
    assert any("listener blew up" in (r.exc_text or "") for r in caplog.records)
    assert any(ref in r.getMessage() for r in caplog.records)


# --- tool definition ------------------------------------------------------------------------


def test_openai_tool_definition() -> None:
    tool = retrieve_tool_definition("openai")
    assert retrieve_tool_definition() == tool
    assert tool["type"] == "function" and set(tool) == {"type", "function"}
    fn = tool["function"]
    assert fn["name"] == RETRIEVE_TOOL_NAME == "headroom_retrieve"
    _check_schema(fn["parameters"])
    _check_description(fn["description"])


def test_anthropic_tool_definition() -> None:
    tool = retrieve_tool_definition("anthropic")
    assert set(tool) == {"name", "description", "input_schema"}
    assert tool["name"] == "headroom_retrieve"
    _check_schema(tool["input_schema"])
    _check_description(tool["description"])


def test_tool_definition_is_a_fresh_dict_each_time() -> None:
    first = retrieve_tool_definition("anthropic")
    first["input_schema"]["properties"]["ref"]["type"] = "integer"
    first["input_schema"]["required"].append("query")
    _check_schema(retrieve_tool_definition("anthropic")["input_schema"])
    with pytest.raises(ConfigError, match="fmt"):
        retrieve_tool_definition("gemini")  # type: ignore[arg-type]


def _check_schema(schema: dict[str, Any]) -> None:
    assert schema["type"] == "object"
    assert schema["required"] == ["ref"]
    assert set(schema["properties"]) == {"ref", "query", "offset", "limit"}
    assert schema["properties"]["ref"]["type"] == "string"
    assert schema["properties"]["query"]["type"] == "string"
    assert schema["properties"]["offset"]["type"] == schema["properties"]["limit"]["type"]
    json.dumps(schema)  # plain JSON, as the providers need


def _check_description(text: str) -> None:
    assert '{"__headroom_truncated": N, "ref": "..."}' in text
    assert "[... N lines omitted; ref=...]" in text
    assert "query" in text

"""TOIN: counts, importance, fields learned from retrievals, both backends, wiring to ccr."""

from __future__ import annotations

import json
import logging
import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headroom_core.ccr import MemoryOriginalStore, SQLiteOriginalStore, retrieve
from headroom_core.errors import ConfigError, InputError, StorageError
from headroom_core.toin import (
    MAX_FIELD_CHARS,
    MAX_FIELDS_PER_RETRIEVAL,
    MemoryToin,
    SQLiteToin,
    Toin,
    ToolStats,
    attach,
    get_toin,
    importance_of,
    named_keys,
    open_toin,
    query_terms,
    set_toin,
    toin_schemes,
)

KINDS = ("memory", "sqlite")
N_PROCS, PER_PROC = 3, 60

ORDERS = json.dumps(
    {
        "total": 3,
        "items": [
            {"id": 1, "status": "shipped", "customer": {"Name": "Ann", "tier": "gold"}},
            {"id": 2, "status": "pending", "customer": {"Name": "Bo", "tier": "basic"}},
            {"id": 3, "status": "shipped", "notes": [{"author": "x", "statusCode": 200}]},
        ],
    }
)


def make_toin(kind: str, tmp_path: Path, **options: int) -> MemoryToin | SQLiteToin:
    if kind == "sqlite":
        return SQLiteToin(tmp_path / "toin.db", **options)
    return MemoryToin(**options)


SHARED_KINDS = ("redis", "postgresql")


@pytest.fixture(params=(*KINDS, *SHARED_KINDS))
def toin(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Toin]:
    if request.param in SHARED_KINDS:  # a real server (tests/_servers.py), fresh database
        url = request.getfixturevalue("redis_url" if request.param == "redis" else "pg_url")
        opened: Toin = open_toin(url)
    else:
        opened = make_toin(request.param, tmp_path)
    with opened as t:
        yield t


@pytest.fixture
def default_toin() -> Iterator[MemoryToin]:
    """A fresh process default for one test; the previous one comes back afterwards."""
    previous = get_toin()
    fresh = MemoryToin()
    set_toin(fresh)
    try:
        yield fresh
    finally:
        set_toin(previous)


# --- counts and importance ----------------------------------------------------------------


def test_importance_is_retrievals_over_compressions_plus_two_capped_at_one() -> None:
    assert importance_of(0, 0) == 0.0
    assert importance_of(0, 1) == 0.5
    assert importance_of(3, 1) == 0.2
    assert importance_of(8, 4) == 0.4
    assert importance_of(1, 3) == 1.0  # more retrievals than cuts (the same ref fetched twice)


def test_counts_and_importance_per_tool(toin: Toin) -> None:
    assert toin.importance("search") == 0.0
    for _ in range(3):
        toin.record_compression("search", "json")
    toin.record_compression("search", "search")
    toin.record_retrieval("search", "json", None)
    toin.record_compression("logs", "log")
    for _ in range(5):
        toin.record_retrieval("logs", "log", "error")
    assert toin.importance("search") == 1 / 6  # kinds add up: 1 / (4 + 2)
    assert toin.importance("logs") == 1.0  # 5 / 3, capped
    assert toin.importance("never-seen") == 0.0
    stats = toin.stats()
    assert list(stats) == ["logs", "search"]
    assert stats["search"] == ToolStats(
        tool="search",
        compressions=4,
        retrievals=1,
        importance=1 / 6,
        fields={},
        compressions_by_kind={"json": 3, "search": 1},
        retrievals_by_kind={"json": 1},
    )
    assert stats["logs"] == ToolStats(
        tool="logs",
        compressions=1,
        retrievals=5,
        importance=1.0,
        fields={"error": 5},
        compressions_by_kind={"log": 1},
        retrievals_by_kind={"log": 5},
    )


def test_none_and_empty_tool_are_one_unknown_tool_listed_first(toin: Toin) -> None:
    toin.record_compression(None, "text")
    toin.record_compression("", "text")
    toin.record_retrieval("", "text", "Timeout")
    toin.record_compression("alpha", "json")
    assert list(toin.stats()) == [None, "alpha"]
    unknown = toin.stats()[None]
    assert (unknown.compressions, unknown.retrievals) == (2, 1)
    assert toin.importance(None) == toin.importance("") == 0.25
    assert toin.fields_for(None) == toin.fields_for("") == frozenset({"timeout"})


# --- fields -------------------------------------------------------------------------------


def test_query_terms_are_lowercased_without_stopwords_or_repeats() -> None:
    assert query_terms("Show me the STATUS of the orders with status") == ["status", "orders"]
    assert query_terms("dep-1027") == ["dep-1027", "dep", "1027"]
    assert query_terms(None) == [] and query_terms("   ") == [] and query_terms("the of") == []


def test_named_keys_are_the_json_keys_the_query_names_at_any_depth() -> None:
    assert named_keys(ORDERS, "status") == ["status"]
    assert named_keys(ORDERS, "tier name author shipped") == ["Name", "author", "tier"]
    assert named_keys(ORDERS, "statusCode for orders") == ["statusCode"]  # values never count
    assert named_keys(ORDERS, "missing") == []
    assert named_keys(ORDERS, None) == []
    assert named_keys("status: ok\nstatus: failed", "status") == []  # not JSON
    assert named_keys('{"status": ', "status") == []  # malformed JSON
    assert named_keys('[{"status": NaN}]', "status") == ["status"]  # read by the stdlib
    assert named_keys('[{"n": 123456789012345678901234567890}]', "n") == ["n"]


def test_retrieval_counts_each_field_and_term_once(toin: Toin) -> None:
    toin.record_retrieval("search", "json", "status of status", fields=["status", "Name"])
    toin.record_retrieval("search", "json", "Status errors", fields=("status",))
    toin.record_retrieval("search", "json", None, fields=iter(["id"]))
    toin.record_retrieval("other", "json", "unrelated")
    assert toin.fields_for("search") == frozenset({"status", "Name", "errors", "id"})
    assert toin.stats()["search"].fields == {"status": 2, "Name": 1, "errors": 1, "id": 1}
    assert toin.fields_for("other") == frozenset({"unrelated"})
    assert toin.fields_for("never-seen") == frozenset()


@pytest.mark.parametrize("kind", KINDS)
def test_fields_for_needs_min_field_count_retrievals(kind: str, tmp_path: Path) -> None:
    with make_toin(kind, tmp_path, min_field_count=2) as t:
        t.record_retrieval("search", "json", "status owner")
        t.record_retrieval("search", "json", "status")
        assert t.fields_for("search") == frozenset({"status"})
        assert t.stats()["search"].fields == {"status": 2, "owner": 1}  # stats shows all
        t.record_retrieval("search", "json", "owner")
        assert t.fields_for("search") == frozenset({"status", "owner"})
    with pytest.raises(ConfigError, match="min_field_count"):
        make_toin(kind, tmp_path, min_field_count=0)


def test_one_retrieval_learns_a_bounded_number_of_fields(toin: Toin) -> None:
    long_key = "k" * (MAX_FIELD_CHARS + 1)
    words = " ".join(f"word{i}" for i in range(MAX_FIELDS_PER_RETRIEVAL + 10))
    toin.record_retrieval("t", "json", words, fields=["zz", long_key, ""])
    learned = toin.fields_for("t")
    assert len(learned) == MAX_FIELDS_PER_RETRIEVAL
    assert "zz" in learned and long_key not in learned and "" not in learned
    assert "word0" in learned and f"word{MAX_FIELDS_PER_RETRIEVAL + 9}" not in learned


def test_wrong_arguments_are_input_errors(toin: Toin) -> None:
    with pytest.raises(InputError, match="tool must be a str or None"):
        toin.record_compression(3, "json")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="kind must be a non-empty str"):
        toin.record_compression("t", "")
    with pytest.raises(InputError, match="kind must be a non-empty str"):
        toin.record_retrieval("t", None, "q")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="fields must be an iterable of str"):
        toin.record_retrieval("t", "json", "q", fields="status")
    with pytest.raises(InputError, match="fields must be str"):
        toin.record_retrieval("t", "json", "q", fields=["ok", 7])  # type: ignore[list-item]
    with pytest.raises(InputError, match="query must be a str or None"):
        toin.record_retrieval("t", "json", 42)  # type: ignore[arg-type]
    assert toin.stats() == {}  # nothing half-recorded


# --- reset --------------------------------------------------------------------------------


def test_reset_one_tool_the_unknown_tool_or_everything(toin: Toin) -> None:
    for tool in ("a", "b", None):
        toin.record_compression(tool, "json")
        toin.record_retrieval(tool, "json", "status")
    toin.reset("a")
    assert list(toin.stats()) == [None, "b"]
    assert toin.fields_for("a") == frozenset() and toin.importance("a") == 0.0
    assert toin.fields_for("b") == frozenset({"status"})
    toin.reset("")  # "" names the unknown tool; reset() would forget everything
    assert list(toin.stats()) == ["b"]
    toin.record_compression("c", "log")
    toin.reset()
    assert toin.stats() == {} and toin.importance("b") == 0.0
    toin.record_compression("b", "json")  # still usable after a reset
    assert toin.stats()["b"].compressions == 1


# --- SQLite: persistence, processes, threads, files ---------------------------------------


def test_sqlite_keeps_everything_across_reopen(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "toin.db"
    with SQLiteToin(db) as t:
        t.record_compression("search", "json")
        t.record_retrieval("search", "json", "status", fields=["status"])
        before = t.stats()
    with SQLiteToin(db, min_field_count=2) as t:
        assert t.stats() == before
        assert t.stats()["search"].fields == {"status": 1}
        assert t.fields_for("search") == frozenset()  # min_field_count is per instance
        t.record_retrieval("search", "json", "status")
    with open_toin(f"sqlite:///{db}") as t:
        assert t.fields_for("search") == frozenset({"status"})
        assert t.importance("search") == pytest.approx(2 / 3)


def _record_from_process(path: str, worker: int, barrier: Any) -> None:
    toin = SQLiteToin(path)
    barrier.wait(timeout=60)
    for i in range(PER_PROC):
        toin.record_compression("shared", "json")
        toin.record_compression(f"w{worker}", "log")
        if i % 2 == 0:
            toin.record_retrieval("shared", "json", f"status w{worker}", fields=["id"])
    toin.close()


def test_processes_recording_at_once_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "toin.db"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(N_PROCS)
    procs = [
        ctx.Process(target=_record_from_process, args=(str(db), w, barrier)) for w in range(N_PROCS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * N_PROCS
    retrievals = N_PROCS * (PER_PROC // 2)
    with SQLiteToin(db) as t:
        stats = t.stats()
        assert list(stats) == ["shared", *(f"w{w}" for w in range(N_PROCS))]
        assert stats["shared"].compressions == N_PROCS * PER_PROC
        assert stats["shared"].retrievals == retrievals
        per_worker = {f"w{w}": PER_PROC // 2 for w in range(N_PROCS)}
        assert stats["shared"].fields == {"id": retrievals, "status": retrievals, **per_worker}
        for w in range(N_PROCS):
            assert (stats[f"w{w}"].compressions, stats[f"w{w}"].retrievals) == (PER_PROC, 0)


def test_threads_recording_at_once_lose_nothing(toin: Toin) -> None:
    n_threads, per_thread = 8, 50
    barrier = threading.Barrier(n_threads)

    def work(n: int) -> None:
        barrier.wait(timeout=30)
        for _ in range(per_thread):
            toin.record_compression("t", "json")
            toin.record_retrieval("t", "json", f"status thread{n}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    stats = toin.stats()["t"]
    assert (stats.compressions, stats.retrievals) == (n_threads * per_thread,) * 2
    assert stats.fields["status"] == n_threads * per_thread
    assert all(stats.fields[f"thread{n}"] == per_thread for n in range(n_threads))


def test_sqlite_shares_a_file_with_the_originals(tmp_path: Path) -> None:
    db = tmp_path / "headroom.db"
    with SQLiteOriginalStore(db) as store, SQLiteToin(db) as t:
        ref = store.put(ORDERS, tool="search")
        t.record_compression("search", "json")
        got = store.get(ref)
        assert got is not None and got.text == ORDERS
        assert t.stats()["search"].compressions == 1
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"toin_counts", "toin_fields", "toin_schema", "ccr_originals"} <= tables


def test_sqlite_bad_files_are_storage_errors_naming_them(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"this is not a sqlite database at all " * 200)
    with pytest.raises(StorageError, match=r"corrupt\.db"):
        SQLiteToin(bad)
    with pytest.raises(StorageError, match="is a directory"):
        SQLiteToin(tmp_path)
    with pytest.raises(ConfigError, match="file path is required"):
        SQLiteToin(":memory:")
    newer = tmp_path / "newer.db"
    SQLiteToin(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute("INSERT INTO toin_schema VALUES (99)")
    with pytest.raises(StorageError, match=r"newer\.db has schema version 99"):
        SQLiteToin(newer)
    closed = SQLiteToin(tmp_path / "closed.db")
    closed.close()
    with pytest.raises(StorageError, match="is closed"):
        closed.record_compression("t", "json")


# --- opening by URL, process default -------------------------------------------------------


def test_open_toin_by_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert toin_schemes() == ("memory", "postgres", "postgresql", "redis", "rediss", "sqlite")
    assert isinstance(open_toin(), MemoryToin)
    assert isinstance(open_toin("MEMORY://"), MemoryToin)
    monkeypatch.chdir(tmp_path)
    with open_toin("sqlite:///rel/t.db", min_field_count=3) as t:
        assert isinstance(t, SQLiteToin)
        assert t.path == tmp_path / "rel" / "t.db" and t.min_field_count == 3
    with open_toin(f"sqlite:///{tmp_path / 'abs.db'}") as t:
        assert isinstance(t, SQLiteToin) and t.path == tmp_path / "abs.db"
    for url, message in [
        ("mongodb://x", "unknown scheme; known schemes: memory://, postgres://, postgresql://"),
        ("toin.db", "unknown scheme"),
        ("sqlite://", "expected a path"),
        ("sqlite:///", "expected a path"),
        ("memory://somewhere", "takes no path"),
    ]:
        with pytest.raises(ConfigError, match=message):
            open_toin(url)
    with pytest.raises(ConfigError, match="expected a string"):
        open_toin(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="min_field_count"):
        open_toin("memory://", min_field_count=True)


def test_default_toin_is_memory_until_set(default_toin: MemoryToin, tmp_path: Path) -> None:
    assert get_toin() is default_toin
    with SQLiteToin(tmp_path / "t.db") as t:
        set_toin(t)
        assert get_toin() is t
    with pytest.raises(ConfigError, match="expected a Toin"):
        set_toin(object())  # type: ignore[arg-type]


# --- attach to ccr retrievals -------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_attach_learns_from_real_retrievals_and_detach_stops(
    toin: Toin, store_kind: str, tmp_path: Path
) -> None:
    store = (
        SQLiteOriginalStore(tmp_path / "originals.db")
        if store_kind == "sqlite"
        else MemoryOriginalStore()
    )
    with store:
        ref = store.put(ORDERS, tool="search", kind="json")
        log_ref = store.put("status ok\nstatus failed", tool="logs", kind="log")
        detach = attach(toin)
        try:
            answer = retrieve(ref, query="status", store=store)
            assert "2 of 3" not in answer and "3 of 3 items in .items" in answer
            retrieve(ref, query="customer tier gold", store=store)
            retrieve(log_ref, store=store)  # no query: counted, nothing learned
            retrieve("0" * 32, query="status", store=store)  # unknown ref: not a retrieval
        finally:
            detach()
        retrieve(ref, query="after detach", store=store)
        detach()  # twice is harmless
    assert toin.fields_for("search") == frozenset({"status", "customer", "tier", "gold"})
    stats = toin.stats()
    assert list(stats) == ["logs", "search"]
    assert stats["search"].retrievals == 2 and stats["search"].retrievals_by_kind == {"json": 2}
    assert stats["logs"].retrievals == 1 and stats["logs"].fields == {}
    assert "after" not in toin.fields_for("search")


def test_attach_records_original_key_spelling(toin: Toin) -> None:
    store = MemoryOriginalStore()
    ref = store.put(ORDERS, tool="search")
    detach = attach(toin)
    try:
        retrieve(ref, query="name statuscode", store=store)
    finally:
        detach()
    assert toin.stats()["search"].fields == {
        "Name": 1,
        "name": 1,
        "statusCode": 1,
        "statuscode": 1,
    }


def test_attach_without_toin_follows_the_process_default(default_toin: MemoryToin) -> None:
    store = MemoryOriginalStore()
    ref = store.put(ORDERS, tool="search")
    detach = attach()
    try:
        retrieve(ref, query="status", store=store)
        assert default_toin.fields_for("search") == frozenset({"status"})
        later = MemoryToin()
        set_toin(later)
        retrieve(ref, query="status", store=store)
        assert later.stats()["search"].retrievals == 1
        assert default_toin.stats()["search"].retrievals == 1
    finally:
        detach()
    with pytest.raises(TypeError, match="expected a Toin or None"):
        attach("memory://")  # type: ignore[arg-type]


def test_attached_listener_logs_instead_of_raising(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = SQLiteToin(tmp_path / "t.db")
    broken.close()
    store = MemoryOriginalStore()
    ref = store.put(ORDERS, tool="search")
    detach = attach(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="headroom_core.toin"):
            assert retrieve(ref, store=store) == ORDERS  # the model still gets its answer
    finally:
        detach()
    failures = [r for r in caplog.records if r.name == "headroom_core.toin"]
    assert len(failures) == 1
    assert ref in failures[0].getMessage() and "is closed" in str(failures[0].exc_info)

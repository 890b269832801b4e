"""Metrics records and stores: round trips, queries, summaries, concurrency, failures."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from headroom_core.errors import ConfigError, InputError, StorageError
from headroom_core.metrics import (
    JSONLMetricsStore,
    MemoryMetricsStore,
    MetricsStore,
    RequestMetrics,
    SQLiteMetricsStore,
    Summary,
    open_store,
)

T0 = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
KINDS = ("sqlite", "jsonl", "memory")
FILE_KINDS = ("sqlite", "jsonl")


def make_store(kind: str, tmp_path: Path) -> MetricsStore:
    if kind == "sqlite":
        return SQLiteMetricsStore(tmp_path / "m.db")
    if kind == "jsonl":
        return JSONLMetricsStore(tmp_path / "m.jsonl")
    return MemoryMetricsStore()


@pytest.fixture(params=(*KINDS, "postgresql"))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetricsStore]:
    if request.param == "postgresql":  # a real server (tests/_servers.py), fresh database
        opened = open_store(request.getfixturevalue("pg_url"))
    else:
        opened = make_store(request.param, tmp_path)
    with opened as s:
        yield s


def full_record(**overrides: object) -> RequestMetrics:
    """A record with every field set to a non-default value."""
    fields: dict[str, object] = {
        "request_id": "req-full",
        "timestamp": T0,
        "model": "gpt-4o",
        "mode": "optimize",
        "tokens_input_before": 12_345,
        "tokens_input_after": 2_345,
        "tokens_output": 321,
        "cached_tokens": 1_024,
        "cost_before": 0.123456789,
        "cost_after": 0.0234,
        "transforms_applied": ("smart_crusher", "rolling_window"),
        "waste_signals": {"json_bloat": 7, "repeated_tool_output": 2},
        "stream": True,
        "provider": "openai",
        "source": "langchain",
        "error": "timeout after 3 retries",
        "extra": {"user": "ünïcode ✓", "nested": {"a": [1, 2.5, None, True]}, "n": 2**40},
    }
    fields.update(overrides)
    return RequestMetrics(**fields)  # type: ignore[arg-type]


def rec(
    i: int,
    *,
    model: str = "m",
    mode: str = "audit",
    before: int = 100,
    after: int = 50,
    cost_before: float | None = None,
    cost_after: float | None = None,
    minutes: int | None = None,
    rid: str | None = None,
) -> RequestMetrics:
    return RequestMetrics(
        request_id=f"r{i}" if rid is None else rid,
        timestamp=T0 + timedelta(minutes=i if minutes is None else minutes),
        model=model,
        mode=mode,
        tokens_input_before=before,
        tokens_input_after=after,
        cost_before=cost_before,
        cost_after=cost_after,
    )


# --------------------------------------------------------------------------- records


def test_to_dict_from_dict_round_trip_is_exact() -> None:
    m = full_record()
    d = m.to_dict()
    assert d["timestamp"] == "2025-01-02T03:04:05.678901+00:00"
    assert d["transforms_applied"] == ["smart_crusher", "rolling_window"]
    back = RequestMetrics.from_dict(orjson.loads(orjson.dumps(d)))
    assert back == m
    assert back.to_dict() == d
    assert back.transforms_applied == ("smart_crusher", "rolling_window")
    assert back.timestamp.tzinfo == timezone.utc


def test_from_dict_accepts_z_suffix_and_defaults() -> None:
    m = RequestMetrics.from_dict(
        {
            "request_id": "x",
            "timestamp": "2025-01-02T03:04:05Z",
            "model": "m",
            "mode": "simulate",
            "tokens_input_before": 10,
            "tokens_input_after": 4,
        }
    )
    assert m.timestamp == datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert (m.transforms_applied, m.waste_signals, m.extra, m.stream) == ((), {}, {}, False)


def test_from_dict_rejects_unknown_and_missing_keys() -> None:
    d = full_record().to_dict()
    with pytest.raises(InputError, match="unknown keys \\['bogus'\\]"):
        RequestMetrics.from_dict({**d, "bogus": 1})
    del d["model"]
    with pytest.raises(InputError, match="missing keys \\['model'\\]"):
        RequestMetrics.from_dict(d)


def test_timestamp_is_normalised_to_utc_and_naive_is_rejected() -> None:
    plus_two = timezone(timedelta(hours=2))
    m = full_record(timestamp=datetime(2025, 1, 2, 5, 4, 5, 678901, tzinfo=plus_two))
    assert m.timestamp == T0
    assert m.timestamp.utcoffset() == timedelta(0)
    with pytest.raises(InputError, match="timezone-aware"):
        full_record(timestamp=datetime(2025, 1, 2, 3, 4, 5))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mode", "turbo", "RequestMetrics.mode"),
        ("tokens_input_before", -1, "RequestMetrics.tokens_input_before"),
        ("tokens_output", 1.5, "RequestMetrics.tokens_output"),
        ("cost_before", "free", "RequestMetrics.cost_before"),
        ("model", None, "RequestMetrics.model"),
    ],
)
def test_invalid_values_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        full_record(**{field: value})


def test_savings_properties() -> None:
    m = full_record(
        tokens_input_before=200, tokens_input_after=50, cost_before=1.0, cost_after=0.25
    )
    assert m.tokens_saved == 150
    assert m.savings_percent == 75.0
    assert m.cost_saved == 0.75
    grew = full_record(tokens_input_before=100, tokens_input_after=130, cost_after=None)
    assert grew.tokens_saved == 0
    assert grew.savings_percent == 0.0
    assert grew.cost_saved is None
    empty = full_record(tokens_input_before=0, tokens_input_after=0)
    assert empty.savings_percent == 0.0


def test_new_fills_id_and_timestamp() -> None:
    before = datetime.now(timezone.utc)
    a = RequestMetrics.new(model="m", mode="audit", tokens_input_before=5, tokens_input_after=5)
    b = RequestMetrics.new(
        model="m", mode="off", tokens_input_before=5, tokens_input_after=3, waste_signals={"x": 1}
    )
    after = datetime.now(timezone.utc)
    assert len(a.request_id) == 32
    assert int(a.request_id, 16) >= 0
    assert a.request_id != b.request_id
    assert before <= a.timestamp <= b.timestamp <= after
    assert a.timestamp.tzinfo == timezone.utc
    assert b.waste_signals == {"x": 1}


def test_records_are_frozen_and_hashable() -> None:
    m = full_record()
    with pytest.raises(AttributeError):
        m.model = "other"  # type: ignore[misc]
    assert hash(m) == hash(full_record())
    assert type(m.waste_signals) is dict


# --------------------------------------------------------------------------- stores


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_round_trip_every_field_through_the_file(kind: str, tmp_path: Path) -> None:
    m = full_record()
    minimal = rec(1)
    with make_store(kind, tmp_path) as s:
        s.record(m)
        s.record(minimal)
    with make_store(kind, tmp_path) as s:  # fresh instance: read back from disk
        got = s.get_metrics()
    assert got == [minimal, m]
    assert got[1].to_dict() == m.to_dict()
    assert got[1].transforms_applied == ("smart_crusher", "rolling_window")
    assert got[1].cost_before == 0.123456789
    assert got[1].extra["n"] == 2**40
    assert got[0].tokens_output is None and got[0].cost_before is None and got[0].error is None


def test_every_store_satisfies_the_protocol(store: MetricsStore) -> None:
    assert isinstance(store, MetricsStore)
    assert store.get_metrics() == []
    assert store.get_summary() == Summary.empty()


def ids(ms: list[RequestMetrics]) -> list[str]:
    return [m.request_id for m in ms]


def test_get_metrics_newest_first_limit_since_model(store: MetricsStore) -> None:
    # Recorded out of order on purpose: order comes from timestamps.
    for i in (3, 0, 4, 1, 2, 5):
        store.record(rec(i, model="a" if i % 2 == 0 else "b"))
    assert ids(store.get_metrics()) == ["r5", "r4", "r3", "r2", "r1", "r0"]
    assert ids(store.get_metrics(3)) == ["r5", "r4", "r3"]
    assert ids(store.get_metrics(None)) == ["r5", "r4", "r3", "r2", "r1", "r0"]
    assert store.get_metrics(0) == []
    since = T0 + timedelta(minutes=2)  # inclusive
    assert ids(store.get_metrics(since=since)) == ["r5", "r4", "r3", "r2"]
    assert ids(store.get_metrics(model="a")) == ["r4", "r2", "r0"]
    assert ids(store.get_metrics(2, since=since, model="b")) == ["r5", "r3"]
    assert store.get_metrics(model="nope") == []


def test_same_timestamp_later_record_first(store: MetricsStore) -> None:
    for i in range(3):
        store.record(rec(i, minutes=0))
    assert ids(store.get_metrics()) == ["r2", "r1", "r0"]


def test_bad_queries_raise(store: MetricsStore) -> None:
    with pytest.raises(InputError, match="limit"):
        store.get_metrics(-1)
    with pytest.raises(InputError, match="since"):
        store.get_metrics(since=datetime(2025, 1, 1))
    with pytest.raises(InputError, match="since"):
        store.get_summary(since=datetime(2025, 1, 1))


def test_summary_matches_hand_computed_values(store: MetricsStore) -> None:
    store.record(rec(0, mode="audit", before=1000, after=1000, cost_before=0.01, cost_after=0.01))
    store.record(
        rec(1, mode="optimize", before=1000, after=400, cost_before=0.010, cost_after=0.004)
    )
    store.record(rec(2, mode="optimize", before=500, after=600))  # grew: saves 0
    store.record(rec(3, mode="simulate", before=2000, after=500, cost_before=0.02))
    s = store.get_summary()
    # Every record is counted; tokens, costs and savings only of what was sent (issue 14: a
    # simulate record is a preview, nothing was sent or saved).
    assert s.requests == 4
    assert s.total_tokens_before == 2500
    assert s.total_tokens_after == 2000
    assert s.total_tokens_saved == 600  # 0 + 600 + 0, the preview's 1500 not included
    assert s.savings_percent == pytest.approx(600 / 2500 * 100)
    assert s.total_cost_before == pytest.approx(0.02)
    assert s.total_cost_after == pytest.approx(0.014)
    assert s.cost_saved == pytest.approx(0.006)  # only record 1 has both costs
    assert s.by_mode == {"audit": 1, "optimize": 2, "simulate": 1}
    assert s.first_timestamp == T0
    assert s.last_timestamp == T0 + timedelta(minutes=3)

    late = store.get_summary(since=T0 + timedelta(minutes=2))
    assert (late.requests, late.total_tokens_before, late.total_tokens_after) == (2, 500, 600)
    assert late.total_tokens_saved == 0
    assert late.savings_percent == 0.0
    assert late.total_cost_before == 0.0
    assert (late.total_cost_after, late.cost_saved) == (0.0, 0.0)
    assert late.by_mode == {"optimize": 1, "simulate": 1}
    assert late.first_timestamp == T0 + timedelta(minutes=2)

    assert store.get_summary(since=T0 + timedelta(days=1)) == Summary.empty()


def test_unserialisable_extra_is_rejected_and_nothing_written(store: MetricsStore) -> None:
    with pytest.raises(InputError, match="JSON-serialisable"):
        store.record(full_record(extra={"obj": object()}))
    assert store.get_metrics() == []


def test_closed_store_raises_and_close_is_idempotent(store: MetricsStore) -> None:
    store.close()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.record(rec(0))
    with pytest.raises(StorageError, match="closed"):
        store.get_metrics()


# --------------------------------------------------------------------------- concurrency

N_PROCS, PER_PROC = 4, 200
N_THREADS, PER_THREAD = 8, 100


def _write_from_process(db: str, jsonl: str, worker: int, barrier: threading.Barrier) -> None:
    """Child process body: open both stores, wait for the others, write PER_PROC rows each."""
    with SQLiteMetricsStore(db) as sq, JSONLMetricsStore(jsonl) as js:
        barrier.wait(timeout=60)
        for i in range(PER_PROC):
            m = rec(i, model=f"w{worker}", rid=f"p{worker}-{i}")
            sq.record(m)
            js.record(m)


def _assert_all_there(s: MetricsStore, expected: set[str]) -> None:
    got = s.get_metrics(None)
    assert len(got) == len(expected)
    assert {m.request_id for m in got} == expected
    assert s.get_summary().requests == len(expected)


def test_processes_writing_at_once_lose_no_row(tmp_path: Path) -> None:
    db, jsonl = tmp_path / "shared" / "m.db", tmp_path / "shared" / "m.jsonl"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(N_PROCS)
    procs = [
        ctx.Process(target=_write_from_process, args=(str(db), str(jsonl), w, barrier))
        for w in range(N_PROCS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * N_PROCS
    expected = {f"p{w}-{i}" for w in range(N_PROCS) for i in range(PER_PROC)}
    with SQLiteMetricsStore(db) as sq, JSONLMetricsStore(jsonl) as js:
        _assert_all_there(sq, expected)
        _assert_all_there(js, expected)
    assert len(jsonl.read_bytes().splitlines()) == N_PROCS * PER_PROC


@pytest.mark.parametrize("kind", KINDS)
def test_threads_writing_at_once_lose_no_row(kind: str, tmp_path: Path) -> None:
    barrier = threading.Barrier(N_THREADS)
    errors: list[BaseException] = []

    def work(s: MetricsStore, t: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(PER_THREAD):
                s.record(rec(i, rid=f"t{t}-{i}"))
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    with make_store(kind, tmp_path) as s:
        threads = [threading.Thread(target=work, args=(s, t)) for t in range(N_THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        assert errors == []
        _assert_all_there(s, {f"t{t}-{i}" for t in range(N_THREADS) for i in range(PER_THREAD)})


@pytest.mark.skipif(os.name != "posix", reason="fcntl.flock is POSIX only")
def test_jsonl_append_waits_for_the_file_lock(tmp_path: Path) -> None:
    """Another holder of LOCK_EX (a second open file, as another process would have) blocks
    the append until it lets go; the multi-process test alone cannot show this on Linux,
    where small O_APPEND writes rarely interleave even without a lock."""
    import fcntl

    path = tmp_path / "m.jsonl"
    with JSONLMetricsStore(path) as s:
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            writer = threading.Thread(target=s.record, args=(rec(0),))
            writer.start()
            writer.join(timeout=0.3)
            assert writer.is_alive()
            assert path.read_bytes() == b""
            fcntl.flock(fd, fcntl.LOCK_UN)
            writer.join(timeout=10)
            assert not writer.is_alive()
        finally:
            os.close(fd)
        assert s.get_metrics() == [rec(0)]


# --------------------------------------------------------------------------- failures


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not a sqlite database at all\n" * 200)
    with pytest.raises(StorageError, match=str(bad)) as info:
        SQLiteMetricsStore(bad)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    with pytest.raises(StorageError, match=str(bad)):
        open_store(f"sqlite:///{bad}")


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_directory_instead_of_file(kind: str, tmp_path: Path) -> None:
    target = tmp_path / "a_directory"
    target.mkdir()
    cls = SQLiteMetricsStore if kind == "sqlite" else JSONLMetricsStore
    with pytest.raises(StorageError, match=str(target)):
        cls(target)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
@pytest.mark.parametrize("kind", FILE_KINDS)
def test_no_permission(kind: str, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    cls = SQLiteMetricsStore if kind == "sqlite" else JSONLMetricsStore
    with pytest.raises(StorageError, match=str(locked)):
        cls(locked / "sub" / "m.store")


def test_sqlite_newer_schema_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StorageError, match="schema version 99"):
        SQLiteMetricsStore(db)


def test_sqlite_sets_wal_and_schema_version(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    SQLiteMetricsStore(db).close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(request_metrics)")}
        assert "ix_request_metrics_ts" in indexes
    finally:
        conn.close()


@pytest.mark.parametrize(
    "bad_line",
    [b"{not json", b'{"request_id": "x"}', b"[1, 2]", b'"just a string"'],
)
def test_jsonl_corrupt_line_is_skipped_counted_and_logged(
    tmp_path: Path, bad_line: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "m.jsonl"
    with JSONLMetricsStore(path) as s:
        s.record(rec(0))
        s.record(rec(1))
    with path.open("ab") as f:
        f.write(bad_line + b"\n")
    with JSONLMetricsStore(path) as s:
        s.record(rec(3))
        assert [m.request_id for m in s.get_metrics()] == [rec(i).request_id for i in (3, 1, 0)]
        summary = s.get_summary()
        assert (summary.requests, summary.skipped_records) == (3, 1)
    assert f"{path}: skipped 1 line(s)" in caplog.text and "line 3" in caplog.text


def test_jsonl_torn_last_line_is_skipped_and_next_record_kept_whole(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    good = orjson.dumps(rec(0).to_dict())
    path.write_bytes(good + b"\n" + good[:20])  # a writer died mid-line (disk full)
    with JSONLMetricsStore(path) as s:
        s.record(rec(1))
        assert [m.request_id for m in s.get_metrics()] == [rec(1).request_id, rec(0).request_id]
        assert s.get_summary().skipped_records == 1
        s.record(rec(2))  # later appends stay readable for good
        assert s.get_summary().requests == 3
    lines = path.read_bytes().splitlines()
    assert len(lines) == 4
    assert RequestMetrics.from_dict(orjson.loads(lines[2])) == rec(1)


def test_a_clean_file_reports_no_skipped_records(tmp_path: Path) -> None:
    with JSONLMetricsStore(tmp_path / "m.jsonl") as s:
        s.record(rec(0))
        assert s.get_summary().skipped_records == 0


def test_jsonl_missing_file_after_open_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    with JSONLMetricsStore(path) as s:
        path.unlink()
        assert s.get_metrics() == []
        assert s.get_summary().requests == 0


# --------------------------------------------------------------------------- open_store


def test_open_store_relative_and_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel/dir/m.db") as s:
        assert isinstance(s, SQLiteMetricsStore)
        s.record(rec(0))
    assert (tmp_path / "rel" / "dir" / "m.db").is_file()
    absolute = tmp_path / "abs" / "x" / "m.jsonl"
    with open_store(f"jsonl:///{absolute}") as s:  # f"///" + "/tmp/..." = four slashes
        assert isinstance(s, JSONLMetricsStore)
        s.record(rec(0))
    assert absolute.is_file()
    with open_store("memory://") as s:
        assert isinstance(s, MemoryMetricsStore)
    with open_store() as s:
        assert isinstance(s, SQLiteMetricsStore)
    assert (tmp_path / "headroom.db").is_file()


@pytest.mark.parametrize(
    "url", ["mysql://host/db", "headroom.db", "SQLITE-ish:///x", "", "s3:///bucket/key"]
)
def test_unknown_scheme_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(url)
    message = str(info.value)
    assert repr(url) in message
    assert "jsonl://, memory://, postgres://, postgresql://, sqlite://" in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite://relative.db", "jsonl:///", "memory://x"])
def test_malformed_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="metrics store URL"):
        open_store(url)

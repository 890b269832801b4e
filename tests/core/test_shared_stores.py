"""PostgreSQL and Redis stores shared across processes, on real throwaway servers
(tests/_servers.py): nothing lost, refs readable everywhere, eviction, and faults (a
server down at start, stopped, killed or paused mid-run)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from headroom_core import compress
from headroom_core.ccr import (
    get_default_store,
    open_original_store,
    retrieve,
    set_default_store,
)
from headroom_core.errors import ConfigError, StorageError
from headroom_core.metrics import RequestMetrics, open_store, store_stats
from headroom_core.toin import get_toin, open_toin, set_toin
from tests._servers import PostgresServer, RedisServer, free_port, unavailable

pytest.importorskip("psycopg", reason="needs the postgres extra")
pytest.importorskip("redis", reason="needs the redis extra")

T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)
N_PROCS, PER_PROC = 4, 2_000
SHARED = ("redis", "postgresql")


def url_for(request: pytest.FixtureRequest, kind: str, query: str = "") -> str:
    url = str(request.getfixturevalue("redis_url" if kind == "redis" else "pg_url"))
    return url + (f"&{query}" if query else "")


def row(worker: int, i: int, **kw: Any) -> RequestMetrics:
    return RequestMetrics(
        request_id=f"w{worker}-{i}",
        timestamp=T0 + timedelta(milliseconds=i),
        model="gpt-4o",
        mode="optimize",
        tokens_input_before=100 + i,
        tokens_input_after=50,
        **kw,
    )


def big_tool_output(n: int = 300) -> str:
    rows = [
        {"id": i, "status": "ok", "region": "eu-west-1", "note": f"naïve ✓ {i}"} for i in range(n)
    ]
    return json.dumps(rows, indent=2, ensure_ascii=False)


def agent_request(tool_output: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Which requests failed?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "query", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": tool_output},
    ]


def marker_ref(messages: list[dict[str, Any]]) -> str:
    text = messages[-1]["content"]
    found = json.loads(text)
    for item in found if isinstance(found, list) else [found]:
        if isinstance(item, dict) and "ref" in item:
            return str(item["ref"])
    raise AssertionError(f"no marker in {text[:300]}")


@pytest.fixture
def fresh_defaults() -> Iterator[None]:
    store, toin = get_default_store(), get_toin()
    try:
        yield
    finally:
        set_default_store(store)
        set_toin(toin)


# --------------------------------------------------------------------------- processes


def _write_metrics(url: str, worker: int, barrier: Any) -> None:
    with open_store(url) as store:
        barrier.wait(timeout=60)
        for i in range(PER_PROC):
            store.record(row(worker, i))


def test_four_processes_write_2000_rows_each_and_none_is_lost(pg_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(N_PROCS)
    procs = [ctx.Process(target=_write_metrics, args=(pg_url, w, barrier)) for w in range(N_PROCS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * N_PROCS
    with open_store(pg_url) as store:
        got = store.get_metrics(None)
        summary = store.get_summary()
    assert len(got) == N_PROCS * PER_PROC
    assert {m.request_id for m in got} == {
        f"w{w}-{i}" for w in range(N_PROCS) for i in range(PER_PROC)
    }
    assert summary.requests == N_PROCS * PER_PROC
    assert summary.total_tokens_before == N_PROCS * sum(100 + i for i in range(PER_PROC))
    assert summary.dropped_records == 0


def test_a_row_recorded_after_an_idle_writer_is_written_without_a_flush(pg_url: str) -> None:
    """The background writer sleeps while its queue is empty; the next row must wake it (a
    row once waited until someone flushed: another process never saw it)."""
    psycopg = pytest.importorskip("psycopg")

    def rows_in_the_database() -> int:
        with psycopg.connect(pg_url.split("?")[0]) as conn:
            return int(conn.execute("SELECT count(*) FROM headroom_request_metrics").fetchone()[0])

    def wait_for(n: int) -> int:
        deadline = time.monotonic() + 30
        while (got := rows_in_the_database()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return got

    with open_store(pg_url) as store:
        store.record(row(0, 0))
        assert wait_for(1) == 1
        time.sleep(0.3)  # the writer is idle again
        store.record(row(0, 1))
        assert wait_for(2) == 2  # no flush, no summary: the writer woke for it


def _compress_in_child(originals_url: str, toin_url: str, out: Any) -> None:
    set_default_store(open_original_store(originals_url))
    set_toin(open_toin(toin_url))
    result = compress(agent_request(big_tool_output()), query="Which requests failed?")
    get_toin().record_retrieval("query", "smart_crusher", "region status")
    out.put(result.messages)
    get_default_store().close()  # type: ignore[attr-defined]
    get_toin().close()


@pytest.mark.parametrize("kind", SHARED)
def test_a_ref_made_in_one_process_is_retrieved_exactly_in_another(
    request: pytest.FixtureRequest, kind: str
) -> None:
    url = url_for(request, kind)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_compress_in_child, args=(url, url, out))
    child.start()
    messages = out.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    ref = marker_ref(messages)
    with open_original_store(url) as store:
        assert retrieve(ref, store=store) == big_tool_output()  # byte for byte
        found = retrieve(ref, "naïve 299", store=store)
        assert found.startswith("[headroom: 1 of 300 items match")
        original = store.get(ref)
        assert original is not None and (original.tool, original.kind) == ("query", "json")
    with open_toin(url) as toin:  # what the child learned is here too
        assert toin.fields_for("query") == frozenset({"region", "status"})
        assert toin.stats()["query"].compressions == 1


# --------------------------------------------------------------------------- bounds


def test_postgres_originals_evict_the_least_recently_used(pg_url: str) -> None:
    with open_original_store(pg_url + "&max_entries=3") as s:
        a, b, c = (s.put(t) for t in ("a", "b", "c"))
        assert s.get(a) is not None  # order of use: b, c, a
        d = s.put("d")  # evicts b
        assert b not in s and all(r in s for r in (a, c, d)) and len(s) == 3
        assert s.put("c") == c  # a use -> a, d, c
        s.put("e")  # evicts a
        assert a not in s and len(s) == 3
        assert retrieve(a, store=s).startswith(f"[headroom: no original stored under ref '{a}'")
    with (
        open_original_store(pg_url + "&max_bytes=10") as s,
        pytest.raises(StorageError, match="larger than"),
    ):
        s.put("x" * 11)


@pytest.mark.parametrize("kind", SHARED)
def test_ttl_forgets_an_original_unused_for_that_long(
    request: pytest.FixtureRequest, kind: str
) -> None:
    with open_original_store(url_for(request, kind, "ttl_s=1")) as s:
        ref = s.put("short-lived")
        assert s.get(ref) is not None
        time.sleep(2.2)
        assert s.get(ref) is None
        assert "no original stored" in retrieve(ref, store=s)


def test_redis_evicts_by_its_own_lru_policy_and_the_model_is_told() -> None:
    try:
        server = RedisServer(maxmemory="4mb")
    except FileNotFoundError as exc:
        unavailable(str(exc))
    try:
        with open_original_store(server.url(0)) as s:
            texts = [os.urandom(40_000).hex() for _ in range(300)]  # incompressible, ~24 MB
            refs = [s.put(t) for t in texts]
            assert len(s) < 300  # the server made room
            assert s.get(refs[-1]) is not None and retrieve(refs[-1], store=s) == texts[-1]
            gone = next(r for r in refs if r not in s)
            assert retrieve(gone, store=s).startswith(
                f"[headroom: no original stored under ref '{gone}'; it may have been evicted"
            )
    finally:
        server.close()


def test_options_come_from_the_url_and_a_bad_one_names_itself(pg_url: str) -> None:
    with pytest.raises(ConfigError, match="timeout_ms"):
        open_store(pg_url + "&timeout_ms=0")
    with pytest.raises(ConfigError, match="buffer"):
        open_original_store("redis://127.0.0.1:1/0?buffer=lots")
    with open_store(pg_url + "&timeout_ms=20&buffer=7&application_name=x") as s:
        assert s.database.options.timeout_ms == 20 and s.database.options.buffer == 7
    secret = "postgresql://u:hunter2@127.0.0.1:1/db"
    with open_store(secret) as s:
        assert "hunter2" not in repr(s) and "***" in repr(s)


# --------------------------------------------------------------------------- faults


def written(*stores: Any, within: float = 60.0) -> bool:
    """Wait until every store has written what it buffered (a flush returns at the first
    failed write, and the first writes after a restart may fail while pools reconnect)."""
    deadline = time.monotonic() + within
    pending = list(stores)
    while pending and time.monotonic() < deadline:
        pending = [s for s in pending if not s.flush(1.0)]
        if pending:
            time.sleep(0.2)
    return not pending


def dead_port_url(scheme: str) -> str:
    port = free_port()  # nothing listens there
    if scheme == "redis":
        return f"redis://127.0.0.1:{port}/0?retry_s=0.2"
    return f"postgresql://headroom@127.0.0.1:{port}/x?retry_s=0.2"


def test_stores_down_at_start_never_raise_into_compress_or_record(
    fresh_defaults: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="headroom_core.stores")
    set_default_store(open_original_store(dead_port_url("redis")))
    set_toin(open_toin(dead_port_url("postgresql")))
    metrics = open_store(dead_port_url("postgresql"))
    start = time.monotonic()
    for i in range(20):
        result = compress(agent_request(big_tool_output()), query="failed")
        metrics.record(row(0, i))
    elapsed = time.monotonic() - start
    assert result.failures == ()
    ref = marker_ref(result.messages)
    assert retrieve(ref) == big_tool_output()  # kept in this process while Redis is down
    originals = store_stats(get_default_store())
    assert originals is not None and not originals.available and originals.spilled == 1
    assert get_toin().fields_for("query") == frozenset()
    toin_stats = get_toin().store_stats()  # type: ignore[attr-defined]
    assert toin_stats.pending >= 1 and not toin_stats.available
    assert metrics.store_stats().pending == 20  # type: ignore[attr-defined]
    with pytest.raises(StorageError):
        metrics.get_summary()
    # A hang guard, not a benchmark (see bench_stores.py): 20 requests against three dead
    # stores finish far inside what 20 connection timeouts would take.
    assert elapsed < 20
    assert any("is unavailable" in r.getMessage() for r in caplog.records)
    metrics.close()
    assert metrics.store_stats().dropped == 20  # type: ignore[attr-defined]
    get_default_store().close()  # type: ignore[attr-defined]
    get_toin().close()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except (FileNotFoundError, OSError) as exc:
        unavailable(f"cannot start a throwaway PostgreSQL: {exc}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
    except FileNotFoundError as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        server.close()


def test_postgres_stopped_mid_run_rows_wait_then_arrive(
    own_postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="headroom_core.stores")
    url = own_postgres.create_database("faults") + "?retry_s=0.2"
    with (
        open_store(url) as store,
        open_store(url + "&buffer=50") as small,
        open_original_store(url) as originals,
    ):
        for i in range(100):
            store.record(row(0, i))
        assert store.flush(30)
        own_postgres.stop()
        for i in range(100, 400):  # requests keep flowing
            store.record(row(0, i))
        for i in range(80):
            small.record(row(1, i))
        ref = originals.put("cut while PostgreSQL was down")
        assert originals.get(ref) is not None  # from this process's spill
        assert not store.flush(5)  # cannot be written now
        stats = store.store_stats()  # type: ignore[attr-defined]
        assert (stats.available, stats.pending, stats.dropped) == (False, 300, 0)
        assert small.store_stats().dropped == 30  # type: ignore[attr-defined]
        assert any("rows are waiting to be written" in r.getMessage() for r in caplog.records)
        with pytest.raises(StorageError):
            store.get_summary()
        own_postgres.start()
        assert written(store, small, originals)
        summary = store.get_summary()
        assert summary.requests == 450  # 400 + the 50 the small buffer kept
        assert small.get_summary().dropped_records == 30
        assert store.store_stats().available  # type: ignore[attr-defined]
        assert any("is available again" in r.getMessage() for r in caplog.records)
    ids = {m.request_id for m in open_store(url).get_metrics(None, model="gpt-4o")}
    assert {f"w0-{i}" for i in range(400)} <= ids
    with open_original_store(url) as other:  # written through once the server was back
        assert retrieve(ref, store=other) == "cut while PostgreSQL was down"


def test_redis_killed_mid_run_originals_and_counts_wait_then_arrive(
    own_redis: RedisServer, fresh_defaults: None
) -> None:
    url = own_redis.url(0) + "?retry_s=0.2"
    store = open_original_store(url)
    toin = open_toin(url)
    before = store.put("stored before the crash")
    toin.record_compression("search", "smart_crusher")
    own_redis.kill()
    during = store.put("cut while Redis was down")
    toin.record_retrieval("search", "smart_crusher", "status")
    assert retrieve(during, store=store) == "cut while Redis was down"  # spilled here
    message = retrieve(before, store=store)
    assert message.startswith("[headroom: the store of originals could not be read")
    assert toin.fields_for("search") == frozenset()  # never read: nothing to fall back on
    own_redis.start()
    assert written(store, toin)
    with open_original_store(url) as other, open_toin(url) as other_toin:
        assert retrieve(during, store=other) == "cut while Redis was down"
        # the server restarted empty (no persistence): what was stored before is gone, and
        # the model is told so
        assert "no original stored" in retrieve(before, store=other)
        assert other_toin.fields_for("search") == frozenset({"status"})
    assert store_stats(store).spilled == 1  # type: ignore[union-attr]
    store.close()  # type: ignore[attr-defined]
    toin.close()


def _pause(pids: list[int]) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)


def _resume(pids: list[int]) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGCONT)


def test_a_paused_server_never_holds_a_request_for_long(
    own_postgres: PostgresServer, own_redis: RedisServer
) -> None:
    pg = own_postgres.create_database("paused") + "?retry_s=5"
    stores = [open_original_store(pg), open_original_store(own_redis.url(0) + "?retry_s=5")]
    for s in stores:
        s.put("warm")  # connections open
    pids = [*own_postgres.pids(), own_redis.proc.pid]  # type: ignore[union-attr]
    _pause(pids)
    try:
        start = time.monotonic()
        refs = [s.put(f"during the pause {i}") for s in stores for i in range(20)]
        elapsed = time.monotonic() - start
    finally:
        _resume(pids)
    # Hang guard: 40 puts against two frozen servers (the first of each waits timeout_ms,
    # 50 ms, the rest fail at once) finish in well under a second on any machine.
    assert elapsed < 5
    assert all(stores[i // 20].get(r) is not None for i, r in enumerate(refs))
    assert written(*stores)
    for s in stores:
        s.close()  # type: ignore[attr-defined]


def test_a_redis_toin_event_sent_twice_counts_once(redis_url: str) -> None:
    """A count whose first try timed out may have landed; sending it again is safe."""
    with open_toin(redis_url) as toin:
        backend = toin._backend  # type: ignore[attr-defined]
        event = ("e1", "search", "smart_crusher", True, ("status",))
        backend.add([event], bounded=True)
        backend.add([event, ("e2", "search", "smart_crusher", False, ())], bounded=False)
        stats = toin.stats()["search"]
        assert (stats.compressions, stats.retrievals, stats.fields) == (1, 1, {"status": 1})

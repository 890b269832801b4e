"""Stores: metrics rows/s, originals refs/s, and what each adds per request (p50/p99).

    .venv/bin/python tests/benchmarks/bench_stores.py [--rows 20000] [--refs 2000]

Starts a throwaway PostgreSQL (Debian's initdb/pg_ctl) and redis-server on 127.0.0.1
(tests/_servers.py), then for SQLite, PostgreSQL and Redis (and the in-memory stores for
reference) measures, in this process:

- rows/s: ``--rows`` metric records recorded back to back, from the first ``record()``
  until the store holds them (PostgreSQL: until the background writer has flushed them;
  its buffer is sized to hold the whole burst, ``?buffer=ROWS``, so the rate is the
  writer's; with the default 10,000 a burst beyond what the writer drains within
  ``timeout_ms`` is dropped and counted, which the "rows dropped" column would show);
- added per request: ``record()`` of one row, as seen by the request (p50/p99 over the
  rows above);
- refs/s and added per request: ``put()`` of ``--refs`` distinct ~8 KB JSON originals,
  ``put()`` of an original already stored (every later turn of an agent re-cuts the same
  outputs), and ``get()``;
- the same request-path calls while the server is down (stopped PostgreSQL, killed
  Redis): what a request pays when the store is gone (bounded by ``timeout_ms``, 50 ms, on
  the first call, then failing fast).

Redis keeps no metrics (PostgreSQL or SQLite do), so its rows columns are empty.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from headroom_core.ccr import open_original_store  # noqa: E402
from headroom_core.metrics import RequestMetrics, open_store  # noqa: E402
from tests._servers import PostgresServer, RedisServer  # noqa: E402


def _record(i: int) -> RequestMetrics:
    return RequestMetrics(
        request_id=f"r{i}",
        timestamp=datetime.now(timezone.utc),
        model="gpt-4o",
        mode="optimize",
        tokens_input_before=12_000 + i,
        tokens_input_after=4_000,
        cost_before=0.03,
        cost_after=0.01,
        transforms_applied=("tool_outputs", "smart_crusher:1"),
        waste_signals={"json_bloat_tokens": 900, "whitespace_tokens": 40},
        provider="openai",
        source="client",
        extra={"prefix_hash": "a" * 16, "prefix_tokens": 2048, "preview": "list the files"},
    )


def _original(i: int) -> str:
    rows = [{"id": i * 100 + j, "status": "ok", "region": "eu-west-1", "n": j} for j in range(100)]
    return json.dumps(rows, indent=1)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _timed(calls: list[Callable[[], Any]]) -> list[float]:
    out = []
    for call in calls:
        t = time.perf_counter()
        call()
        out.append((time.perf_counter() - t) * 1000)
    return out


def bench_rows(url: str, n: int) -> tuple[float, list[float], int]:
    """(rows/s, per-record ms, rows dropped)."""
    with open_store(url) as store:
        records = [_record(i) for i in range(n)]
        start = time.perf_counter()
        per = _timed([lambda m=m: store.record(m) for m in records])
        flush = getattr(store, "flush", None)
        if flush is not None:
            flush(120)
        elapsed = time.perf_counter() - start
        kept = store.get_summary().requests
    return kept / elapsed, per, n - kept


def bench_refs(url: str, n: int) -> dict[str, Any]:
    texts = [_original(i) for i in range(n)]
    with open_original_store(url) as store:
        store.put("warm-up")
        start = time.perf_counter()
        put = _timed([lambda t=t: store.put(t, tool="query") for t in texts])
        rate = n / (time.perf_counter() - start)
        refs = [store.put(t) for t in texts[:200]]
        again = _timed([lambda t=t: store.put(t, tool="query") for t in texts[:500]])
        got = _timed([lambda r=r: store.get(r) for r in refs * 3])
    return {"rate": rate, "put": put, "again": again, "get": got}


def bench_down(metrics_url: str, originals_url: str, stop: Callable[[], None]) -> dict[str, Any]:
    with open_store(metrics_url) as metrics, open_original_store(originals_url) as originals:
        metrics.record(_record(0))
        originals.put("warm-up")
        stop()
        record = _timed([lambda i=i: metrics.record(_record(i)) for i in range(1, 500)])
        put = _timed([lambda i=i: originals.put(_original(i)) for i in range(200)])
    return {"record": record, "put": put}


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} / {_pct(values, 0.99):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--refs", type=int, default=2_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-stores-"))
    pg, redis = PostgresServer(), RedisServer()
    try:
        pg_url = pg.create_database("bench")
        redis_url = redis.url(0)
        table = []
        for name, metrics_url, originals_url in [
            ("memory", "memory://", "memory://"),
            ("SQLite", f"sqlite:///{tmp / 'm.db'}", f"sqlite:///{tmp / 'o.db'}"),
            ("PostgreSQL", pg_url + f"?buffer={args.rows}", pg_url),
            ("Redis", None, redis_url),
        ]:
            rows = bench_rows(metrics_url, args.rows) if metrics_url else None
            refs = bench_refs(originals_url, args.refs)
            table.append((name, rows, refs))
        down_pg = bench_down(
            pg.create_database("down"), pg.url("down") + "?spill=5000", lambda: pg.stop("fast")
        )
        down_redis = bench_down(f"sqlite:///{tmp / 'd.db'}", redis_url + "?spill=5000", redis.kill)
    finally:
        pg.close()
        redis.close()
    print(f"rows: {args.rows:,} metric records; refs: {args.refs:,} originals of ~8 KB JSON")
    print("| store | rows/s | rows dropped | record() p50 / p99 ms | refs/s (put) "
          "| put() p50 / p99 ms | put() stored text p50 / p99 ms | get() p50 / p99 ms |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, rows, refs in table:
        rate = f"{rows[0]:,.0f}" if rows else "-"
        rec = _ms(rows[1]) if rows else "-"
        dropped = f"{rows[2]:,}" if rows else "-"
        print(
            f"| {name} | {rate} | {dropped} | {rec} | {refs['rate']:,.0f} | {_ms(refs['put'])} | "
            f"{_ms(refs['again'])} | {_ms(refs['get'])} |"
        )
    print()
    print("| server down | record() p50 / p99 ms | put() p50 / p99 ms | slowest put() ms |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| PostgreSQL stopped | {_ms(down_pg['record'])} | {_ms(down_pg['put'])} | "
        f"{max(down_pg['put']):.1f} |"
    )
    print(
        f"| Redis killed (metrics in SQLite) | {_ms(down_redis['record'])} | "
        f"{_ms(down_redis['put'])} | {max(down_redis['put']):.1f} |"
    )


if __name__ == "__main__":
    main()

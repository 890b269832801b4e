"""The Headroom server under load, beside the fake provider it fronts, in one run.

Processes: the fake provider (tests/integrations/provider_server.py, stdlib threads) in
one subprocess, ``headroom serve`` in another, this script as the load generator (asyncio
+ httpx, every phase bounded in requests and in time). Everything on 127.0.0.1.

1. Added latency: one connection, requests in turn to the provider directly and through the
   server (interleaved, so drift hits both), for a ~2k-token and the largest ~50k-token
   request in the data (real JSON tool outputs from ../shared/data); p50 / p99 of each and
   the difference, in ``off`` mode (the proxy alone) and ``optimize`` (the default:
   compress, record, forward a smaller body).
2. Throughput at 64 concurrent connections, the 2k-token request, optimize: the provider
   directly, then the server with 1 and with 4 workers; errors counted (any non-200).
3. RSS of a one-worker server over many requests (default 20,000; the issue's 100,000 is
   ``--rss-requests 100000``), sampled as it goes.

    .venv/bin/python tests/benchmarks/bench_server.py            # ~3-4 minutes on 2 cores
    .venv/bin/python tests/benchmarks/bench_server.py --markdown
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from _datasets import DATA_DIR, load_family  # noqa: E402

from headroom_core.tokens import count_tokens_messages  # noqa: E402

MODEL = "gpt-4o-mini"
TARGETS = (2_000, 50_000)

_PROVIDER = """
import sys, time
sys.path.insert(0, {repo!r})
from tests.integrations.provider_server import ProviderServer
s = ProviderServer(keep_requests=False).start()
print(s.base_url, flush=True)
while True:
    time.sleep(3600)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start")


@contextmanager
def provider() -> Iterator[str]:
    code = _PROVIDER.format(repo=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().decode().strip()
        _wait(f"{base}/health", proc, "the fake provider")  # a 404 answer means it is up
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def server(upstream: str, workers: int, folder: Path) -> Iterator[tuple[str, int]]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for var in ("HEADROOM_SERVER_TOKEN", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(var, None)
    args = [
        sys.executable,
        "-c",
        "from headroom_integrations.server.cli import serve; serve()",
        *("--port", str(port), "--workers", str(workers)),
        *("--openai-base-url", f"{upstream}/v1", "--anthropic-base-url", upstream),
        *("--store", f"sqlite:///{folder / f'metrics-{workers}.db'}"),
        *("--log-level", "warning"),
    ]
    proc = subprocess.Popen(args, env=env, cwd=folder)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/health", proc, "headroom serve")
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    label: str
    tokens: int
    source: str
    content: bytes


def bodies() -> list[Body]:
    cases = load_family("json")
    sized = [(count_tokens_messages(c.messages, model=MODEL), c) for c in cases]
    out = []
    for target in TARGETS:
        tokens, case = min(sized, key=lambda tc: abs(tc[0] - target))
        body = {"model": MODEL, "messages": case.messages, "max_tokens": 256}
        label = f"{tokens / 1000:.1f}k tokens"
        out.append(Body(label, tokens, f"{case.group}/{case.name}", orjson.dumps(body)))
    return out


HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


async def _one(client: httpx.AsyncClient, url: str, content: bytes, mode: str | None) -> float:
    headers = dict(HEADERS)
    if mode:
        headers["x-headroom-mode"] = mode
    start = time.perf_counter()
    response = await client.post(url, content=content, headers=headers)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
    return elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency(
    direct: str, proxied: str, body: Body, mode: str, n: int, budget_s: float
) -> dict[str, float]:
    """n interleaved request pairs on one connection each (bounded by ``budget_s``)."""
    d: list[float] = []
    p: list[float] = []
    limits = httpx.Limits(max_connections=1)
    async with (
        httpx.AsyncClient(timeout=120, limits=limits) as dc,
        httpx.AsyncClient(timeout=120, limits=limits) as pc,
    ):
        for _ in range(5):  # warm-up: connections, tokenizer, first compress
            await _one(dc, f"{direct}/v1/chat/completions", body.content, None)
            await _one(pc, f"{proxied}/v1/chat/completions", body.content, mode)
        deadline = time.monotonic() + budget_s
        while len(d) < n and time.monotonic() < deadline:
            d.append(await _one(dc, f"{direct}/v1/chat/completions", body.content, None))
            p.append(await _one(pc, f"{proxied}/v1/chat/completions", body.content, mode))
    return {
        "n": len(d),
        "direct_p50": 1000 * statistics.median(d),
        "direct_p99": 1000 * pct(d, 0.99),
        "proxy_p50": 1000 * statistics.median(p),
        "proxy_p99": 1000 * pct(p, 0.99),
        "added_p50": 1000 * (statistics.median(p) - statistics.median(d)),
        "added_p99": 1000 * (pct(p, 0.99) - pct(d, 0.99)),
    }


async def load(
    base: str,
    content: bytes,
    connections: int,
    seconds: float,
    max_requests: int,
    on_progress: Any = None,
) -> dict[str, float]:
    """``connections`` workers posting back to back until the time or the count is spent."""
    done = errors = 0
    kinds: dict[str, int] = {}
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def worker() -> None:
            nonlocal done, errors
            while time.monotonic() < stop and done + errors < max_requests:
                try:
                    r = await client.post(
                        f"{base}/v1/chat/completions", content=content, headers=HEADERS
                    )
                    if r.status_code == 200:
                        done += 1
                    else:
                        errors += 1
                        kinds[f"HTTP {r.status_code}"] = kinds.get(f"HTTP {r.status_code}", 0) + 1
                except httpx.HTTPError as exc:
                    errors += 1
                    kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
                if on_progress is not None:
                    on_progress(done + errors)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    if kinds:
        print(f"errors against {base}: {kinds}", file=sys.stderr)
    return {"requests": done, "errors": errors, "seconds": elapsed, "rps": done / elapsed}


# -- the run --------------------------------------------------------------------------------------


def latency_table(
    args: argparse.Namespace, upstream: str, folder: Path, bodies: list[Body]
) -> list[str]:
    out = [
        "Added latency, one connection, non-streaming (ms)",
        "| request | mode | n | direct p50 | direct p99 | via server p50 | via server p99 | "
        "added p50 | added p99 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    with server(upstream, 1, folder) as (base, _):
        for body in bodies:
            for mode in ("off", "optimize"):
                print(f"latency {body.label} {mode} ...", file=sys.stderr)
                r = asyncio.run(
                    latency(upstream, base, body, mode, args.latency_requests, args.latency_seconds)
                )
                out.append(
                    f"| {body.label} ({body.source}) | {mode} | {r['n']:.0f} | "
                    f"{r['direct_p50']:.2f} | {r['direct_p99']:.2f} | {r['proxy_p50']:.2f} | "
                    f"{r['proxy_p99']:.2f} | **{r['added_p50']:+.2f}** | {r['added_p99']:+.2f} |"
                )
    return out


def throughput_table(
    args: argparse.Namespace, upstream: str, folder: Path, body: Body
) -> list[str]:
    out = [
        f"Throughput, {args.connections} concurrent connections, {body.label}, optimize "
        f"({args.throughput_seconds:.0f} s each)",
        "| target | requests | errors | req/s |",
        "|---|---:|---:|---:|",
    ]
    cap, seconds = 10**9, args.throughput_seconds
    print("throughput direct ...", file=sys.stderr)
    r = asyncio.run(load(upstream, body.content, args.connections, seconds, cap))
    out.append(f"| fake provider directly | {r['requests']} | {r['errors']} | {r['rps']:.0f} |")
    for workers in [int(w) for w in args.workers.split(",")]:
        with server(upstream, workers, folder) as (base, _):
            print(f"throughput {workers} worker(s) ...", file=sys.stderr)
            asyncio.run(load(base, body.content, args.connections, 2.0, cap))  # warm-up
            r = asyncio.run(load(base, body.content, args.connections, seconds, cap))
            plural = "s" if workers > 1 else ""
            out.append(
                f"| server, {workers} worker{plural} | {r['requests']} | {r['errors']} | "
                f"{r['rps']:.0f} |"
            )
    return out


def rss_table(args: argparse.Namespace, upstream: str, folder: Path, body: Body) -> list[str]:
    with server(upstream, 1, folder) as (base, pid):
        print(f"rss over {args.rss_requests} requests ...", file=sys.stderr)
        samples: list[tuple[int, float]] = [(0, rss_mb(pid))]
        step = max(1, args.rss_requests // 10)

        def progress(count: int) -> None:
            if count >= len(samples) * step:
                samples.append((count, rss_mb(pid)))

        r = asyncio.run(
            load(
                base, body.content, args.connections, args.rss_seconds, args.rss_requests, progress
            )
        )
        samples.append((int(r["requests"] + r["errors"]), rss_mb(pid)))
    return [
        f"RSS of a one-worker server over {r['requests']:.0f} requests of {body.label} "
        f"({r['errors']:.0f} errors, {r['rps']:.0f} req/s), MB",
        "| after requests | " + " | ".join(f"{n:,}" for n, _ in samples) + " |",
        "|---|" + "---:|" * len(samples),
        "| RSS MB | " + " | ".join(f"{m:.1f}" for _, m in samples) + " |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--latency-seconds", type=float, default=60.0, help="per row")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--throughput-seconds", type=float, default=15.0)
    parser.add_argument("--workers", default="1,4")
    parser.add_argument("--rss-requests", type=int, default=20_000)
    parser.add_argument("--rss-seconds", type=float, default=300.0)
    parser.add_argument("--phases", default="latency,throughput,rss")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if not DATA_DIR.exists():
        print(f"shared data not found at {DATA_DIR}; nothing to measure")
        return 0
    small, large = bodies()
    phases = args.phases.split(",")
    out: list[str] = []
    with provider() as upstream, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for phase in phases:
            if phase == "latency":
                out += latency_table(args, upstream, folder, [small, large])
            elif phase == "throughput":
                out += throughput_table(args, upstream, folder, small)
            elif phase == "rss":
                out += rss_table(args, upstream, folder, small)
            out.append("")
    out.append(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    text = "\n".join(out)
    print(text if args.markdown else text.replace("**", ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

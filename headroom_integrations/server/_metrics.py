"""What the server counts (Prometheus, ``/metrics``) and where it records (a metrics store,
written by one background thread so the event loop never waits on a file)."""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from headroom_core.metrics import RequestMetrics, Summary

from .._sink import MetricsSink

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_QUEUE_BOUND = 10_000  # records waiting for the writer; beyond it they are dropped (counted)


@dataclass(frozen=True, slots=True)
class ServerMetrics:
    """The Prometheus series, in the app's own registry (several apps may share a process)."""

    registry: CollectorRegistry
    requests: Counter
    tokens_before: Counter
    tokens_after: Counter
    latency: Histogram
    overhead: Histogram
    upstream_errors: Counter
    failures: Counter
    retrievals: Counter

    @classmethod
    def create(cls) -> ServerMetrics:
        r = CollectorRegistry()
        return cls(
            registry=r,
            requests=Counter(
                "headroom_requests", "Requests served.", ["route", "mode", "status"], registry=r
            ),
            tokens_before=Counter(
                "headroom_tokens_before", "Input tokens as received.", ["route"], registry=r
            ),
            tokens_after=Counter(
                "headroom_tokens_after", "Input tokens as sent upstream.", ["route"], registry=r
            ),
            latency=Histogram(
                "headroom_request_seconds",
                "Wall time of a request, upstream included.",
                ["route"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            ),
            overhead=Histogram(
                "headroom_overhead_seconds",
                "Time spent compressing and recording (what the server adds).",
                ["route"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            ),
            upstream_errors=Counter(
                "headroom_upstream_errors",
                "Upstream answers with an error status, or no answer (status 502).",
                ["route", "status"],
                registry=r,
            ),
            failures=Counter(
                "headroom_failures",
                "Requests our side failed to compress (sent unchanged: fail-open).",
                ["route"],
                registry=r,
            ),
            retrievals=Counter(
                "headroom_retrievals",
                "headroom_retrieve calls answered by the server.",
                ["route"],
                registry=r,
            ),
        )

    def exposition(self) -> tuple[bytes, str]:
        """The text format; across worker processes when PROMETHEUS_MULTIPROC_DIR is set."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _NoStore:
    """``--store ''``: nothing is recorded."""

    def record(self, m: RequestMetrics) -> None:
        return None

    def get_summary(self, *, since: object = None) -> Summary:
        return Summary.empty()

    def close(self) -> None:
        return None


class BackgroundSink(MetricsSink):
    """A :class:`MetricsSink` whose writes go through a queue to one writer thread;
    ``store_url`` '' records nothing."""

    def __init__(self, store_url: str) -> None:
        store = _NoStore() if not store_url else None
        super().__init__(store_url or "none", store, "headroom server")  # type: ignore[arg-type]
        self.enabled = bool(store_url)
        self._queue: queue.Queue[RequestMetrics | None] = queue.Queue(_QUEUE_BOUND)
        self._thread = threading.Thread(target=self._run, name="headroom-metrics", daemon=True)
        self._thread.start()

    def write(self, m: RequestMetrics) -> None:
        if not self.enabled:
            return
        try:
            self._queue.put_nowait(m)
        except queue.Full:
            self._drop()

    def _run(self) -> None:
        while True:
            m = self._queue.get()
            try:
                if m is None:
                    return
                MetricsSink.write(self, m)
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every queued record is written."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
        super().close()


__all__ = ["BackgroundSink", "ServerMetrics"]

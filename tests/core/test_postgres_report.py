"""The report computed by SQL aggregates on PostgreSQL equals the report computed record
by record (the other stores' path), on a real throwaway server."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from headroom_core.metrics import MemoryMetricsStore, RequestMetrics, open_store
from headroom_core.metrics._aggregates import AggregatingStore
from headroom_core.report import _aggregates, generate_report
from headroom_core.report.analysis import ReportData, analyze, analyze_aggregates
from tests.core.test_report import DAY, _m, sample_records

T0 = datetime(2025, 3, 3, 12, tzinfo=timezone.utc)


def more_records() -> list[RequestMetrics]:
    """Ties, repeated failures and errors, near-limit requests, unknown models and odd
    extras, on top of the report tests' sample."""
    rows = [
        # same timestamp: record order decides ties
        _m(20, T0, tokens_input_before=5000, tokens_input_after=1000,
           waste_signals={"json_bloat_tokens": 700, "custom_noise_tokens": 9},
           extra={"failures": ["b: x", "a: y", ""], "prefix_hash": "p1",
                  "prefix_hash_aligned": "q1", "prefix_tokens": 100}),
        _m(21, T0, tokens_input_before=5000, tokens_input_after=1000,
           waste_signals={"json_bloat_tokens": 700},
           extra={"failures": ["a: y", "b: x"], "prefix_hash": "p2",
                  "prefix_hash_aligned": "q1", "prefix_tokens": 150, "dynamic_values": 3}),
        _m(22, T0, error="boom " + "x" * 300, source="", tokens_input_before=10,
           tokens_input_after=10, extra={"prefix_hash": "p2", "prefix_tokens": "n/a"}),
        _m(23, T0 + timedelta(minutes=1), error="boom " + "x" * 300, source="",
           tokens_input_before=10, tokens_input_after=10),
        # near the context limit of gpt-4o (128k): input as sent plus output
        _m(24, T0 + timedelta(hours=2), tokens_input_before=130_000, tokens_input_after=100_000,
           tokens_output=5_000, extra={"usage_input_tokens": 101_000}),
        _m(25, T0 + timedelta(hours=3), model="made-up-model", provider="nobody",
           tokens_input_before=999_999, tokens_input_after=1),
        _m(26, T0 + timedelta(hours=4), mode="audit", tokens_input_before=3000,
           tokens_input_after=3000, cached_tokens=5000,
           extra={"projected_tokens_after": 1000, "usage_input_tokens": 2500}),
        _m(27, T0 + timedelta(days=40), mode="audit", model="made-up-model", provider="",
           tokens_input_before=3000, tokens_input_after=3000,
           extra={"projected_tokens_after": 2000.7, "preview": "ünïcode ✓ " * 50}),
    ]  # fmt: skip
    return [*sample_records(), *rows]


def _comparable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _comparable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-9, abs=1e-12)
    return value


def _without_labels(data: ReportData) -> ReportData:
    return dataclasses.replace(data, generated_at=DAY, store_label="")


@pytest.mark.parametrize("period", ["hour", "day", "week", "month"])
def test_sql_aggregates_equal_the_record_by_record_report(pg_url: str, period: str) -> None:
    records = more_records()
    with open_store(pg_url) as store:
        assert isinstance(store, AggregatingStore)  # the report runs as SQL here
        assert not isinstance(MemoryMetricsStore(), AggregatingStore)
        for m in records:
            store.record(m)
        for since in (None, T0, T0 + timedelta(minutes=30)):
            for top in (0, 3, 10):
                expected = analyze(
                    [m for m in records if since is None or m.timestamp >= since],
                    period=period, top=top, store_label="", since=since,
                )  # fmt: skip
                got = analyze_aggregates(
                    _aggregates(store, since, period, top), period=period, top=top,
                    store_label="", since=since,
                )  # fmt: skip
                assert _comparable(_without_labels(got)) == _comparable(
                    _without_labels(expected)
                ), (period, since, top)


def test_report_of_a_postgres_url_reads_like_the_memory_store(pg_url: str) -> None:
    records = more_records()
    with open_store(pg_url) as pg, MemoryMetricsStore() as mem:
        for m in records:
            pg.record(m)
            mem.record(m)
        assert pg.get_summary() == mem.get_summary() or _comparable(
            pg.get_summary()
        ) == _comparable(mem.get_summary())
    md_pg = generate_report(store_url=pg_url, format="markdown")
    with MemoryMetricsStore() as mem:
        for m in records:
            mem.record(m)
        md_mem = generate_report(store=mem, format="markdown")
    # same numbers; only the store label and the generation time differ
    strip = lambda text: [  # noqa: E731
        line for line in text.splitlines() if "Generated" not in line and "tore" not in line
    ]
    assert strip(md_pg) == strip(md_mem)
    assert "headroom@127.0.0.1" in md_pg  # the URL labels the report, without a password

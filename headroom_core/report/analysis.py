"""Aggregates for the report, computed from a list of ``RequestMetrics`` (pure data).

:func:`analyze` returns a :class:`ReportData`; both renderers (HTML, Markdown) read only
that, so they show the same numbers. Times are UTC; periods are calendar hours, days,
ISO weeks (starting Monday) and months.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from headroom_core.metrics import RequestMetrics
from headroom_core.metrics._aggregates import (
    NEAR_LIMIT,
    PERIODS,
    NearRow,
    PeriodRow,
    ReportAggregates,
    aggregate_records,
    bucket_start,
)

from ._extra import (
    WASTE_CATEGORIES,
    extra_str,
    price_for,
    projected_saved,
    waste_tokens,
    window_for,
)
from ._format import percent_of
from ._model import (
    Bucket,
    ModeTotals,
    NearLimit,
    Overview,
    ReportData,
    TopRequest,
    WasteBar,
    WasteHistogram,
)
from .cache import cache_analysis
from .recommend import recommend

__all__ = [
    "NEAR_LIMIT",
    "PERIODS",
    "Bucket",
    "ModeTotals",
    "NearLimit",
    "Overview",
    "ReportData",
    "TopRequest",
    "WasteBar",
    "WasteHistogram",
    "analyze",
    "analyze_aggregates",
    "bucket_start",
]

_PREVIEW_CHARS = 300
_WASTE_LABELS = {
    "json_bloat_tokens": "JSON bloat",
    "html_noise_tokens": "HTML noise",
    "whitespace_tokens": "Whitespace",
    "dynamic_date_tokens": "Dynamic dates/ids",
    "repetition_tokens": "Repetition",
}


def _bucket_label(start: datetime, period: str) -> str:
    if period == "hour":
        return start.strftime("%Y-%m-%d %H:00")
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d} ({start:%Y-%m-%d})"
    if period == "month":
        return start.strftime("%Y-%m")
    return start.strftime("%Y-%m-%d")


def overview(agg: ReportAggregates) -> Overview:
    """The stores' own totals (``get_summary`` agrees with the report), plus what the
    report adds: per-mode rows, sources, output tokens, cache share, errors."""
    total = agg.summary
    base = agg.cache_base_tokens
    return Overview(
        requests=total.requests,
        modes=tuple(
            ModeTotals(
                m.mode,
                m.requests,
                m.tokens_before,
                m.tokens_after,
                m.tokens_saved,
                m.projected_saved,
            )
            for m in agg.modes
        ),  # fmt: skip
        sources=agg.sources,
        tokens_before=total.total_tokens_before,
        tokens_after=total.total_tokens_after,
        tokens_saved=total.total_tokens_saved,
        savings_percent=total.savings_percent,
        tokens_output=agg.tokens_output,
        cost_before=total.total_cost_before,
        cost_after=total.total_cost_after,
        cost_saved=total.cost_saved,
        priced_requests=agg.priced_requests,
        cached_tokens=agg.cached_tokens,
        cache_base_tokens=base,
        cached_share=agg.cached_tokens / base if base else None,
        errors=agg.errors,
        first=total.first_timestamp,
        last=total.last_timestamp,
    )


def waste_histogram(agg: ReportAggregates) -> WasteHistogram:
    totals = {k: agg.waste.get(k, 0) for k in WASTE_CATEGORIES}
    extra = sorted(k for k in agg.waste if k not in WASTE_CATEGORIES)
    totals.update((k, agg.waste[k]) for k in extra)
    base = agg.measured_input_tokens
    bars = tuple(
        WasteBar(
            category=k,
            label=_WASTE_LABELS.get(k, k.removesuffix("_tokens").replace("_", " ")),
            tokens=totals[k],
            percent=percent_of(totals[k], base),
        )
        for k in (*WASTE_CATEGORIES, *extra)
    )
    return WasteHistogram(bars, sum(totals.values()), agg.measured_requests, base)


def _bucket(row: PeriodRow, period: str) -> Bucket:
    return Bucket(
        start=row.start,
        label=_bucket_label(row.start, period),
        requests=row.requests,
        tokens_before=row.tokens_before,
        tokens_after=row.tokens_after,
        tokens_saved=row.tokens_saved,
        savings_percent=percent_of(row.tokens_saved, row.tokens_before),
        cost_saved=row.cost_saved,
        audit_requests=row.audit_requests,
        projected_saved=row.projected_saved,
    )


def _top_request(m: RequestMetrics) -> TopRequest:
    waste = waste_tokens(m)
    top = max(sorted(waste), key=lambda k: waste[k], default=None)
    return TopRequest(
        request_id=m.request_id,
        timestamp=m.timestamp,
        model=m.model,
        mode=m.mode,
        source=m.source,
        provider=m.provider,
        tokens_before=m.tokens_input_before,
        tokens_after=m.tokens_input_after,
        tokens_saved=m.tokens_saved,
        projected_saved=projected_saved(m),
        waste_total=sum(waste.values()),
        top_category=None if top is None else _WASTE_LABELS.get(top, top),
        top_category_tokens=0 if top is None else waste[top],
        preview=(extra_str(m, "preview") or "")[:_PREVIEW_CHARS],
    )


def near_limit(rows: Sequence[NearRow]) -> NearLimit:
    worst = max((r.max_used / r.window for r in rows), default=0.0)
    models = tuple((r.model, r.requests, r.window) for r in rows)
    return NearLimit(NEAR_LIMIT, sum(r.requests for r in rows), 100.0 * worst, models)


def analyze(
    records: Sequence[RequestMetrics],
    *,
    period: str,
    top: int,
    store_label: str,
    since: datetime | None = None,
    generated_at: datetime | None = None,
) -> ReportData:
    """Every aggregate of the report. ``records`` may come in any order."""
    agg = aggregate_records(
        records, period=period, top=top, window_for=window_for, price_for=price_for
    )
    return analyze_aggregates(
        agg, period=period, top=top, store_label=store_label, since=since,
        generated_at=generated_at,
    )  # fmt: skip


def analyze_aggregates(
    agg: ReportAggregates,
    *,
    period: str,
    top: int,
    store_label: str,
    since: datetime | None = None,
    generated_at: datetime | None = None,
) -> ReportData:
    """The report of aggregates a store computed (or :func:`analyze` computed from records)."""
    ov = overview(agg)
    waste = waste_histogram(agg)
    cache = cache_analysis(agg.prefix_groups)
    near = near_limit(agg.near)
    recs, reason = recommend(agg.audit, ov, waste, cache, near, agg.failures, agg.provider_errors)
    return ReportData(
        generated_at=generated_at or datetime.now(timezone.utc),
        store_label=store_label,
        period=period,
        since=since,
        overview=ov,
        waste=waste,
        buckets=tuple(_bucket(row, period) for row in agg.periods),
        top=tuple(_top_request(m) for m in agg.top),
        top_limit=top,
        cache=cache,
        near_limit=near,
        failures=agg.failures,
        provider_errors=agg.provider_errors,
        recommendations=recs,
        no_recommendations=reason,
    )

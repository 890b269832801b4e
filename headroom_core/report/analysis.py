"""Aggregates for the report, computed from a list of ``RequestMetrics`` (pure data).

:func:`analyze` returns a :class:`ReportData`; both renderers (HTML, Markdown) read only
that, so they show the same numbers. Times are UTC; periods are calendar hours, days,
ISO weeks (starting Monday) and months.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from headroom_core.metrics import RequestMetrics
from headroom_core.metrics._base import summarize

from ._extra import (
    WASTE_CATEGORIES,
    extra_str,
    extra_strs,
    model_info,
    projected_saved,
    sent_tokens,
    waste_tokens,
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
from .cache import analyze_cache, cache_counts
from .recommend import recommend

__all__ = [
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
    "bucket_start",
]

PERIODS: tuple[str, ...] = ("hour", "day", "week", "month")
#: A request "near its context limit" uses at least this share of the model's window.
NEAR_LIMIT = 0.8
_PREVIEW_CHARS = 300
_MESSAGE_CHARS = 200
_WASTE_LABELS = {
    "json_bloat_tokens": "JSON bloat",
    "html_noise_tokens": "HTML noise",
    "whitespace_tokens": "Whitespace",
    "dynamic_date_tokens": "Dynamic dates/ids",
    "repetition_tokens": "Repetition",
}


def bucket_start(ts: datetime, period: str) -> datetime:
    """Start (UTC) of the hour, day, ISO week or month that ``ts`` falls in."""
    ts = ts.astimezone(timezone.utc)
    day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"period: expected one of {PERIODS}, got {period!r}")


def _bucket_label(start: datetime, period: str) -> str:
    if period == "hour":
        return start.strftime("%Y-%m-%d %H:00")
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d} ({start:%Y-%m-%d})"
    if period == "month":
        return start.strftime("%Y-%m")
    return start.strftime("%Y-%m-%d")


def overview(records: Sequence[RequestMetrics]) -> Overview:
    """The stores' own totals (``get_summary`` agrees with the report), plus what the
    report adds: per-mode rows, sources, output tokens, cache share, errors."""
    total = summarize(records)
    cached, base = cache_counts(records)
    return Overview(
        requests=total.requests,
        modes=_mode_totals(records),
        sources=tuple(Counter(m.source or "unknown" for m in records).most_common()),
        tokens_before=total.total_tokens_before,
        tokens_after=total.total_tokens_after,
        tokens_saved=total.total_tokens_saved,
        savings_percent=total.savings_percent,
        tokens_output=sum(m.tokens_output or 0 for m in records),
        cost_before=total.total_cost_before,
        cost_after=total.total_cost_after,
        cost_saved=total.cost_saved,
        priced_requests=sum(m.cost_saved is not None for m in records),
        cached_tokens=cached,
        cache_base_tokens=base,
        cached_share=cached / base if base else None,
        errors=sum(m.error is not None for m in records),
        first=total.first_timestamp,
        last=total.last_timestamp,
    )


def _mode_totals(records: Sequence[RequestMetrics]) -> tuple[ModeTotals, ...]:
    out = []
    for mode in sorted({m.mode for m in records}):
        rows = [m for m in records if m.mode == mode]
        out.append(
            ModeTotals(
                mode=mode,
                requests=len(rows),
                tokens_before=sum(m.tokens_input_before for m in rows),
                tokens_after=sum(m.tokens_input_after for m in rows),
                tokens_saved=sum(m.tokens_saved for m in rows),
                projected_saved=sum(projected_saved(m) or 0 for m in rows),
            )
        )
    return tuple(out)


def waste_histogram(records: Sequence[RequestMetrics]) -> WasteHistogram:
    measured = [m for m in records if m.waste_signals]
    totals: Counter[str] = Counter(dict.fromkeys(WASTE_CATEGORIES, 0))
    for m in measured:
        totals.update(waste_tokens(m))
    base = sum(m.tokens_input_before for m in measured)
    extra = sorted(k for k in totals if k not in WASTE_CATEGORIES)
    bars = tuple(
        WasteBar(
            category=k,
            label=_WASTE_LABELS.get(k, k.removesuffix("_tokens").replace("_", " ")),
            tokens=totals[k],
            percent=percent_of(totals[k], base),
        )
        for k in (*WASTE_CATEGORIES, *extra)
    )
    return WasteHistogram(bars, sum(totals.values()), len(measured), base)


def buckets(records: Sequence[RequestMetrics], period: str) -> tuple[Bucket, ...]:
    grouped: dict[datetime, list[RequestMetrics]] = {}
    for m in records:
        grouped.setdefault(bucket_start(m.timestamp, period), []).append(m)
    out = []
    for start in sorted(grouped):
        rows = grouped[start]
        before = sum(m.tokens_input_before for m in rows)
        saved = sum(m.tokens_saved for m in rows)
        projected = [p for p in (projected_saved(m) for m in rows) if p is not None]
        out.append(
            Bucket(
                start=start,
                label=_bucket_label(start, period),
                requests=len(rows),
                tokens_before=before,
                tokens_after=sum(m.tokens_input_after for m in rows),
                tokens_saved=saved,
                savings_percent=percent_of(saved, before),
                cost_saved=math.fsum(m.cost_saved or 0.0 for m in rows),
                audit_requests=len(projected),
                projected_saved=sum(projected),
            )
        )
    return tuple(out)


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


def top_requests(records: Sequence[RequestMetrics], limit: int) -> tuple[TopRequest, ...]:
    """The ``limit`` requests with most waste, then most tokens saved (or projected)."""
    rows = [_top_request(m) for m in records]
    rows = [r for r in rows if r.waste_total or r.tokens_saved or r.projected_saved]
    rows.sort(
        key=lambda r: (r.waste_total, max(r.tokens_saved, r.projected_saved or 0), r.timestamp),
        reverse=True,
    )
    return tuple(rows[:limit])


def near_limit(records: Sequence[RequestMetrics]) -> NearLimit:
    per_model: Counter[str] = Counter()
    windows: dict[str, int] = {}
    worst = 0.0
    for m in records:
        info = model_info(m)
        if info is None or info.context <= 0:
            continue
        used = (sent_tokens(m) + (m.tokens_output or 0)) / info.context
        if used >= NEAR_LIMIT:
            per_model[m.model] += 1
            windows[m.model] = info.context
            worst = max(worst, used)
    models = tuple((name, n, windows[name]) for name, n in per_model.most_common())
    return NearLimit(NEAR_LIMIT, sum(per_model.values()), 100.0 * worst, models)


def _counted(values: Sequence[str]) -> tuple[tuple[str, int], ...]:
    return tuple(Counter(v[:_MESSAGE_CHARS] for v in values).most_common())


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
    ordered = sorted(records, key=lambda m: m.timestamp)  # stable: ties keep store order
    ov = overview(ordered)
    waste = waste_histogram(ordered)
    cache = analyze_cache(ordered)
    near = near_limit(ordered)
    failures = _counted([f for m in ordered for f in extra_strs(m, "failures")])
    errors = _counted([m.error for m in ordered if m.error is not None])
    recs, reason = recommend(ordered, ov, waste, cache, near, failures, errors)
    return ReportData(
        generated_at=generated_at or datetime.now(timezone.utc),
        store_label=store_label,
        period=period,
        since=since,
        overview=ov,
        waste=waste,
        buckets=buckets(ordered, period),
        top=top_requests(ordered, top),
        top_limit=top,
        cache=cache,
        near_limit=near,
        failures=failures,
        provider_errors=errors,
        recommendations=recs,
        no_recommendations=reason,
    )

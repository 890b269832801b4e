"""The numbers a report is made of, as one record: :class:`ReportAggregates`.

A store may compute them itself (``store.report_aggregates(...)``: the PostgreSQL store
runs them as SQL aggregates); :func:`aggregate_records` computes them from a list of
records for every other store. Both follow the same definitions, so the report reads
the same from any store. Model facts (context windows, prices) come from the caller as
functions of (provider, model), so this module stays free of the model table.

Order: records are taken oldest first, ties in the order they were recorded; "first
seen" below means first in that order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

from headroom_core.metrics._base import summarize
from headroom_core.metrics._fields import (
    extra_int,
    extra_str,
    extra_strs,
    projected_saved,
    sent_tokens,
    waste_tokens,
)
from headroom_core.metrics.records import RequestMetrics, Summary

__all__ = [
    "NEAR_LIMIT",
    "PERIODS",
    "AggregatingStore",
    "AuditRow",
    "ModeRow",
    "NearRow",
    "PeriodRow",
    "PrefixRow",
    "ReportAggregates",
    "aggregate_records",
    "bucket_start",
    "counted",
    "prefix_groups",
]

PERIODS: tuple[str, ...] = ("hour", "day", "week", "month")
#: A request "near its context limit" uses at least this share of the model's window.
NEAR_LIMIT = 0.8
#: Failure and error messages are grouped by their first this many characters.
MESSAGE_CHARS = 200

#: (provider, model) -> context window in tokens, or None when unknown.
WindowFor = Callable[[str, str], "int | None"]
#: (provider, model) -> list price in USD per input token, or None when unknown.
PriceFor = Callable[[str, str], "float | None"]


@dataclass(frozen=True, slots=True)
class ModeRow:
    mode: str
    requests: int
    tokens_before: int
    tokens_after: int
    tokens_saved: int
    projected_saved: int


@dataclass(frozen=True, slots=True)
class PeriodRow:
    """One UTC hour, day, ISO week or month; ``audit_requests`` have a projected saving."""

    start: datetime
    requests: int
    tokens_before: int
    tokens_after: int
    tokens_saved: int
    cost_saved: float
    audit_requests: int
    projected_saved: int


@dataclass(frozen=True, slots=True)
class PrefixRow:
    """Requests of one (source, provider, model) that recorded a prefix hash."""

    source: str
    provider: str
    model: str
    requests: int
    raw_changes: int
    aligned_changes: int
    distinct_raw: int
    distinct_aligned: int
    dynamic_values: int
    prefix_tokens_sum: int
    prefix_tokens_known: int
    avoidable_tokens: int
    cached_tokens: int
    cache_base_tokens: int


@dataclass(frozen=True, slots=True)
class NearRow:
    """Requests of one model at or over ``NEAR_LIMIT`` of ``window``; ``max_used`` is the
    largest input-as-sent plus output among them."""

    model: str
    requests: int
    window: int
    max_used: int


@dataclass(frozen=True, slots=True)
class AuditRow:
    """Audit requests with a projected saving: totals, and their cost at list price
    (None when no such request has a known price)."""

    requests: int
    projected_saved: int
    tokens_before: int
    priced_saving: float | None


@dataclass(frozen=True, slots=True)
class ReportAggregates:
    """Everything the report computes from the records (see the module docstring)."""

    summary: Summary
    modes: tuple[ModeRow, ...]
    sources: tuple[tuple[str, int], ...]
    tokens_output: int
    priced_requests: int
    cached_tokens: int
    cache_base_tokens: int
    errors: int
    waste: dict[str, int]
    measured_requests: int
    measured_input_tokens: int
    periods: tuple[PeriodRow, ...]
    top: tuple[RequestMetrics, ...]
    prefix_groups: tuple[PrefixRow, ...]
    near: tuple[NearRow, ...]
    failures: tuple[tuple[str, int], ...]
    provider_errors: tuple[tuple[str, int], ...]
    audit: AuditRow


@runtime_checkable
class AggregatingStore(Protocol):
    """A metrics store that computes the report's aggregates itself."""

    def report_aggregates(
        self,
        *,
        since: datetime | None,
        period: str,
        top: int,
        window_for: WindowFor,
        price_for: PriceFor,
    ) -> ReportAggregates: ...


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


def counted(values: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """Messages by their first ``MESSAGE_CHARS`` characters, most frequent first (ties:
    first seen first)."""
    return tuple(Counter(v[:MESSAGE_CHARS] for v in values).most_common())


def _modes(records: Sequence[RequestMetrics]) -> tuple[ModeRow, ...]:
    out = []
    for mode in sorted({m.mode for m in records}):
        rows = [m for m in records if m.mode == mode]
        out.append(
            ModeRow(
                mode=mode,
                requests=len(rows),
                tokens_before=sum(m.tokens_input_before for m in rows),
                tokens_after=sum(m.tokens_input_after for m in rows),
                tokens_saved=sum(m.tokens_saved for m in rows),
                projected_saved=sum(_projection(m) for m in rows),
            )
        )
    return tuple(out)


def _projection(m: RequestMetrics) -> int:
    """What a record projects: an audit record's ``projected_tokens_after`` saving, a
    simulate preview's whole saving (it sent nothing); 0 for the others."""
    if m.mode == "simulate":
        return m.projected_saved
    return projected_saved(m) or 0


def _periods(records: Sequence[RequestMetrics], period: str) -> tuple[PeriodRow, ...]:
    grouped: dict[datetime, list[RequestMetrics]] = {}
    for m in records:
        grouped.setdefault(bucket_start(m.timestamp, period), []).append(m)
    out = []
    for start in sorted(grouped):
        rows = grouped[start]
        projected = [p for p in (projected_saved(m) for m in rows) if p is not None]
        sent = [m for m in rows if m.sent]  # a simulate preview sent and saved nothing
        out.append(
            PeriodRow(
                start=start,
                requests=len(rows),
                tokens_before=sum(m.tokens_input_before for m in sent),
                tokens_after=sum(m.tokens_input_after for m in sent),
                tokens_saved=sum(m.tokens_saved for m in sent),
                cost_saved=math.fsum(m.cost_saved or 0.0 for m in sent),
                audit_requests=len(projected),
                projected_saved=sum(projected),
            )
        )
    return tuple(out)


def _top(records: Sequence[RequestMetrics], limit: int) -> tuple[RequestMetrics, ...]:
    keyed = []
    for m in records:
        waste, projected = sum(waste_tokens(m).values()), projected_saved(m)
        if waste or m.tokens_saved or projected:
            keyed.append(((waste, max(m.tokens_saved, projected or 0), m.timestamp), m))
    keyed.sort(key=lambda km: km[0], reverse=True)  # stable: ties keep record order
    return tuple(m for _, m in keyed[:limit])


def cache_counts(records: Sequence[RequestMetrics]) -> tuple[int, int]:
    """(cached tokens, input tokens) over the records that reported cached tokens; the
    base of each is its input as sent, never less than its cached tokens."""
    cached = base = 0
    for m in records:
        if m.cached_tokens is None:
            continue
        cached += m.cached_tokens
        base += max(sent_tokens(m), m.cached_tokens)
    return cached, base


def _prefix_group(key: tuple[str, str, str], records: Sequence[RequestMetrics]) -> PrefixRow:
    raw = [extra_str(m, "prefix_hash") or "" for m in records]
    aligned = [extra_str(m, "prefix_hash_aligned") or h for m, h in zip(records, raw, strict=True)]
    avoidable = raw_changes = aligned_changes = 0
    for i in range(1, len(records)):
        raw_changes += raw[i] != raw[i - 1]
        aligned_changes += aligned[i] != aligned[i - 1]
        if raw[i] != raw[i - 1] and aligned[i] == aligned[i - 1]:
            avoidable += extra_int(records[i], "prefix_tokens") or 0
    known = [t for t in (extra_int(m, "prefix_tokens") for m in records) if t is not None]
    cached, base = cache_counts(records)
    return PrefixRow(
        source=key[0],
        provider=key[1],
        model=key[2],
        requests=len(records),
        raw_changes=raw_changes,
        aligned_changes=aligned_changes,
        distinct_raw=len(set(raw)),
        distinct_aligned=len(set(aligned)),
        dynamic_values=sum(extra_int(m, "dynamic_values") or 0 for m in records),
        prefix_tokens_sum=sum(known),
        prefix_tokens_known=len(known),
        avoidable_tokens=avoidable,
        cached_tokens=cached,
        cache_base_tokens=base,
    )


def prefix_groups(records: Sequence[RequestMetrics]) -> tuple[PrefixRow, ...]:
    by_key: dict[tuple[str, str, str], list[RequestMetrics]] = {}
    for m in records:
        if extra_str(m, "prefix_hash") is not None:
            by_key.setdefault((m.source, m.provider, m.model), []).append(m)
    return tuple(_prefix_group(key, rows) for key, rows in by_key.items())


def _near(records: Sequence[RequestMetrics], window_for: WindowFor) -> tuple[NearRow, ...]:
    count: Counter[str] = Counter()
    windows: dict[str, int] = {}
    worst: dict[str, int] = {}
    for m in records:
        window = window_for(m.provider, m.model)
        if window is None or window <= 0:
            continue
        used = sent_tokens(m) + (m.tokens_output or 0)
        if used / window >= NEAR_LIMIT:
            count[m.model] += 1
            windows[m.model] = window
            worst[m.model] = max(worst.get(m.model, 0), used)
    return tuple(NearRow(name, n, windows[name], worst[name]) for name, n in count.most_common())


def _audit(records: Sequence[RequestMetrics], price_for: PriceFor) -> AuditRow:
    rows = [(m, p) for m in records if (p := projected_saved(m))]
    priced = [p * price for m, p in rows if (price := price_for(m.provider, m.model)) is not None]
    return AuditRow(
        requests=len(rows),
        projected_saved=sum(p for _, p in rows),
        tokens_before=sum(m.tokens_input_before for m, _ in rows),
        priced_saving=sum(priced) if priced else None,
    )


def aggregate_records(
    records: Sequence[RequestMetrics],
    *,
    period: str,
    top: int,
    window_for: WindowFor,
    price_for: PriceFor,
) -> ReportAggregates:
    """The aggregates of ``records`` (any order; sorted by time here, ties kept)."""
    ordered = sorted(records, key=lambda m: m.timestamp)
    measured = [m for m in ordered if m.waste_signals]
    waste: Counter[str] = Counter()
    for m in measured:
        waste.update(waste_tokens(m))
    cached, base = cache_counts(ordered)
    return ReportAggregates(
        summary=summarize(ordered),
        modes=_modes(ordered),
        sources=tuple(Counter(m.source or "unknown" for m in ordered).most_common()),
        tokens_output=sum(m.tokens_output or 0 for m in ordered),
        priced_requests=sum(m.cost_saved is not None for m in ordered),
        cached_tokens=cached,
        cache_base_tokens=base,
        errors=sum(m.error is not None for m in ordered),
        waste=dict(waste),
        measured_requests=len(measured),
        measured_input_tokens=sum(m.tokens_input_before for m in measured),
        periods=_periods(ordered, period),
        top=_top(ordered, top),
        prefix_groups=prefix_groups(ordered),
        near=_near(ordered, window_for),
        failures=counted([f for m in ordered for f in extra_strs(m, "failures")]),
        provider_errors=counted([m.error for m in ordered if m.error is not None]),
        audit=_audit(ordered, price_for),
    )

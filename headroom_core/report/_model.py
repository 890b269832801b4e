"""The report's data model: what :func:`~.analysis.analyze` computes and both renderers read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ._format import percent_of
from .cache import CacheAnalysis

__all__ = [
    "Bucket",
    "ModeTotals",
    "NearLimit",
    "Overview",
    "Recommendation",
    "ReportData",
    "TopRequest",
    "WasteBar",
    "WasteHistogram",
]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """``key`` is stable (tests and tools match on it); ``detail`` carries the numbers."""

    key: str
    title: str
    detail: str


@dataclass(frozen=True, slots=True)
class ModeTotals:
    """Requests and input tokens of one mode; ``projected_saved`` is audit-only."""

    mode: str
    requests: int
    tokens_before: int
    tokens_after: int
    tokens_saved: int
    projected_saved: int


@dataclass(frozen=True, slots=True)
class Overview:
    """Totals over every request in the report. Unknown costs count as 0."""

    requests: int
    modes: tuple[ModeTotals, ...]
    sources: tuple[tuple[str, int], ...]
    tokens_before: int
    tokens_after: int
    tokens_saved: int
    savings_percent: float
    tokens_output: int
    cost_before: float
    cost_after: float
    cost_saved: float
    priced_requests: int
    cached_tokens: int
    cache_base_tokens: int
    cached_share: float | None
    errors: int
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True, slots=True)
class WasteBar:
    category: str
    label: str
    tokens: int
    percent: float


@dataclass(frozen=True, slots=True)
class WasteHistogram:
    """Waste tokens per category; percentages are of the measured requests' input tokens."""

    bars: tuple[WasteBar, ...]
    total: int
    measured_requests: int
    measured_input_tokens: int

    @property
    def percent(self) -> float:
        return percent_of(self.total, self.measured_input_tokens)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One period: totals as recorded, plus what audit requests would have saved."""

    start: datetime
    label: str
    requests: int
    tokens_before: int
    tokens_after: int
    tokens_saved: int
    savings_percent: float
    cost_saved: float
    audit_requests: int
    projected_saved: int


@dataclass(frozen=True, slots=True)
class TopRequest:
    request_id: str
    timestamp: datetime
    model: str
    mode: str
    source: str
    provider: str
    tokens_before: int
    tokens_after: int
    tokens_saved: int
    projected_saved: int | None
    waste_total: int
    top_category: str | None
    top_category_tokens: int
    preview: str


@dataclass(frozen=True, slots=True)
class NearLimit:
    """Requests whose input as sent plus output reached ``threshold`` of the context window.

    ``models`` holds (model, requests, context window) per model, most requests first.
    """

    threshold: float
    requests: int
    max_percent: float
    models: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything a report shows."""

    generated_at: datetime
    store_label: str
    period: str
    since: datetime | None
    overview: Overview
    waste: WasteHistogram
    buckets: tuple[Bucket, ...]
    top: tuple[TopRequest, ...]
    top_limit: int
    cache: CacheAnalysis
    near_limit: NearLimit
    failures: tuple[tuple[str, int], ...]
    provider_errors: tuple[tuple[str, int], ...]
    recommendations: tuple[Recommendation, ...]
    no_recommendations: str

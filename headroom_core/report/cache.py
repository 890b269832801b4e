"""Cache-alignment analysis: how often the stable prefix of consecutive requests changed.

Providers reuse a cached prompt prefix only while it stays byte-identical; one changed
token (a date, a request id) loses the cache from that point on. The client wrapper
records ``prefix_hash`` (the request as sent) and ``prefix_hash_aligned`` (after
CacheAligner, whether or not it ran); comparing consecutive requests of one client and
model on both shows how many changes alignment removes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from headroom_core.metrics import RequestMetrics
from headroom_core.metrics._aggregates import PrefixRow, prefix_groups

__all__ = ["CacheAnalysis", "PrefixGroup", "analyze_cache", "cache_analysis"]

PREFIX_CHANGE_COST = (
    "When the prefix changes between consecutive requests, the provider's prompt cache is "
    "lost from the first changed token on, so everything after it is billed again at the "
    "full, uncached input price."
)


@dataclass(frozen=True, slots=True)
class PrefixGroup:
    """Requests of one (source, provider, model) that recorded a prefix hash, in time order.

    ``avoidable_tokens`` sums ``prefix_tokens`` over the requests whose prefix changed as
    sent but would not have changed aligned: prefix tokens billed uncached for nothing.
    ``cached_share`` is provider-cached input tokens over input tokens, over the requests
    that reported cached tokens (None when none did).
    """

    source: str
    provider: str
    model: str
    requests: int
    raw_changes: int
    aligned_changes: int
    distinct_raw: int
    distinct_aligned: int
    dynamic_values: int
    prefix_tokens_mean: int | None
    avoidable_tokens: int
    cached_tokens: int
    cache_base_tokens: int
    cached_share: float | None

    @property
    def removable_changes(self) -> int:
        """Prefix changes that alignment would remove."""
        return max(0, self.raw_changes - self.aligned_changes)


@dataclass(frozen=True, slots=True)
class CacheAnalysis:
    """Per-group prefix statistics and their totals."""

    groups: tuple[PrefixGroup, ...]
    requests: int
    raw_changes: int
    aligned_changes: int
    dynamic_values: int
    avoidable_tokens: int

    @property
    def removable_changes(self) -> int:
        return sum(g.removable_changes for g in self.groups)


def _group(row: PrefixRow) -> PrefixGroup:
    known = row.prefix_tokens_known
    return PrefixGroup(
        source=row.source,
        provider=row.provider,
        model=row.model,
        requests=row.requests,
        raw_changes=row.raw_changes,
        aligned_changes=row.aligned_changes,
        distinct_raw=row.distinct_raw,
        distinct_aligned=row.distinct_aligned,
        dynamic_values=row.dynamic_values,
        prefix_tokens_mean=round(row.prefix_tokens_sum / known) if known else None,
        avoidable_tokens=row.avoidable_tokens,
        cached_tokens=row.cached_tokens,
        cache_base_tokens=row.cache_base_tokens,
        cached_share=row.cached_tokens / row.cache_base_tokens if row.cache_base_tokens else None,
    )


def cache_analysis(rows: Sequence[PrefixRow]) -> CacheAnalysis:
    """The analysis of the per-group aggregates (any order)."""
    groups = sorted(
        (_group(row) for row in rows),
        key=lambda g: (-g.requests, g.source, g.provider, g.model),
    )
    return CacheAnalysis(
        groups=tuple(groups),
        requests=sum(g.requests for g in groups),
        raw_changes=sum(g.raw_changes for g in groups),
        aligned_changes=sum(g.aligned_changes for g in groups),
        dynamic_values=sum(g.dynamic_values for g in groups),
        avoidable_tokens=sum(g.avoidable_tokens for g in groups),
    )


def analyze_cache(records: Sequence[RequestMetrics]) -> CacheAnalysis:
    """Analyse ``records`` (oldest first); records without ``prefix_hash`` are skipped."""
    return cache_analysis(prefix_groups(records))

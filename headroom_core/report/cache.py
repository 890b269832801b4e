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
from itertools import pairwise

from headroom_core.metrics import RequestMetrics

from ._extra import extra_int, extra_str, sent_tokens

__all__ = ["CacheAnalysis", "PrefixGroup", "analyze_cache"]

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


def cache_counts(records: Sequence[RequestMetrics]) -> tuple[int, int]:
    """(cached tokens, input tokens) over the records that reported cached tokens.

    The base of each record is its provider-reported input tokens when recorded, else our
    count of what was sent; never less than its cached tokens.
    """
    cached = base = 0
    for m in records:
        if m.cached_tokens is None:
            continue
        cached += m.cached_tokens
        base += max(sent_tokens(m), m.cached_tokens)
    return cached, base


def _group(key: tuple[str, str, str], records: Sequence[RequestMetrics]) -> PrefixGroup:
    raw = [extra_str(m, "prefix_hash") or "" for m in records]
    aligned = [extra_str(m, "prefix_hash_aligned") or h for m, h in zip(records, raw, strict=True)]
    avoidable = 0
    for i in range(1, len(records)):
        if raw[i] != raw[i - 1] and aligned[i] == aligned[i - 1]:
            avoidable += extra_int(records[i], "prefix_tokens") or 0
    known = [t for t in (extra_int(m, "prefix_tokens") for m in records) if t is not None]
    cached, base = cache_counts(records)
    return PrefixGroup(
        source=key[0],
        provider=key[1],
        model=key[2],
        requests=len(records),
        raw_changes=sum(a != b for a, b in pairwise(raw)),
        aligned_changes=sum(a != b for a, b in pairwise(aligned)),
        distinct_raw=len(set(raw)),
        distinct_aligned=len(set(aligned)),
        dynamic_values=sum(extra_int(m, "dynamic_values") or 0 for m in records),
        prefix_tokens_mean=round(sum(known) / len(known)) if known else None,
        avoidable_tokens=avoidable,
        cached_tokens=cached,
        cache_base_tokens=base,
        cached_share=cached / base if base else None,
    )


def analyze_cache(records: Sequence[RequestMetrics]) -> CacheAnalysis:
    """Analyse ``records`` (oldest first); records without ``prefix_hash`` are skipped."""
    by_key: dict[tuple[str, str, str], list[RequestMetrics]] = {}
    for m in records:
        if extra_str(m, "prefix_hash") is not None:
            by_key.setdefault((m.source, m.provider, m.model), []).append(m)
    groups = sorted(
        (_group(key, rows) for key, rows in by_key.items()),
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

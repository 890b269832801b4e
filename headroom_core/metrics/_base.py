"""The ``MetricsStore`` protocol and the helpers the stores share."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import Protocol, TypeVar, runtime_checkable

import orjson

from headroom_core.errors import InputError
from headroom_core.metrics.records import RequestMetrics, Summary

_S = TypeVar("_S")


@runtime_checkable
class MetricsStore(Protocol):
    """Where ``RequestMetrics`` are kept. Every store is also a context manager."""

    def record(self, m: RequestMetrics) -> None:
        """Add one record."""
        ...

    def get_metrics(
        self,
        limit: int | None = 100,
        *,
        since: datetime | None = None,
        model: str | None = None,
    ) -> list[RequestMetrics]:
        """Records, newest first; ``since`` is inclusive; ``limit=None`` means all."""
        ...

    def get_summary(self, *, since: datetime | None = None) -> Summary:
        """Totals over the records at or after ``since`` (all records if None)."""
        ...

    def close(self) -> None:
        """Release files and connections. Idempotent."""
        ...

    def __enter__(self: _S) -> _S: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def dumps(value: object, m: RequestMetrics) -> bytes:
    """JSON bytes of ``value`` (part of ``m``); InputError if it holds a non-JSON value."""
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise InputError(
            f"RequestMetrics {m.request_id}: waste_signals and extra must be "
            f"JSON-serialisable: {exc}"
        ) from exc


def check_query(limit: int | None, since: datetime | None) -> None:
    """Reject a negative limit or a naive ``since`` (which would compare ambiguously)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InputError(f"limit: expected None or an int >= 0, got {limit!r}")
    if since is not None and (not isinstance(since, datetime) or since.utcoffset() is None):
        raise InputError(f"since: expected a timezone-aware datetime, got {since!r}")


def select(
    records: Iterable[RequestMetrics],
    limit: int | None,
    since: datetime | None,
    model: str | None,
) -> list[RequestMetrics]:
    """Filter and order records newest first; ties keep the later-recorded one first."""
    check_query(limit, since)
    kept = [
        (m.timestamp, i, m)
        for i, m in enumerate(records)
        if (since is None or m.timestamp >= since) and (model is None or m.model == model)
    ]
    kept.sort(key=lambda t: (t[0], t[1]), reverse=True)
    if limit is not None:
        kept = kept[:limit]
    return [m for _, _, m in kept]


def summarize(records: Iterable[RequestMetrics], since: datetime | None = None) -> Summary:
    """A Summary of the records at or after ``since``, computed in one pass; tokens, costs
    and savings over the requests that were sent (see :class:`Summary`)."""
    check_query(None, since)
    count = before = after = saved = 0
    cost_before: list[float] = []
    cost_after: list[float] = []
    cost_saved: list[float] = []
    by_mode: dict[str, int] = {}
    first: datetime | None = None
    last: datetime | None = None
    for m in records:
        if since is not None and m.timestamp < since:
            continue
        count += 1
        by_mode[m.mode] = by_mode.get(m.mode, 0) + 1
        first = m.timestamp if first is None or m.timestamp < first else first
        last = m.timestamp if last is None or m.timestamp > last else last
        if not m.sent:  # a preview: counted as a record, never in tokens, costs or savings
            continue
        before += m.tokens_input_before
        after += m.tokens_input_after
        saved += m.tokens_saved
        if m.cost_before is not None:
            cost_before.append(m.cost_before)
        if m.cost_after is not None:
            cost_after.append(m.cost_after)
        if m.cost_saved is not None:
            cost_saved.append(m.cost_saved)
    return Summary(
        requests=count,
        total_tokens_before=before,
        total_tokens_after=after,
        total_tokens_saved=saved,
        savings_percent=100.0 * saved / before if before > 0 else 0.0,
        total_cost_before=math.fsum(cost_before),
        total_cost_after=math.fsum(cost_after),
        cost_saved=math.fsum(cost_saved),
        by_mode=dict(sorted(by_mode.items())),
        first_timestamp=first,
        last_timestamp=last,
    )

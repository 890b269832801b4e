"""Readers of the optional parts of a ``RequestMetrics``, defensively.

Records from the provider-client wrapper carry ``prefix_hash``, ``preview``, ``failures``
and the like in ``extra``; records from other sources lack them. Every reader here returns
None (or an empty value) for a missing key or a value of the wrong type, never raises.
The report reads records through these, and the PostgreSQL store computes its report
columns with them, so both agree.
"""

from __future__ import annotations

import math

from headroom_core.metrics.records import RequestMetrics

__all__ = [
    "WASTE_CATEGORIES",
    "extra_int",
    "extra_str",
    "extra_strs",
    "projected_saved",
    "sent_tokens",
    "waste_tokens",
]

#: The waste categories of :class:`headroom_core.waste.WasteSignals`, in display order.
WASTE_CATEGORIES: tuple[str, ...] = (
    "json_bloat_tokens",
    "html_noise_tokens",
    "whitespace_tokens",
    "dynamic_date_tokens",
    "repetition_tokens",
)


def extra_int(m: RequestMetrics, key: str) -> int | None:
    """``m.extra[key]`` as an int >= 0 (floats are truncated), else None."""
    value = m.extra.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value) if value >= 0 else None


def extra_str(m: RequestMetrics, key: str) -> str | None:
    """``m.extra[key]`` when it is a non-empty string, else None."""
    value = m.extra.get(key)
    return value if isinstance(value, str) and value else None


def extra_strs(m: RequestMetrics, key: str) -> tuple[str, ...]:
    """The strings of the list ``m.extra[key]`` (other items and other types ignored)."""
    value = m.extra.get(key)
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(item for item in value if isinstance(item, str) and item)


def waste_tokens(m: RequestMetrics) -> dict[str, int]:
    """The record's waste signals that are ints > 0 (unknown categories kept)."""
    out: dict[str, int] = {}
    for name, value in m.waste_signals.items():
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            out[str(name)] = value
    return out


def projected_saved(m: RequestMetrics) -> int | None:
    """For an audit record: input tokens optimize would have removed; None when unknown."""
    if m.mode != "audit":
        return None
    after = extra_int(m, "projected_tokens_after")
    return None if after is None else max(0, m.tokens_input_before - after)


def sent_tokens(m: RequestMetrics) -> int:
    """Input tokens of the request as sent: the provider's count when recorded, else ours."""
    usage = extra_int(m, "usage_input_tokens")
    return m.tokens_input_after if usage is None else usage

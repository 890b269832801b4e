"""Records kept by the metrics stores: one ``RequestMetrics`` per request, and a ``Summary``.

Both are frozen dataclasses with slots. ``RequestMetrics.to_dict()`` gives a JSON-ready
dict (timestamps as ISO-8601 strings) and ``RequestMetrics.from_dict()`` reads it back
to an equal record.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from headroom_core.config import MODES as CONFIG_MODES
from headroom_core.errors import InputError

__all__ = ["MODES", "SENT_MODES", "RequestMetrics", "Summary", "from_epoch_us", "to_epoch_us"]

#: What a record's ``mode`` may say: the modes of :data:`headroom_core.config.MODES`, and
#: ``simulate`` for a preview that sent nothing.
MODES: frozenset[str] = frozenset((*CONFIG_MODES, "simulate"))
#: Modes whose request went to the model: only their records count in token, cost and
#: savings totals (a ``simulate`` record is a preview; what it would save is a projection).
SENT_MODES: frozenset[str] = frozenset(CONFIG_MODES)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)

_INT_FIELDS = ("tokens_input_before", "tokens_input_after")
_OPTIONAL_INT_FIELDS = ("tokens_output", "cached_tokens")
_OPTIONAL_FLOAT_FIELDS = ("cost_before", "cost_after")
_STR_FIELDS = ("request_id", "model", "mode", "provider", "source")


def to_epoch_us(ts: datetime) -> int:
    """Whole microseconds since the Unix epoch for an aware datetime (exact, sortable)."""
    return (ts - _EPOCH) // _ONE_US


def from_epoch_us(us: int) -> datetime:
    """Inverse of :func:`to_epoch_us`: an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


def _parse_timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise InputError(f"RequestMetrics.timestamp: expected an ISO-8601 string, got {value!r}")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"RequestMetrics.timestamp: not ISO-8601: {value!r}") from exc


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class RequestMetrics:
    """What happened to one request: tokens and cost before and after, and what was done.

    ``timestamp`` must be timezone-aware; it is normalised to UTC. ``waste_signals`` and
    ``extra`` are copied into plain dicts and must hold JSON-serialisable values to be
    stored. They take no part in ``hash()``, so records stay hashable.
    """

    request_id: str
    timestamp: datetime
    model: str
    mode: str
    tokens_input_before: int
    tokens_input_after: int
    tokens_output: int | None = None
    cached_tokens: int | None = None
    cost_before: float | None = None
    cost_after: float | None = None
    transforms_applied: tuple[str, ...] = ()
    waste_signals: Mapping[str, int] = field(default_factory=dict, hash=False)
    stream: bool = False
    provider: str = ""
    source: str = ""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in _STR_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise InputError(
                    f"RequestMetrics.{name}: expected str, got {getattr(self, name)!r}"
                )
        if self.mode not in MODES:
            raise InputError(
                f"RequestMetrics.mode: expected one of {sorted(MODES)}, got {self.mode!r}"
            )
        if not isinstance(self.timestamp, datetime) or self.timestamp.utcoffset() is None:
            raise InputError(
                f"RequestMetrics.timestamp: expected a timezone-aware datetime, "
                f"got {self.timestamp!r}"
            )
        for name in _INT_FIELDS + _OPTIONAL_INT_FIELDS:
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_INT_FIELDS:
                continue
            if not _is_int(value) or value < 0:
                raise InputError(f"RequestMetrics.{name}: expected an int >= 0, got {value!r}")
        for name in _OPTIONAL_FLOAT_FIELDS:
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, (int, float)) or isinstance(value, bool)
            ):
                raise InputError(f"RequestMetrics.{name}: expected a number, got {value!r}")
        if self.error is not None and not isinstance(self.error, str):
            raise InputError(f"RequestMetrics.error: expected str or None, got {self.error!r}")
        # Normalise containers; frozen, so go through object.__setattr__.
        object.__setattr__(self, "timestamp", self.timestamp.astimezone(timezone.utc))
        object.__setattr__(self, "transforms_applied", tuple(self.transforms_applied))
        object.__setattr__(self, "waste_signals", dict(self.waste_signals))
        object.__setattr__(self, "extra", dict(self.extra))
        object.__setattr__(self, "stream", bool(self.stream))
        for name in _OPTIONAL_FLOAT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))

    @classmethod
    def new(
        cls,
        *,
        model: str,
        mode: str,
        tokens_input_before: int,
        tokens_input_after: int,
        tokens_output: int | None = None,
        cached_tokens: int | None = None,
        cost_before: float | None = None,
        cost_after: float | None = None,
        transforms_applied: tuple[str, ...] = (),
        waste_signals: Mapping[str, int] | None = None,
        stream: bool = False,
        provider: str = "",
        source: str = "",
        error: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> RequestMetrics:
        """A record with a fresh ``request_id`` (uuid4 hex) and ``timestamp`` (now, UTC)."""
        return cls(
            request_id=uuid.uuid4().hex,
            timestamp=datetime.now(timezone.utc),
            model=model,
            mode=mode,
            tokens_input_before=tokens_input_before,
            tokens_input_after=tokens_input_after,
            tokens_output=tokens_output,
            cached_tokens=cached_tokens,
            cost_before=cost_before,
            cost_after=cost_after,
            transforms_applied=tuple(transforms_applied),
            waste_signals=dict(waste_signals or {}),
            stream=stream,
            provider=provider,
            source=source,
            error=error,
            extra=dict(extra or {}),
        )

    @property
    def sent(self) -> bool:
        """Whether the request went to the model (False for a ``simulate`` preview)."""
        return self.mode in SENT_MODES

    @property
    def tokens_saved(self) -> int:
        """Input tokens removed from what was sent; never negative; 0 for a preview (see
        ``projected_saved``)."""
        return self.projected_saved if self.sent else 0

    @property
    def projected_saved(self) -> int:
        """``tokens_input_before - tokens_input_after``, never negative, sent or not."""
        return max(0, self.tokens_input_before - self.tokens_input_after)

    @property
    def savings_percent(self) -> float:
        """``tokens_saved`` as a percentage of ``tokens_input_before`` (0.0 when that is 0)."""
        if self.tokens_input_before <= 0:
            return 0.0
        return 100.0 * self.tokens_saved / self.tokens_input_before

    @property
    def cost_saved(self) -> float | None:
        """``cost_before - cost_after`` (never negative), or None when either is unknown;
        0.0 for a preview, which saved nothing."""
        if self.cost_before is None or self.cost_after is None:
            return None
        return max(0.0, self.cost_before - self.cost_after) if self.sent else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``from_dict`` turns it back into an equal record."""
        return {
            "request_id": self.request_id,
            "timestamp": self.timestamp.isoformat(),
            "model": self.model,
            "mode": self.mode,
            "tokens_input_before": self.tokens_input_before,
            "tokens_input_after": self.tokens_input_after,
            "tokens_output": self.tokens_output,
            "cached_tokens": self.cached_tokens,
            "cost_before": self.cost_before,
            "cost_after": self.cost_after,
            "transforms_applied": list(self.transforms_applied),
            "waste_signals": dict(self.waste_signals),
            "stream": self.stream,
            "provider": self.provider,
            "source": self.source,
            "error": self.error,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestMetrics:
        """Read a dict made by ``to_dict``. Unknown or missing required keys raise InputError."""
        if not isinstance(data, Mapping):
            raise InputError(f"RequestMetrics.from_dict: expected a mapping, got {data!r}")
        unknown = set(data) - _FIELD_NAMES
        if unknown:
            raise InputError(f"RequestMetrics.from_dict: unknown keys {sorted(unknown)}")
        missing = _REQUIRED_NAMES - set(data)
        if missing:
            raise InputError(f"RequestMetrics.from_dict: missing keys {sorted(missing)}")
        values = dict(data)
        values["timestamp"] = _parse_timestamp(values["timestamp"])
        for name in ("transforms_applied", "waste_signals", "extra"):
            if values.get(name) is None:
                values.pop(name, None)
        transforms = values.get("transforms_applied", ())
        if isinstance(transforms, (str, bytes)) or not isinstance(transforms, (list, tuple)):
            raise InputError(
                f"RequestMetrics.transforms_applied: expected a list, got {transforms!r}"
            )
        values["transforms_applied"] = tuple(transforms)
        for name in ("waste_signals", "extra"):
            if not isinstance(values.get(name, {}), Mapping):
                raise InputError(f"RequestMetrics.{name}: expected a mapping, got {values[name]!r}")
        return cls(**values)


_FIELD_NAMES: frozenset[str] = frozenset(RequestMetrics.__dataclass_fields__)
_REQUIRED_NAMES: frozenset[str] = frozenset(
    {"request_id", "timestamp", "model", "mode", "tokens_input_before", "tokens_input_after"}
)


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals over a set of requests.

    ``requests``, ``by_mode`` and the timestamps count every record; the token and cost
    totals and the savings count only requests that were sent (``SENT_MODES``: a
    ``simulate`` record is a preview, nothing was sent or saved).
    ``total_tokens_saved`` and ``cost_saved`` add up the per-request, never-negative
    savings; ``cost_saved`` counts only requests whose cost before and after are both known.
    Costs that are unknown (None) count as 0 in the cost totals. ``dropped_records``: rows
    this process recorded but could not write (a shared store that was down too long);
    always 0 for the local stores.

    Also read as a mapping, as the reference API's summary dict is:
    ``summary["total_tokens_saved"]``, ``summary.keys()``, ``dict(summary)``.
    """

    requests: int
    total_tokens_before: int
    total_tokens_after: int
    total_tokens_saved: int
    savings_percent: float
    total_cost_before: float
    total_cost_after: float
    cost_saved: float
    by_mode: dict[str, int] = field(default_factory=dict, hash=False)
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None
    #: Stored lines that could not be read as a record (a torn or corrupt line in a JSON
    #: Lines file), skipped rather than failing the whole read.
    skipped_records: int = 0
    #: Rows this process recorded but could not write (a shared store down too long).
    dropped_records: int = 0

    @classmethod
    def empty(cls) -> Summary:
        """The summary of no requests."""
        return cls(0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)

    def keys(self) -> tuple[str, ...]:
        return _SUMMARY_KEYS

    def __getitem__(self, key: str) -> Any:
        if key not in _SUMMARY_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in _SUMMARY_KEYS

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in _SUMMARY_KEYS else default


_SUMMARY_KEYS: tuple[str, ...] = tuple(Summary.__dataclass_fields__)

"""What the shared (network) stores have in common: options, health, and failing open.

A PostgreSQL or Redis store can be down when it is opened or go away mid-run. The rules
(README, "Team-scale stores"):

- a call on the request path (``put``/``get`` of an original, a TOIN read or write) waits
  at most ``timeout_ms`` (default 50 ms) for the store; past it, or on any error, the
  call fails and the :class:`Breaker` treats the store as down: for ``retry_s`` every
  call fails at once, then one call tries again;
- what is written (metrics rows, TOIN counts, originals cut while the store is down) is
  buffered in memory, bounded, and written by a background thread when the store is
  back (:mod:`headroom_core._outbox`); what does not fit is dropped and counted;
- :class:`~headroom_core._health.StoreStats` reports this per store and process
  (``store.store_stats()``).

Options are fields of :class:`RemoteOptions`, given as query parameters of the store URL
(``postgresql://u@h/db?timeout_ms=20&buffer=50000``); the other parameters go to the
driver (``sslmode=require``, ...).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._health import Breaker, StoreStats, log
from ._store_url import redact
from .errors import ConfigError

__all__ = ["Breaker", "RemoteOptions", "StoreStats", "log", "redact", "split_options"]


class RemoteOptions(BaseModel):
    """Settings of a PostgreSQL or Redis store, read from its URL's query parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_ms: int = Field(
        50,
        ge=1,
        le=60_000,
        description="Longest a call on the request path waits for the store before failing open.",
    )
    retry_s: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="After a failure, calls fail at once for this long; then one tries again.",
    )
    read_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Longest a query off the request path (summary, report, stats) may run.",
    )
    buffer: int = Field(
        10_000,
        ge=1,
        description="Rows (metrics, TOIN counts) held in memory while the store cannot be "
        "written; past it new rows are dropped and counted.",
    )
    batch: int = Field(500, ge=1, description="Rows per write of the background writer.")
    flush_ms: int = Field(
        100, ge=1, description="How long the background writer gathers rows before a write."
    )
    pool_max: int = Field(4, ge=1, le=100, description="PostgreSQL connections per process.")
    spill: int = Field(
        1_000,
        ge=0,
        description="Originals kept in this process while the store cannot be written, "
        "written to it when it is back (0: a cut that cannot be stored is not made).",
    )
    ttl_s: int | None = Field(
        None,
        ge=1,
        description="Originals: forgotten this many seconds after their last use (None: "
        "kept until evicted by the size bounds or Redis's maxmemory policy).",
    )
    max_entries: int = Field(
        100_000, ge=1, description="PostgreSQL originals: most originals kept (LRU out)."
    )
    max_bytes: int = Field(
        2_000_000_000, ge=1, description="PostgreSQL originals: most UTF-8 bytes kept (LRU out)."
    )
    prefix: str = Field(
        "headroom", min_length=1, description="Redis: the prefix of every key written."
    )

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000.0


_OPTION_NAMES = frozenset(RemoteOptions.model_fields)


def split_options(what: str, url: str) -> tuple[str, RemoteOptions]:
    """(the URL for the driver, our options) from ``url``; ConfigError names a bad option."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError as exc:
        raise ConfigError(f"{what} URL {redact(url)!r}: {exc}") from exc
    ours = {k: v for k, v in query if k in _OPTION_NAMES}
    theirs = [(k, v) for k, v in query if k not in _OPTION_NAMES]
    if "ttl_s" in ours and ours["ttl_s"].lower() in ("", "none"):
        ours.pop("ttl_s")
    try:
        options = RemoteOptions.model_validate(ours)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{what} URL {redact(url)!r}: {problems}") from exc
    clean = urlunsplit(parts._replace(query=urlencode(theirs)))
    return clean, options

"""Metrics reports: what Headroom saved, where the waste is, and what to do about it.

:func:`generate_report` reads every record of a metrics store and renders one report,
as a self-contained HTML page (needs jinja2: ``pip install "headroom-context[reports]"``)
or as Markdown (no extra dependency). The numbers come from :mod:`.analysis`; both
formats show the same ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from headroom_core._store_url import redact
from headroom_core.errors import ConfigError, StorageError
from headroom_core.metrics import DEFAULT_METRICS_URL, MetricsStore, RequestMetrics, open_store
from headroom_core.metrics._aggregates import AggregatingStore, ReportAggregates, aggregate_records

from ._extra import price_for, window_for
from .analysis import PERIODS, ReportData, analyze_aggregates

__all__ = ["FORMATS", "PERIODS", "ReportData", "generate_report", "load_records"]

_FILE_SCHEMES = ("sqlite", "jsonl")


def _render_html(data: ReportData) -> str:
    from .html import render_html

    return render_html(data)


def _render_markdown(data: ReportData) -> str:
    from .markdown import render_markdown

    return render_markdown(data)


# format name -> renderer
_RENDERERS: dict[str, Callable[[ReportData], str]] = {
    "html": _render_html,
    "markdown": _render_markdown,
    "md": _render_markdown,
}
FORMATS: tuple[str, ...] = tuple(_RENDERERS)


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ConfigError(f"{name}: expected one of {options}, got {value!r}")
    return value.lower()


def _check(top: object, since: object) -> None:
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ConfigError(f"top: expected an int >= 0, got {top!r}")
    if since is not None and (not isinstance(since, datetime) or since.utcoffset() is None):
        raise ConfigError(f"since: expected a timezone-aware datetime or None, got {since!r}")


def _missing_file(url: str) -> Path | None:
    """The file of a file-backed store URL when it does not exist (opening would create it)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in _FILE_SCHEMES and rest.startswith("/") and rest != "/":
        path = Path(rest[1:])
        if not path.is_file():
            return path
    return None


def _aggregates(
    store: MetricsStore, since: datetime | None, period: str, top: int
) -> ReportAggregates:
    """The store's own aggregates (SQL on PostgreSQL), else computed from its records."""
    if isinstance(store, AggregatingStore):
        return store.report_aggregates(
            since=since, period=period, top=top, window_for=window_for, price_for=price_for
        )
    records = load_records(store, since)
    return aggregate_records(
        records, period=period, top=top, window_for=window_for, price_for=price_for
    )


def load_records(store: MetricsStore, since: datetime | None = None) -> list[RequestMetrics]:
    """Every record at or after ``since``, oldest first (ties in the order recorded)."""
    return list(reversed(store.get_metrics(limit=None, since=since)))


def generate_report(
    store_url: str | None = None,
    format: str = "html",
    period: str = "day",
    output_path: str | os.PathLike[str] | None = None,
    *,
    since: datetime | None = None,
    top: int = 10,
    store: MetricsStore | None = None,
    missing_ok: bool = True,
) -> str:
    """Render a report of the store at ``store_url`` (default ``sqlite:///headroom.db``).

    ``format``: ``"html"`` or ``"markdown"`` (``"md"``); ``period``: ``"hour"``,
    ``"day"``, ``"week"`` or ``"month"`` (UTC buckets of the savings table); ``top``: how
    many high-waste requests to list; ``since``: only records at or after it. Pass an open
    ``store`` instead of a URL to report on it (it is not closed). Returns the text and
    also writes it, UTF-8, to ``output_path`` when given.

    A store file that does not exist yet (nothing recorded so far) gives an empty report
    that says so, and is not created; ``missing_ok=False`` makes it a StorageError instead
    (the ``headroom report`` command, where a mistyped path is the likelier cause).

    Raises ConfigError for a bad argument (naming it and the allowed values), StorageError
    when the store cannot be read, ImportError when ``format`` is HTML and jinja2 is not
    installed.
    """
    fmt = _choice("format", format, FORMATS)
    period = _choice("period", period, PERIODS)
    _check(top, since)
    if store is not None and store_url is not None:
        raise ConfigError("store_url and store: pass one, not both")
    if store is not None:
        agg = _aggregates(store, since, period, top)
        label = type(store).__name__
    else:
        url = DEFAULT_METRICS_URL if store_url is None else store_url
        if not isinstance(url, str):
            raise ConfigError(f"store_url: expected a string, got {url!r}")
        missing = _missing_file(url)
        if missing is None:
            with open_store(url) as opened:
                agg = _aggregates(opened, since, period, top)
            label = redact(url)
        elif missing_ok:
            agg = aggregate_records(
                [], period=period, top=top, window_for=window_for, price_for=price_for
            )
            label = f"{redact(url)} (no such file yet: nothing recorded)"
        else:
            raise StorageError(f"metrics store {url!r}: no such file {str(missing)!r}")
    data = analyze_aggregates(agg, period=period, top=top, store_label=label, since=since)
    text = _RENDERERS[fmt](data)
    if output_path is not None:
        Path(output_path).write_text(text, encoding="utf-8")
    return text

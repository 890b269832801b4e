"""The report's aggregates as SQL on PostgreSQL: :func:`report_aggregates`.

Each query follows the definition of :func:`headroom_core.metrics._aggregates.aggregate_records`
over the columns the store derives from every record (``waste``, ``projected_saved``,
``sent_tokens``, ``prefix_hash``, ...). Record order (for "first seen" ties and prefix
changes) is ``(ts, seq)``. All queries read one snapshot (REPEATABLE READ); only the
``top`` rows are loaded whole.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from headroom_core._postgres import Database, psycopg
from headroom_core.metrics._aggregates import (
    NEAR_LIMIT,
    PERIODS,
    AuditRow,
    ModeRow,
    NearRow,
    PeriodRow,
    PrefixRow,
    ReportAggregates,
)
from headroom_core.metrics._pg_schema import SELECT_RECORD, SENT, TABLE, record_of, summary_in
from headroom_core.metrics.records import Summary

__all__ = ["report_aggregates"]

_WHERE = "(%(since)s::timestamptz IS NULL OR ts >= %(since)s)"
_ORDERED = f"SELECT *, row_number() OVER (ORDER BY ts, seq) AS pos FROM {TABLE} WHERE {_WHERE}"
_GAP = "GREATEST(tokens_input_before - tokens_input_after, 0)"
# Saved: only what was sent (a simulate record is a preview; its gap is a projection).
_SAVED = f"(CASE WHEN {SENT} THEN {_GAP} ELSE 0 END)"
_PROJECTED = f"(CASE WHEN mode = 'simulate' THEN {_GAP} ELSE projected_saved END)"
_CACHE_BASE = (
    "COALESCE(SUM(GREATEST(sent_tokens, cached_tokens)) "
    "FILTER (WHERE cached_tokens IS NOT NULL), 0)"
)

_OVERVIEW = f"""
SELECT COALESCE(SUM(tokens_output), 0),
       COUNT(*) FILTER (WHERE cost_before IS NOT NULL AND cost_after IS NOT NULL),
       COALESCE(SUM(cached_tokens), 0),
       {_CACHE_BASE},
       COUNT(*) FILTER (WHERE error IS NOT NULL),
       COUNT(*) FILTER (WHERE measured),
       COALESCE(SUM(tokens_input_before) FILTER (WHERE measured), 0)
FROM {TABLE} WHERE {_WHERE}"""

_MODES = f"""
SELECT mode, COUNT(*), SUM(tokens_input_before), SUM(tokens_input_after), SUM({_SAVED}),
       COALESCE(SUM({_PROJECTED}), 0)
FROM {TABLE} WHERE {_WHERE} GROUP BY mode ORDER BY mode COLLATE "C" """

_SOURCES = f"""
SELECT COALESCE(NULLIF(source, ''), 'unknown'), COUNT(*), MIN(pos)
FROM ({_ORDERED}) r GROUP BY 1 ORDER BY 2 DESC, 3"""

_WASTE = f"""
SELECT w.key, SUM(w.value::bigint)
FROM {TABLE}, jsonb_each_text(waste) AS w WHERE {_WHERE} GROUP BY w.key"""

_PERIODS = f"""
SELECT date_trunc(%(period)s, ts AT TIME ZONE 'UTC') AS start, COUNT(*),
       COALESCE(SUM(tokens_input_before) FILTER (WHERE {SENT}), 0),
       COALESCE(SUM(tokens_input_after) FILTER (WHERE {SENT}), 0), SUM({_SAVED}),
       COALESCE(SUM(GREATEST(cost_before - cost_after, 0)) FILTER (WHERE {SENT}), 0),
       COUNT(projected_saved), COALESCE(SUM(projected_saved), 0)
FROM {TABLE} WHERE {_WHERE} GROUP BY 1 ORDER BY 1"""

_TOP = f"""
{SELECT_RECORD} WHERE {_WHERE}
  AND (waste_total > 0 OR {_SAVED} > 0 OR projected_saved > 0)
ORDER BY waste_total DESC, GREATEST({_SAVED}, COALESCE(projected_saved, 0)) DESC,
         ts DESC, seq ASC
LIMIT %(top)s"""

_PREFIX = f"""
WITH p AS (
    SELECT source, provider, model, prefix_hash AS raw,
           COALESCE(prefix_hash_aligned, prefix_hash) AS aligned,
           prefix_tokens, dynamic_values, cached_tokens, sent_tokens,
           LAG(prefix_hash) OVER w AS prev_raw,
           LAG(COALESCE(prefix_hash_aligned, prefix_hash)) OVER w AS prev_aligned
    FROM {TABLE} WHERE {_WHERE} AND prefix_hash IS NOT NULL
    WINDOW w AS (PARTITION BY source, provider, model ORDER BY ts, seq)
)
SELECT source, provider, model, COUNT(*),
       COUNT(*) FILTER (WHERE raw <> prev_raw),
       COUNT(*) FILTER (WHERE aligned <> prev_aligned),
       COUNT(DISTINCT raw), COUNT(DISTINCT aligned),
       COALESCE(SUM(dynamic_values), 0),
       COALESCE(SUM(prefix_tokens), 0), COUNT(prefix_tokens),
       COALESCE(SUM(prefix_tokens) FILTER (WHERE raw <> prev_raw AND aligned = prev_aligned), 0),
       COALESCE(SUM(cached_tokens), 0),
       {_CACHE_BASE}
FROM p GROUP BY source, provider, model"""

_MODELS = f"SELECT DISTINCT provider, model FROM {TABLE} WHERE {_WHERE}"

_NEAR = f"""
WITH w AS (SELECT * FROM unnest(%(providers)s::text[], %(models)s::text[], %(windows)s::bigint[])
           AS w(provider, model, win)),
r AS (SELECT o.provider, o.model, w.win, o.pos,
             o.sent_tokens + COALESCE(o.tokens_output, 0) AS used
      FROM ({_ORDERED}) o JOIN w ON w.provider = o.provider AND w.model = o.model)
SELECT model, win, COUNT(*), MAX(used), MIN(pos), MAX(pos)
FROM r WHERE used::float8 / win >= %(near)s::float8
GROUP BY provider, model, win"""

_FAILURES = f"""
SELECT left(u.f, 200), COUNT(*), MIN(ARRAY[r.pos, u.ord])
FROM ({_ORDERED}) r, unnest(r.failures) WITH ORDINALITY AS u(f, ord)
WHERE u.f <> '' GROUP BY 1 ORDER BY 2 DESC, 3"""

_ERRORS = f"""
SELECT left(error, 200), COUNT(*), MIN(pos)
FROM ({_ORDERED}) r WHERE error IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 3"""

_AUDIT = f"""
SELECT provider, model, COUNT(*), SUM(projected_saved), SUM(tokens_input_before)
FROM {TABLE} WHERE {_WHERE} AND mode = 'audit' AND projected_saved > 0
GROUP BY provider, model"""


def _near(
    c: psycopg.Connection[Any], params: dict[str, Any], window_for: Callable[[str, str], Any]
) -> tuple[NearRow, ...]:
    known = []
    for provider, model in c.execute(_MODELS, params).fetchall():
        window = window_for(provider, model)
        if window is not None and window > 0:
            known.append((provider, model, int(window)))
    if not known:
        return ()
    args = {
        **params,
        "providers": [k[0] for k in known],
        "models": [k[1] for k in known],
        "windows": [k[2] for k in known],
        "near": NEAR_LIMIT,
    }
    per_model: dict[str, list[int]] = {}  # model -> [requests, window, max used, first, last]
    for model, win, n, used, first, last in c.execute(_NEAR, args).fetchall():
        row = per_model.setdefault(model, [0, 0, 0, first, -1])
        row[0] += int(n)
        row[2] = max(row[2], int(used))
        row[3] = min(row[3], first)
        if last > row[4]:  # the window of the latest qualifying request, as record by record
            row[1], row[4] = int(win), last
    ordered = sorted(per_model.items(), key=lambda kv: (-kv[1][0], kv[1][3]))
    return tuple(NearRow(model, r[0], r[1], r[2]) for model, r in ordered)


def _audit(rows: list[tuple[Any, ...]], price_for: Callable[[str, str], float | None]) -> AuditRow:
    priced = [
        float(saved) * price
        for provider, model, _, saved, _ in rows
        if (price := price_for(provider, model)) is not None
    ]
    return AuditRow(
        requests=sum(int(r[2]) for r in rows),
        projected_saved=sum(int(r[3]) for r in rows),
        tokens_before=sum(int(r[4]) for r in rows),
        priced_saving=sum(priced) if priced else None,
    )


def _query(
    c: psycopg.Connection[Any],
    params: dict[str, Any],
    window_for: Callable[[str, str], int | None],
    price_for: Callable[[str, str], float | None],
) -> ReportAggregates:
    summary: Summary = summary_in(c, params["since"])
    out, priced, cached, base, errors, measured, measured_in = c.execute(
        _OVERVIEW, params
    ).fetchone() or (0, 0, 0, 0, 0, 0, 0)
    waste = {str(k): int(v) for k, v in c.execute(_WASTE, params).fetchall()}
    return ReportAggregates(
        summary=summary,
        modes=tuple(
            ModeRow(str(m), int(n), int(b), int(a), int(s), int(p))
            for m, n, b, a, s, p in c.execute(_MODES, params).fetchall()
        ),
        sources=tuple((str(s), int(n)) for s, n, _ in c.execute(_SOURCES, params).fetchall()),
        tokens_output=int(out),
        priced_requests=int(priced),
        cached_tokens=int(cached),
        cache_base_tokens=int(base),
        errors=int(errors),
        waste={k: v for k, v in waste.items() if v},
        measured_requests=int(measured),
        measured_input_tokens=int(measured_in),
        periods=tuple(
            PeriodRow(
                start.replace(tzinfo=timezone.utc),
                int(n),
                int(b),
                int(a),
                int(s),
                float(cs),
                int(ar),
                int(ps),
            )
            for start, n, b, a, s, cs, ar, ps in c.execute(_PERIODS, params).fetchall()
        ),  # fmt: skip
        top=tuple(record_of(r) for r in c.execute(_TOP, params).fetchall()),
        prefix_groups=tuple(
            PrefixRow(str(s), str(p), str(m), *(int(x) for x in rest))
            for s, p, m, *rest in c.execute(_PREFIX, params).fetchall()
        ),
        near=_near(c, params, window_for),
        failures=tuple((str(f), int(n)) for f, n, _ in c.execute(_FAILURES, params).fetchall()),
        provider_errors=tuple(
            (str(e), int(n)) for e, n, _ in c.execute(_ERRORS, params).fetchall()
        ),
        audit=_audit(c.execute(_AUDIT, params).fetchall(), price_for),
    )


def report_aggregates(
    db: Database,
    *,
    since: datetime | None,
    period: str,
    top: int,
    window_for: Callable[[str, str], int | None],
    price_for: Callable[[str, str], float | None],
) -> ReportAggregates:
    """The report's aggregates of the rows at or after ``since``, in one snapshot."""
    if period not in PERIODS:
        raise ValueError(f"period: expected one of {PERIODS}, got {period!r}")
    params = {"since": since, "period": period, "top": top}

    def run(c: psycopg.Connection[Any]) -> ReportAggregates:
        with c.transaction():
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            return _query(c, params, window_for, price_for)

    return db.read(run)

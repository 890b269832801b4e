"""The PostgreSQL metrics table: its migrations, and rows to and from records.

Besides the record's own fields each row keeps a few columns derived from it (waste per
category, projected saving, input as sent, prefix hashes, failures) with the readers the
report uses, so the report's SQL (:mod:`._pg_report`) agrees with the other stores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from headroom_core._postgres import psycopg
from headroom_core.errors import InputError
from headroom_core.metrics._base import dumps
from headroom_core.metrics._fields import (
    extra_int,
    extra_str,
    extra_strs,
    projected_saved,
    sent_tokens,
    waste_tokens,
)
from headroom_core.metrics.records import SENT_MODES, RequestMetrics, Summary

__all__ = [
    "INSERT",
    "MIGRATIONS",
    "SELECT_RECORD",
    "SENT",
    "TABLE",
    "record_of",
    "row_of",
    "summary_in",
]

TABLE = "headroom_request_metrics"

#: (version, statements): the schema of the ``metrics`` component, applied in order.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            f"""CREATE TABLE {TABLE} (
                seq                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                writer              TEXT             NOT NULL,
                wseq                BIGINT           NOT NULL,
                request_id          TEXT             NOT NULL,
                ts                  TIMESTAMPTZ      NOT NULL,
                model               TEXT             NOT NULL,
                mode                TEXT             NOT NULL,
                tokens_input_before BIGINT           NOT NULL,
                tokens_input_after  BIGINT           NOT NULL,
                tokens_output       BIGINT,
                cached_tokens       BIGINT,
                cost_before         DOUBLE PRECISION,
                cost_after          DOUBLE PRECISION,
                transforms_applied  TEXT             NOT NULL,  -- JSON, as recorded
                waste_signals       TEXT             NOT NULL,  -- JSON, as recorded
                stream              BOOLEAN          NOT NULL,
                provider            TEXT             NOT NULL,
                source              TEXT             NOT NULL,
                error               TEXT,
                extra               TEXT             NOT NULL,  -- JSON, as recorded
                -- derived from the record for the report's aggregates
                measured            BOOLEAN          NOT NULL,  -- has waste signals
                waste               JSONB            NOT NULL,  -- positive int waste per category
                waste_total         BIGINT           NOT NULL,
                projected_saved     BIGINT,                     -- audit rows only
                sent_tokens         BIGINT           NOT NULL,
                prefix_hash         TEXT,
                prefix_hash_aligned TEXT,
                prefix_tokens       BIGINT,
                dynamic_values      BIGINT,
                failures            TEXT[]           NOT NULL,
                UNIQUE (writer, wseq)
            )""",
            f"CREATE INDEX ix_{TABLE}_ts ON {TABLE} (ts, seq)",
            f"CREATE INDEX ix_{TABLE}_model_ts ON {TABLE} (model, ts)",
            f"CREATE INDEX ix_{TABLE}_prefix ON {TABLE} (source, provider, model, ts, seq) "
            "WHERE prefix_hash IS NOT NULL",
        ),
    ),
)

_RECORD_COLUMNS = (
    "request_id", "ts", "model", "mode", "tokens_input_before", "tokens_input_after",
    "tokens_output", "cached_tokens", "cost_before", "cost_after", "transforms_applied",
    "waste_signals", "stream", "provider", "source", "error", "extra",
)  # fmt: skip
_DERIVED_COLUMNS = (
    "measured", "waste", "waste_total", "projected_saved", "sent_tokens", "prefix_hash",
    "prefix_hash_aligned", "prefix_tokens", "dynamic_values", "failures",
)  # fmt: skip
_ALL = ("writer", "wseq", *_RECORD_COLUMNS, *_DERIVED_COLUMNS)
INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(_ALL)}) VALUES ({', '.join('%s' for _ in _ALL)}) "
    "ON CONFLICT (writer, wseq) DO NOTHING"
)
SELECT_RECORD = f"SELECT {', '.join(_RECORD_COLUMNS)} FROM {TABLE}"

#: Records of requests that were sent: only they count in tokens, costs and savings
#: (a 'simulate' record is a preview; see Summary).
SENT = "mode IN ({})".format(", ".join(f"'{m}'" for m in sorted(SENT_MODES)))
_SUMMARY = f"""
SELECT COUNT(*),
       COALESCE(SUM(tokens_input_before) FILTER (WHERE {SENT}), 0),
       COALESCE(SUM(tokens_input_after) FILTER (WHERE {SENT}), 0),
       COALESCE(SUM(GREATEST(tokens_input_before - tokens_input_after, 0))
                FILTER (WHERE {SENT}), 0),
       COALESCE(SUM(cost_before) FILTER (WHERE {SENT}), 0),
       COALESCE(SUM(cost_after) FILTER (WHERE {SENT}), 0),
       COALESCE(SUM(GREATEST(cost_before - cost_after, 0)) FILTER (WHERE {SENT}), 0),
       MIN(ts),
       MAX(ts)
FROM {TABLE} WHERE (%(since)s::timestamptz IS NULL OR ts >= %(since)s)
"""
_BY_MODE = (
    f"SELECT mode, COUNT(*) FROM {TABLE} "
    "WHERE (%(since)s::timestamptz IS NULL OR ts >= %(since)s) GROUP BY mode"
)


def summary_in(c: psycopg.Connection[Any], since: datetime | None) -> Summary:
    """The Summary of the rows at or after ``since``, by two aggregate queries on ``c``."""
    params = {"since": since}
    totals = c.execute(_SUMMARY, params).fetchone()
    modes = c.execute(_BY_MODE, params).fetchall()
    count, before, after, saved, c_before, c_after, c_saved, first, last = totals or (
        (0,) * 7 + (None, None)
    )
    before, saved = int(before), int(saved)
    return Summary(
        requests=int(count),
        total_tokens_before=before,
        total_tokens_after=int(after),
        total_tokens_saved=saved,
        savings_percent=100.0 * saved / before if before > 0 else 0.0,
        total_cost_before=float(c_before),
        total_cost_after=float(c_after),
        cost_saved=float(c_saved),
        by_mode=dict(sorted((str(k), int(n)) for k, n in modes)),
        first_timestamp=first,
        last_timestamp=last,
    )


def _check_text(m: RequestMetrics, values: tuple[Any, ...]) -> None:
    """PostgreSQL text holds neither NUL nor lone surrogates: refuse such a record now
    (InputError) rather than lose it in the background."""
    for v in values:
        if isinstance(v, str):
            if "\x00" in v:
                raise InputError(
                    f"RequestMetrics {m.request_id}: PostgreSQL cannot store text holding "
                    "a NUL character"
                )
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError(
                    f"RequestMetrics {m.request_id}: text that is not valid Unicode: {exc}"
                ) from exc


def row_of(m: RequestMetrics) -> tuple[Any, ...]:
    """The record's columns then its derived columns (InputError if it cannot be stored)."""
    if not isinstance(m, RequestMetrics):
        raise InputError(f"record: expected RequestMetrics, got {type(m).__name__}")
    waste = waste_tokens(m)
    row = (
        m.request_id, m.timestamp, m.model, m.mode, m.tokens_input_before,
        m.tokens_input_after, m.tokens_output, m.cached_tokens, m.cost_before, m.cost_after,
        dumps(list(m.transforms_applied), m).decode(), dumps(dict(m.waste_signals), m).decode(),
        m.stream, m.provider, m.source, m.error, dumps(m.extra, m).decode(),
        bool(m.waste_signals), orjson.dumps(waste).decode(), sum(waste.values()),
        projected_saved(m), sent_tokens(m), extra_str(m, "prefix_hash"),
        extra_str(m, "prefix_hash_aligned"), extra_int(m, "prefix_tokens"),
        extra_int(m, "dynamic_values"), list(extra_strs(m, "failures")),
    )  # fmt: skip
    texts = (row[0], row[2], row[3], row[13], row[14], row[15], row[22], row[23])
    _check_text(m, (*texts, *row[26], *waste))
    if any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in (*row, *waste.values())):
        raise InputError(f"RequestMetrics {m.request_id}: a number beyond 64 bits")
    return row


def record_of(row: tuple[Any, ...]) -> RequestMetrics:
    v = dict(zip(_RECORD_COLUMNS, row, strict=True))
    v["timestamp"] = v.pop("ts")
    for name in ("transforms_applied", "waste_signals", "extra"):
        v[name] = orjson.loads(v[name])
    v["transforms_applied"] = tuple(v["transforms_applied"])
    return RequestMetrics(**v)

"""The Markdown report: the same sections and numbers as the HTML one, plain Python.

Request content is untrusted: table cells escape HTML (``<`` ``>`` ``&``, since Markdown
renderers pass raw HTML through), Markdown emphasis and link characters, and ``|``, and
fold newlines, so a preview can neither inject markup nor break a table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

from ._format import num, pct, share, ts, usd
from .analysis import ReportData
from .cache import PREFIX_CHANGE_COST

__all__ = ["md_text", "render_markdown"]

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md_text(value: object) -> str:
    """``value`` as inert Markdown text on one line."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", escape(text, quote=False))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _summary(data: ReportData) -> list[str]:
    ov = data.overview
    out = ["## 1. Summary", ""]
    if not ov.requests:
        return [*out, "There are no requests in this store.", ""]
    modes = ", ".join(f"{m.mode} {num(m.requests)}" for m in ov.modes)
    out += [
        f"- Requests: {num(ov.requests)} ({modes})",
        f"- Input tokens: {num(ov.tokens_before)} before, {num(ov.tokens_after)} after, "
        f"{num(ov.tokens_saved)} saved ({pct(ov.savings_percent)})",
        f"- Cost at list price ({num(ov.priced_requests)} of {num(ov.requests)} requests priced): "
        f"{usd(ov.cost_before)} before, {usd(ov.cost_after)} after, {usd(ov.cost_saved)} saved",
        f"- Provider-cached input: {share(ov.cached_share)} "
        f"({num(ov.cached_tokens)} of {num(ov.cache_base_tokens)} tokens)",
        f"- Provider errors: {num(ov.errors)}; output tokens: {num(ov.tokens_output)}",
        f"- Sources: {', '.join(f'{md_text(s)} ({num(n)})' for s, n in ov.sources)}",
        f"- Period covered: {ts(ov.first)} to {ts(ov.last)}",
        "",
    ]
    rows = [
        [m.mode, num(m.requests), num(m.tokens_before), num(m.tokens_after), num(m.tokens_saved),
         num(m.projected_saved) if m.mode in ("audit", "simulate") else ""]
        for m in ov.modes
    ]  # fmt: skip
    header = ["Mode", "Requests", "Tokens before", "Tokens after", "Saved",
              "Projected (audit, simulate)"]  # fmt: skip
    return out + _table(header, rows)


def _waste(data: ReportData) -> list[str]:
    w = data.waste
    out = ["## 2. Waste by category", ""]
    if not w.measured_requests:
        return [*out, "No request recorded waste signals.", ""]
    rows = [[md_text(b.label), num(b.tokens), pct(b.percent)] for b in w.bars]
    rows.append(["**Total**", num(w.total), pct(w.percent)])
    note = (
        f"Percentages are of the {num(w.measured_input_tokens)} input tokens (before "
        f"compression) of the {num(w.measured_requests)} requests with waste signals."
    )
    return out + _table(["Category", "Tokens", "% of input"], rows) + [note, ""]


def _savings(data: ReportData) -> list[str]:
    out = [f"## 3. Savings over time (per {data.period}, UTC)", ""]
    if not data.buckets:
        return [*out, "No requests.", ""]
    rows = [
        [b.label, num(b.requests), num(b.tokens_before), num(b.tokens_after), num(b.tokens_saved),
         pct(b.savings_percent), usd(b.cost_saved),
         f"{num(b.projected_saved)} ({num(b.audit_requests)} req.)" if b.audit_requests else ""]
        for b in data.buckets
    ]  # fmt: skip
    header = ["Period", "Requests", "Tokens before", "Tokens after", "Saved", "Saved %",
              "Cost saved", "Projected (audit)"]  # fmt: skip
    return out + _table(header, rows)


def _top(data: ReportData) -> list[str]:
    out = [f"## 4. Top {data.top_limit} high-waste requests", ""]
    if not data.top:
        return [*out, "No request had waste or savings.", ""]
    rows = []
    for r in data.top:
        after = num(r.tokens_after)
        if r.projected_saved:
            after += f" (optimize: {num(r.tokens_before - r.projected_saved)})"
        largest = f"{r.top_category} ({num(r.top_category_tokens)})" if r.top_category else ""
        rows.append(
            [ts(r.timestamp), md_text(r.model), r.mode, md_text(r.source or "unknown"),
             num(r.tokens_before), after, num(r.waste_total), md_text(largest),
             md_text(r.preview)]
        )  # fmt: skip
    header = ["Time", "Model", "Mode", "Source", "Before", "After", "Waste", "Largest waste",
              "Preview"]  # fmt: skip
    return out + _table(header, rows, right_from=4)


def _cache(data: ReportData) -> list[str]:
    c = data.cache
    out = ["## 5. Cache alignment", "", PREFIX_CHANGE_COST, ""]
    if not c.groups:
        return [*out, "No request recorded a prefix hash (only the provider-client wrapper "
                      "records one).", ""]  # fmt: skip
    rows = [
        [md_text(g.source or "unknown"), md_text(g.provider or "unknown"), md_text(g.model),
         num(g.requests), num(g.raw_changes), num(g.aligned_changes),
         f"{num(g.distinct_raw)} / {num(g.distinct_aligned)}", num(g.dynamic_values),
         num(g.prefix_tokens_mean), share(g.cached_share)]
        for g in c.groups
    ]  # fmt: skip
    header = ["Source", "Provider", "Model", "Requests", "Prefix changes (sent)",
              "Changes (aligned)", "Distinct (sent / aligned)", "Dynamic values",
              "Prefix tokens (mean)", "Provider cached"]  # fmt: skip
    note = (
        f"{num(c.requests)} requests with a prefix hash: {num(c.raw_changes)} prefix changes as "
        f"sent, {num(c.aligned_changes)} after alignment; about {num(c.avoidable_tokens)} prefix "
        "tokens lost their cache to changes that alignment removes."
    )
    return out + _table(header, rows, right_from=3) + [note, ""]


def _recommendations(data: ReportData) -> list[str]:
    out = ["## 6. Recommendations", ""]
    if not data.recommendations:
        return [*out, data.no_recommendations, ""]
    out += [f"- **{md_text(r.title)}**: {md_text(r.detail)}" for r in data.recommendations]
    return [*out, ""]


def render_markdown(data: ReportData) -> str:
    """The report as GitHub-flavoured Markdown."""
    since = f" · since {ts(data.since)}" if data.since else ""
    head = [
        "# Headroom report",
        "",
        f"Store `{data.store_label.replace('`', '')}`{since} · by {data.period} · "
        f"generated {ts(data.generated_at)}",
        "",
    ]
    parts = [_summary, _waste, _savings, _top, _cache, _recommendations]
    lines = head + [line for part in parts for line in part(data)]
    return "\n".join(lines).rstrip("\n") + "\n"

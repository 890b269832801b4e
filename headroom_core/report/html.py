"""The HTML report: one self-contained file (inline CSS and SVG, no script, no URL).

jinja2 is an optional dependency (``pip install "headroom-context[reports]"``) and is
imported only here, when an HTML report is asked for. Autoescaping is on and undefined
names fail, so request content (previews, model names, errors) always reaches the page
as text.
"""

from __future__ import annotations

from typing import Any

from ._format import num, pct, share, ts, usd
from .analysis import ReportData
from .cache import PREFIX_CHANGE_COST
from .svg import grouped_bar_chart, hbar_chart

__all__ = ["INSTALL_HINT", "render_html"]

INSTALL_HINT = 'HTML reports need jinja2: pip install "headroom-context[reports]"'
#: The savings chart shows at most this many (the latest) periods; the table shows all.
MAX_CHART_BUCKETS = 60


def waste_chart(data: ReportData) -> str:
    bars = data.waste.bars
    rows = [(b.label, float(b.tokens), f"{num(b.tokens)} ({pct(b.percent)})") for b in bars]
    return hbar_chart(rows, title="Waste tokens by category")


def savings_chart(data: ReportData) -> str:
    shown = data.buckets[-MAX_CHART_BUCKETS:]
    series: list[tuple[str, str, list[float]]] = [
        ("Tokens before", "#9aa5b1", [float(b.tokens_before) for b in shown]),
        ("Tokens after", "#2b7bb9", [float(b.tokens_after) for b in shown]),
    ]
    if any(b.projected_saved for b in shown):
        series.append(
            ("Projected saving (audit)", "#d9822b", [float(b.projected_saved) for b in shown])
        )
    return grouped_bar_chart(
        [b.label for b in shown],
        series,
        title=f"Input tokens per {data.period}",
        fmt=lambda v: num(v),
    )


def _environment() -> Any:
    try:
        import jinja2
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("headroom_core.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=num, pct=pct, share=share, usd=usd, ts=ts)
    return env


def render_html(data: ReportData) -> str:
    """The report as one HTML document. Raises ImportError (with the install hint)
    when jinja2 is missing."""
    env = _environment()
    from markupsafe import Markup  # installed with jinja2

    template = env.get_template("report.html.j2")
    text: str = template.render(
        data=data,
        ov=data.overview,
        waste_svg=Markup(waste_chart(data)),
        savings_svg=Markup(savings_chart(data)) if data.buckets else "",
        chart_truncated=len(data.buckets) > MAX_CHART_BUCKETS,
        max_chart_buckets=MAX_CHART_BUCKETS,
        change_cost=PREFIX_CHANGE_COST,
    )
    return text

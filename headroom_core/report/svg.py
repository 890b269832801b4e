"""Tiny inline-SVG charts: horizontal bars and grouped vertical bars.

Hand-written instead of matplotlib: two chart shapes, a few dozen lines, no heavy
dependency and byte-stable output. Every text that reaches the SVG is escaped here, so
the result is safe to embed as markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

__all__ = ["grouped_bar_chart", "hbar_chart", "nice_scale"]

_FONT = 'font-family="system-ui, sans-serif" font-size="13"'


def _t(text: str) -> str:
    return escape(text, quote=True)


def nice_scale(value: float, ticks: int = 4) -> tuple[float, int]:
    """(top, steps): an axis from 0 to ``top`` in ``steps`` round steps (1, 2, 2.5 or 5
    x 10^k each), about ``ticks`` of them, with ``top >= value``."""
    if value <= 0:
        return 1.0, 1
    raw = max(1.0, value / ticks)  # the charts count tokens: no fractional steps
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(s * power for s in (1.0, 2.0, 2.5, 5.0, 10.0) if s * power >= raw)
    steps = max(1, math.ceil(value / step - 1e-9))
    return step * steps, steps


def hbar_chart(
    rows: Sequence[tuple[str, float, str]],
    *,
    title: str,
    width: int = 900,
    color: str = "#d9822b",
) -> str:
    """One bar per (label, value, value text), longest first as given."""
    label_w, value_w, row_h, top = 170, 190, 30, 8
    bar_w = width - label_w - value_w
    height = top * 2 + row_h * max(1, len(rows))
    peak = max((v for _, v, _ in rows), default=0.0) or 1.0
    parts = [
        f'<svg role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" {_FONT}><title>{_t(title)}</title>'
    ]
    for i, (label, value, text) in enumerate(rows):
        y = top + i * row_h
        w = max(0.0, bar_w * value / peak)
        parts.append(
            f'<text x="{label_w - 10}" y="{y + 19}" text-anchor="end" fill="#333">{_t(label)}'
            f'</text><rect x="{label_w}" y="{y + 5}" width="{bar_w}" height="20" fill="#f1f1f1"/>'
            f'<rect x="{label_w}" y="{y + 5}" width="{w:.1f}" height="20" fill="{color}"/>'
            f'<text x="{label_w + bar_w + 8}" y="{y + 19}" fill="#333">{_t(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


Fmt = Callable[[float], str]


def _y_axis(
    width: int, left: int, top: int, plot_h: int, scale: tuple[float, int], fmt: Fmt
) -> list[str]:
    peak, steps = scale
    out = []
    for k in range(steps + 1):
        value = peak * k / steps
        y = top + plot_h - plot_h * k / steps
        out.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
            f"{_t(fmt(value))}</text>"
        )
    return out


def grouped_bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    *,
    title: str,
    fmt: Fmt,
    width: int = 1040,
    height: int = 280,
) -> str:
    """Bars per label, one per (name, color, values) series, with a y axis and a legend.

    With many labels only every n-th x label is written, so they never overlap.
    """
    left, top, bottom = 80, 34, 44
    plot_w, plot_h = width - left - 10, height - top - bottom
    n = max(1, len(labels))
    scale = nice_scale(max((v for _, _, vals in series for v in vals), default=0.0))
    peak = scale[0]
    slot = plot_w / n
    bar = max(1.0, min(28.0, slot * 0.8 / max(1, len(series))))
    label_px = 7.5 * max((len(label) for label in labels), default=1) + 16
    every = max(1, math.ceil(n / max(1.0, plot_w // label_px)))
    parts = [
        f'<svg role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" {_FONT}><title>{_t(title)}</title>',
        *_y_axis(width, left, top, plot_h, scale, fmt),
    ]
    for s, (name, color, _) in enumerate(series):
        x = left + s * 150
        parts.append(
            f'<rect x="{x}" y="8" width="14" height="14" fill="{_t(color)}"/>'
            f'<text x="{x + 20}" y="20" fill="#333">{_t(name)}</text>'
        )
    group_w = bar * len(series)
    for i, label in enumerate(labels):
        x0 = left + i * slot + (slot - group_w) / 2
        for s, (name, color, values) in enumerate(series):
            v = values[i] if i < len(values) else 0.0
            h = plot_h * v / peak
            parts.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{_t(color)}"><title>{_t(label)}: {_t(name)} '
                f"{_t(fmt(v))}</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{left + i * slot + slot / 2:.1f}" y="{height - bottom + 18}" '
                f'text-anchor="middle" fill="#555">{_t(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)

"""Number and time formatting shared by the HTML and Markdown renderers."""

from __future__ import annotations

from datetime import datetime

__all__ = ["count", "num", "pct", "share", "ts", "usd"]


def num(value: float | int | None) -> str:
    """``12,345``; floats are rounded to whole numbers; None is ``n/a``."""
    if value is None:
        return "n/a"
    return f"{round(value):,}"


def count(n: int, word: str, many: str | None = None) -> str:
    """``1 request``, ``2,000 requests``; ``many`` for an irregular plural."""
    return f"{num(n)} {word if n == 1 else (many or word + 's')}"


def pct(value: float | None, digits: int = 1) -> str:
    """``12.3%`` from a percentage (not a fraction); None is ``n/a``."""
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}%"


def share(value: float | None, digits: int = 1) -> str:
    """``12.3%`` from a fraction in [0, 1]; None is ``n/a``."""
    return "n/a" if value is None else pct(100.0 * value, digits)


def usd(value: float | None) -> str:
    """``$1,234.56``; amounts under a dollar keep four decimals (``$0.0123``)."""
    if value is None:
        return "n/a"
    if abs(value) >= 1 or value == 0:
        return f"${value:,.2f}"
    return f"${value:,.4f}"


def ts(value: datetime | None) -> str:
    """``2025-01-13 14:05 UTC``; None is ``n/a``."""
    return "n/a" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def percent_of(part: float, whole: float) -> float:
    """``part`` as a percentage of ``whole`` (0 when ``whole`` is not positive)."""
    return 100.0 * part / whole if whole > 0 else 0.0

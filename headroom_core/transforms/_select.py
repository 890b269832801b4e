"""Which items of a long JSON array a lossy cut keeps.

Kept, in this order of priority and always in the array's own order: the first
``keep_first`` and last ``keep_last`` items; every error item; the items most relevant to
the query (BM25 >= ``relevance_threshold``, the best match always); then, while fewer than
``max_items`` are kept, numeric anomalies (beyond ``anomaly_std_threshold`` standard
deviations) and rare categorical values, strongest first; change points in numeric series;
evenly spaced items. Errors and query matches are never capped.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..relevance import Scorer

if TYPE_CHECKING:
    from ._conditions import Table

_ERROR_TEXT = re.compile(
    r"\b(?:error|errors|exception|traceback|fatal|failed|failure|panic|critical|denied|"
    r"forbidden|unauthorized|timeout|timed out)\b",
    re.IGNORECASE,
)
_ERROR_KEYS = frozenset(
    {"error", "errors", "exception", "err", "error_message", "stack", "stacktrace"}
)
_STATUS_KEYS = frozenset(
    {"status", "status_code", "statuscode", "code", "http_status", "level", "severity", "state"}
)
_BAD_STATUS = frozenset(
    {"error", "failed", "failure", "fatal", "critical", "crashed", "aborted", "warn", "warning"}
)


def is_error_item(item: Any, text: str) -> bool:
    """An item that reports a failure: error fields, a bad status/level, a non-2xx code."""
    if isinstance(item, dict):
        for key, value in item.items():
            k = key.lower()
            if k in _ERROR_KEYS and value not in (None, "", [], {}, False, 0):
                return True
            if k in _STATUS_KEYS:
                if isinstance(value, str) and value.lower() in _BAD_STATUS:
                    return True
                if isinstance(value, int) and not isinstance(value, bool) and 400 <= value < 600:
                    return True
        return False
    return bool(_ERROR_TEXT.search(text))


def _numeric_columns(items: Sequence[Any]) -> dict[str, list[tuple[int, float]]]:
    cols: dict[str, list[tuple[int, float]]] = {}
    for i, it in enumerate(items):
        fields = (
            it.items() if isinstance(it, dict) else enumerate(it) if isinstance(it, list) else ()
        )
        for k, v in fields:
            num = _as_number(v)
            if num is not None:
                cols.setdefault(str(k), []).append((i, num))
    return {k: v for k, v in cols.items() if len(v) >= max(5, len(items) // 2)}


def _as_number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and len(v) < 32:
        head = v.lstrip()[:1]  # float() wants a digit, a sign or a dot first (or nan/inf: refused)
        if not (head.isdigit() or head in ("+", "-", ".")):
            return None
        try:
            f = float(v)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


Numeric = dict[str, list[tuple[int, float]]]


def anomalies(
    items: Sequence[Any], threshold: float, cap: int, numeric: Numeric | None = None
) -> set[int]:
    """Indices of numeric outliers and rare categorical values (at most ``cap``, strongest).
    ``numeric``: the items' numeric columns when the caller has them already."""
    if cap <= 0:
        return set()
    found: dict[int, float] = {}
    for values in (_numeric_columns(items) if numeric is None else numeric).values():
        nums = [v for _, v in values]
        mean = sum(nums) / len(nums)
        std = math.sqrt(sum((x - mean) ** 2 for x in nums) / len(nums))
        if std == 0:
            continue
        for i, v in values:
            z = abs(v - mean) / std
            if z > threshold:
                found[i] = max(found.get(i, 0.0), z)
    if len(items) >= 10:
        for key in _categorical_keys(items):
            counts = Counter(str(it.get(key)) for it in items)
            if len(counts) > 1 and len(counts) <= max(3, len(items) // 5):
                for i, it in enumerate(items):
                    if counts[str(it.get(key))] == 1:
                        found[i] = max(found.get(i, 0.0), threshold + 0.5)
    strongest = sorted(found, key=lambda i: (-found[i], i))[:cap]
    return set(strongest)


def _categorical_keys(items: Sequence[Any]) -> list[str]:
    if not all(isinstance(it, dict) for it in items):
        return []
    keys: Counter[str] = Counter(
        k for it in items for k, v in it.items() if isinstance(v, (str, bool))
    )
    return [k for k, c in keys.items() if c == len(items)]


def _monotonic(nums: list[float]) -> bool:
    ups = all(b >= a for a, b in zip(nums, nums[1:], strict=False))
    return ups or all(b <= a for a, b in zip(nums, nums[1:], strict=False))


def change_points(
    items: Sequence[Any], threshold: float, cap: int, numeric: Numeric | None = None
) -> set[int]:
    """Indices where a numeric series shifts level: the means of the 5 points before and
    the 5 after differ by more than ``threshold`` times their pooled spread (an outlier
    elsewhere does not hide a shift). Monotonic columns (ids, timestamps) are skipped;
    the strongest shifts across all columns win."""
    if cap <= 0:
        return set()
    w = 5
    shifts: list[tuple[float, int]] = []
    for values in (_numeric_columns(items) if numeric is None else numeric).values():
        nums = [v for _, v in values]
        if len(nums) < 2 * w + 1 or _monotonic(nums):
            continue
        scale = 1e-9 + 0.001 * (max(nums) - min(nums))
        for j, score in _shift_scores(nums, w, scale):
            if score >= threshold:
                shifts.append((score, values[j][0]))
    out: set[int] = set()
    for _, index in sorted(shifts, key=lambda s: (-s[0], s[1])):
        if len(out) >= cap:
            break
        if all(abs(index - k) > w for k in out):
            out.add(index)
    return out


def _shift_scores(nums: list[float], w: int, scale: float) -> list[tuple[int, float]]:
    """(j, score) for each window split: the shift between the means of ``nums[j-w:j]``
    and ``nums[j:j+w]`` over their pooled spread. Sums run left to right in plain loops
    (the same floats as ``sum()`` over each window)."""
    out: list[tuple[int, float]] = []
    sqrt = math.sqrt
    for j in range(w, len(nums) - w + 1):
        before, after = nums[j - w : j], nums[j : j + w]
        sb = sa = 0.0
        for x in before:
            sb += x
        for x in after:
            sa += x
        mb, ma = sb / w, sa / w
        vb = va = 0.0
        for x in before:
            vb += (x - mb) ** 2
        for x in after:
            va += (x - ma) ** 2
        out.append((j, abs(ma - mb) / (sqrt((vb + va) / (2 * w)) + scale)))
    return out


def select(
    items: Sequence[Any],
    texts: Sequence[str],
    *,
    query: str | None,
    max_items: int,
    keep_first: int,
    keep_last: int,
    preserve_errors: bool,
    anomaly_threshold: float,
    relevance_threshold: float,
    scorer: Scorer,
    prepared: Prepared | None = None,
) -> tuple[list[int], set[int]]:
    """(sorted indices of the items to keep, the subset to keep verbatim: errors and
    query matches, which no further cut inside them may touch). ``prepared``: what does
    not depend on ``max_items`` (:func:`prepare`), when the caller keeps it between passes."""
    n = len(items)
    keep = set(range(min(keep_first, n))) | set(range(max(0, n - keep_last), n))
    verbatim: set[int] = set()
    errors, scores, numeric = prepared or prepare(items, texts, query, scorer)
    if preserve_errors:
        verbatim |= errors
    if query:
        ranked = sorted(range(n), key=lambda i: (-scores[i], i))
        if ranked and scores[ranked[0]] > 0:
            verbatim.add(ranked[0])
        for i in ranked[:max_items]:
            if scores[i] >= relevance_threshold and scores[i] >= 0.5 * scores[ranked[0]]:
                verbatim.add(i)
    keep |= verbatim
    keep |= anomalies(items, anomaly_threshold, max(0, max_items - len(keep)), numeric)
    keep |= change_points(items, anomaly_threshold, max(0, max_items - len(keep)), numeric)
    if len(keep) < max_items:
        step = n / (max_items - len(keep) + 1)
        for k in range(1, max_items - len(keep) + 1):
            keep.add(min(n - 1, int(k * step)))
    return sorted(keep), verbatim


#: Error items, relevance scores (empty without a query), numeric columns.
Prepared = tuple[set[int], list[float], Numeric]


def prepare(
    items: Sequence[Any], texts: Sequence[str], query: str | None, scorer: Scorer
) -> Prepared:
    """The parts of :func:`select` that every pass over the same items shares."""
    errors = {i for i in range(len(items)) if is_error_item(items[i], texts[i])}
    scores = scorer.score_items(texts, query) if query else []
    return errors, scores, _numeric_columns(items)


MAX_STAT_COLUMNS = 16  # numeric columns described in a marker, at most


def column_stats(table: Table, omitted: Sequence[int]) -> dict[str, dict[str, float]]:
    """For each numeric column of ``table`` (numbers or numeric strings such as ``1,234``
    in most of its filled cells), the count / min / max / sum of its values over the
    ``omitted`` rows: what a count or a total over the cut rows needs. Scalar arrays
    have one column, ``"values"``."""
    out: dict[str, dict[str, float]] = {}
    for col in table.columns.values():
        if not col.numeric:
            continue
        values = col.numbers
        cut = [values[i] for i in omitted if i in values]
        if not cut:
            continue
        out[col.name or "values"] = {
            "count": len(cut),
            "min": _plain(min(cut)),
            "max": _plain(max(cut)),
            "sum": _plain(math.fsum(cut)),
        }
        if len(out) >= MAX_STAT_COLUMNS:
            break
    return out


def _plain(x: float) -> float:
    """An int when whole, else rounded to 6 decimals (no float noise in the marker)."""
    return int(x) if x.is_integer() and abs(x) < 2**53 else round(x, 6)

"""Table questions: which rows hold the answer, and a small independent condition checker.

Written apart from ``headroom_core`` on purpose (it does not import the compressor's
question parser), so that it can catch the compressor's mistakes:

* :func:`answer_rows`: rows with a cell that holds an answer, as whole words, case and
  accents ignored (``Italy`` is in ``Italy (ITA)``);
* :func:`is_computed`: the answer is a number the question computes (``how many``,
  ``total``, ``average``, ``difference``, ...), not a cell it reads: a cell that happens
  to hold the same number is no evidence;
* :func:`checker_rows`: the rows a question's conditions select, for the conditions this
  checker supports, or None when the question states none of them:
  - a cell whose text (3+ characters, not a common word) occurs in the question as whole
    words;
  - ``more than / over / above / greater than / at least / less than / fewer than /
    under / below / at most / after / before / since / between N and M``: on the numeric
    columns the question names (a header word in the question), else on every numeric
    column where it selects some rows but not all;
  - ``most / least / highest / lowest / largest / smallest / fewest / greatest / best /
    worst`` with a numeric column the question names: its highest and lowest rows.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

_COMMON = frozenset(
    [
        "the",
        "and",
        "for",
        "are",
        "was",
        "were",
        "has",
        "had",
        "who",
        "what",
        "which",
        "how",
        "many",
        "much",
        "did",
        "does",
        "not",
        "yes",
        "all",
        "any",
        "one",
        "two",
        "its",
        "new",
        "old",
        "top",
        "end",
    ]
)
_COMPUTE = re.compile(
    r"how many|how much|how long|total|number of|average|difference|sum|combined|count"
)
_NUMBER = r"(\d[\d,]*(?:\.\d+)?)"
_OPS = (
    (re.compile(rf"\b(?:more than|over|above|greater than|higher than|after)\s+{_NUMBER}"), ">"),
    (re.compile(rf"\b(?:at least|since)\s+{_NUMBER}"), ">="),
    (re.compile(rf"\b(?:less than|fewer than|under|below|lower than|before)\s+{_NUMBER}"), "<"),
    (re.compile(rf"\bat most\s+{_NUMBER}"), "<="),
)
_BETWEEN = re.compile(rf"\bbetween\s+{_NUMBER}\s+and\s+{_NUMBER}")
_SUPER = re.compile(
    r"\b(?:(?<!at )most|(?<!at )least|highest|lowest|largest|smallest|fewest|greatest|best"
    r"|worst)\b"
)
_CELL_NUMBER = re.compile(r"[+-]?\$?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?%?")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.findall(r"[^\W_]+", text))


def answer_rows(rows: list[dict[str, Any]], answers: tuple[str, ...]) -> list[int]:
    wanted = [f" {_fold(a)} " for a in answers if _fold(a)]
    return [
        i
        for i, row in enumerate(rows)
        if any(w in f" {_fold(str(v))} " for v in row.values() for w in wanted)
    ]


def is_computed(question: str, answers: tuple[str, ...]) -> bool:
    numeric = all(re.fullmatch(r"[\d.,$%\s-]+", a) for a in answers)
    return numeric and bool(_COMPUTE.search(question.lower()))


def _number(value: Any) -> float | None:
    m = _CELL_NUMBER.fullmatch(str(value).strip())
    if m is None:
        return None
    return float(m.group(1).replace(",", "") + (m.group(2) or ""))


def _numeric_columns(rows: list[dict[str, Any]]) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for col in dict.fromkeys(k for row in rows for k in row):
        filled = [(i, row.get(col)) for i, row in enumerate(rows) if str(row.get(col, "")).strip()]
        numbers = {i: n for i, v in filled if (n := _number(v)) is not None}
        if len(numbers) >= 2 and len(numbers) >= 0.6 * len(filled):
            out[col] = numbers
    return out


def _named(col: str, question: str) -> bool:
    return any(
        len(w) > 2 and re.search(rf"\b{re.escape(w[:5])}", question) for w in _fold(col).split()
    )


def checker_rows(question: str, rows: list[dict[str, Any]]) -> tuple[int, ...] | None:
    q = _fold(question)
    raw = question.lower()
    selected: set[int] = set()
    supported = False
    for i, row in enumerate(rows):
        for v in row.values():
            t = _fold(str(v))
            if len(t) >= 3 and t not in _COMMON and f" {t} " in f" {q} ":
                selected.add(i)
                supported = True
    numeric = _numeric_columns(rows)
    named = {c: v for c, v in numeric.items() if _named(c, q)}
    tests: list[tuple[str, float, float | None]] = []
    for pattern, op in _OPS:
        tests += [(op, float(m.group(1).replace(",", "")), None) for m in pattern.finditer(raw)]
    for m in _BETWEEN.finditer(raw):
        a, b = (float(g.replace(",", "")) for g in m.groups())
        tests.append(("range", min(a, b), max(a, b)))
    for op, x, y in tests:
        supported = True
        for values in (named or numeric).values():
            hits = {i for i, v in values.items() if _holds(op, v, x, y)}
            if named or 0 < len(hits) < len(values):
                selected |= hits
    if _SUPER.search(q) and named:
        supported = True
        for values in named.values():
            top, bottom = max(values.values()), min(values.values())
            selected |= {i for i, v in values.items() if v in (top, bottom)}
    return tuple(sorted(selected)) if supported else None


def _holds(op: str, v: float, x: float, y: float | None) -> bool:
    if op == ">":
        return v > x
    if op == ">=":
        return v >= x
    if op == "<":
        return v < x
    if op == "<=":
        return v <= x
    return y is not None and x <= v <= y

"""Which rows of a table (a JSON array) a question's conditions select.

:func:`select_rows` applies a parsed :class:`~._question.Question` to the items of an
array: objects (one row each, nested objects flattened one level as ``outer.inner``),
lists (positions are the columns) or scalars.

- **named values**: a row is selected when one of its cells, normalised
  (:func:`~._question.normalise`), is a phrase of the question, or when it holds a
  question word that few rows hold (at most a third: ``brazil`` in ``Brazil (BRA)``; a
  word of :data:`PREFIX_MIN` letters or more also names the cell words it begins:
  ``karst`` -> ``Karsten``);
- **neighbours**: with ``after`` / ``before`` / ``next`` / ... the rows right before and
  after each named row too; with ``between`` / ``in between`` and two or more named rows,
  every row from the first to the last of them;
- **comparisons**: on the columns the question names (a column whose name shares a stem
  with a question word, e.g. ``capacity``, or the column a comparative implies:
  ``older`` -> ``age``), else on every column of the right kind where the comparison
  selects some rows but not all; numbers (``1,234``, ``$12``, ``45%``), years found in
  dates (``27 August 2005``) and month names;
- **extremes**: the ``rank`` highest and lowest rows (ties included) of each numeric or
  year column the question names; ``first`` / ``last`` / ordinals with no such column:
  the first and last ``rank`` rows. An extreme with no column to apply to is
  *unresolved*: the caller must then not cut (``which country had the most cyclists``
  is a count over every row).

``narrowed`` says that some condition selected rows: then the question is about those
rows, and an aggregation over them needs exactly them (the caller keeps every selected
row, and states count / min / max / sum of what it omits).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._question import MONTHS, QUESTION_WORDS, Comparison, Extreme, Question, fold, stem, words_of

MAX_CELLS = 64  # cells looked at per row
MAX_CELL_CHARS = 200  # longer values cannot be a phrase of a question
RARE_SHARE = 3  # a question word held by at most 1/RARE_SHARE of the rows names them
PREFIX_MIN = 4  # a question word this long also names cell words it begins
NUMERIC_SHARE = 0.6  # share of non-empty cells that must be numbers for a numeric column

_NUMBER_RE = re.compile(
    r"[+\-\u2212]?[$\u20ac\u00a3]?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*%?(?:\[\w{1,4}\])?"
)
_YEAR_RE = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2})(?!\d)")
_MONTH_RE = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b", re.IGNORECASE
)
_MONTH_INDEX = {m[:3]: i + 1 for i, m in enumerate(MONTHS)}


@dataclass(frozen=True, slots=True)
class Selection:
    rows: frozenset[int]
    narrowed: bool  # some condition selected rows
    unresolved: bool  # an extreme (most, least, ...) found no column to apply to


def cell_number(value: Any) -> float | None:
    """A cell as a number: JSON numbers, and strings such as ``1,234``, ``$12.5``,
    ``45%``, ``+0.18``, ``12[3]`` (a footnote); None otherwise (booleans included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str) or not value or len(value) > 32:
        return None
    m = _NUMBER_RE.fullmatch(value.strip())
    if m is None:
        return None
    text = m.group(0).strip()
    sign = -1.0 if text[:1] in ("-", "\u2212") else 1.0
    return sign * float(m.group(1).replace(",", "") + (m.group(2) or ""))


_NUMBER_STARTS = frozenset("+-\u2212$\u20ac\u00a3")


def _may_be_number(value: str) -> bool:
    """False when :func:`cell_number` would surely say None (its first character after
    spaces is neither a digit, a sign nor a currency sign): a cheap test before the regex."""
    head = value.lstrip()[:1]
    return head.isdigit() or head in _NUMBER_STARTS


def cells(item: Any) -> list[tuple[str, Any]]:
    """(column, scalar value) of one row, at most :data:`MAX_CELLS`."""
    out: list[tuple[str, Any]] = []
    if isinstance(item, dict):
        for key, value in item.items():
            if isinstance(value, dict):
                out.extend(
                    (f"{key}.{k}", v) for k, v in value.items() if not isinstance(v, (dict, list))
                )
            elif isinstance(value, list):
                out.extend((str(key), v) for v in value if not isinstance(v, (dict, list)))
            else:
                out.append((str(key), value))
    elif isinstance(item, list):
        out.extend((str(i), v) for i, v in enumerate(item) if not isinstance(v, (dict, list)))
    elif item is not None:
        out.append(("", item))
    return out[:MAX_CELLS]


class Column:
    """One column's filled cells, with their numbers, years and months (each computed on
    first use)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stems = frozenset(stem(w) for w in words_of(name) if len(w) > 1)
        # the filled cells: row index and value (empty values left out), side by side
        self.at: list[int] = []
        self.values: list[Any] = []
        self._numbers: dict[int, float] | None = None
        self._years: dict[int, list[int]] | None = None
        self._months: dict[int, list[int]] | None = None

    @property
    def numbers(self) -> dict[int, float]:
        if self._numbers is None:
            numbers: dict[int, float] = {}
            for i, v in zip(self.at, self.values, strict=True):
                kind = type(v)
                if kind is int or kind is float:  # the common case, without a call
                    x: float | None = float(v)
                elif kind is str and not _may_be_number(v):
                    continue
                else:
                    x = cell_number(v)
                if x is not None and math.isfinite(x):
                    numbers[i] = x
            self._numbers = numbers
        return self._numbers

    @property
    def years(self) -> dict[int, list[int]]:
        if self._years is None:
            self._years = {}
            for i, v in zip(self.at, self.values, strict=True):
                if isinstance(v, (str, int, float)) and not isinstance(v, bool):
                    ys = [int(y) for y in _YEAR_RE.findall(str(v))]
                    if ys:
                        self._years[i] = ys
        return self._years

    @property
    def months(self) -> dict[int, list[int]]:
        if self._months is None:
            self._months = {}
            for i, v in zip(self.at, self.values, strict=True):
                if isinstance(v, str):
                    ms = [_MONTH_INDEX[m[:3].lower()] for m in _MONTH_RE.findall(v)]
                    if ms:
                        self._months[i] = ms
        return self._months

    @property
    def numeric(self) -> bool:
        n = len(self.numbers)
        return n >= 2 and n >= NUMERIC_SHARE * len(self.values)

    @property
    def yearly(self) -> bool:
        n = len(self.years)
        return n >= 2 and n >= 0.5 * len(self.values)


class Table:
    """The items of an array as rows of cells, and their columns."""

    def __init__(self, items: Sequence[Any]) -> None:
        self.rows = [cells(item) for item in items]
        self.columns: dict[str, Column] = {}
        for i, row in enumerate(self.rows):
            for name, value in row:
                if value is None or value == "":
                    continue
                col = self.columns.get(name)
                if col is None:
                    col = self.columns[name] = Column(name)
                col.at.append(i)
                col.values.append(value)

    def named_columns(self, words: Sequence[str]) -> list[Column]:
        wanted = {stem(w) for w in words if len(w) > 2}
        return [c for c in self.columns.values() if c.stems & wanted]


def select_rows(
    question: Question, items: Sequence[Any] | Table, texts: Sequence[str] | None = None
) -> Selection:
    """The rows ``question`` selects among ``items`` (see the module docstring).
    ``texts``: each row as JSON (``orjson.dumps``), when the caller has them: then only
    the rows whose text could name a question word are looked at cell by cell."""
    table = items if isinstance(items, Table) else Table(items)
    n = len(table.rows)
    named = _named_rows(question, table, texts)
    rows = set(named)
    if question.neighbours:
        for i in named:
            rows.update(j for j in (i - 1, i + 1) if 0 <= j < n)
    if question.span and len(named) >= 2:  # "between X and Y": every row from X to Y
        rows.update(range(min(named), max(named) + 1))
    words = (*question.terms, *question.words)
    for comparison in question.comparisons:
        rows |= _compare(comparison, table, words)
    unresolved = False
    for extreme in question.extremes:
        found = _extreme(extreme, table, n, question.terms)
        if found is None:
            unresolved = True
        else:
            rows |= found
    return Selection(frozenset(rows), bool(rows), unresolved)


def _candidates(question: Question, texts: Sequence[str]) -> list[int]:
    """Rows whose JSON text, folded as :func:`~._question.words_of` folds, holds one of
    the words a named-value match needs as a substring: a superset of the rows
    :func:`_named_rows` can select, since a cell's words (runs of letters and digits) are
    written as they are in JSON. Numbers too, but for floats under 1e-4, which ``str``
    writes ``1e-05`` and orjson ``0.00001``: when a needed word is all digits (or digits
    and an ``e``), a row holding such a float is a candidate too."""
    needles = set(question.terms)
    for phrase in question.names():  # a phrase is matched whole: its longest word must be there
        if phrase not in QUESTION_WORDS:
            needles.add(max(phrase.split(), key=len))
    if not needles:
        return []
    if any(_FLOAT_WORD.fullmatch(w) for w in needles):
        needles |= {"0.0000", "e-"}
    ordered = tuple(needles)
    out: list[int] = []
    for i, text in enumerate(texts):
        folded = fold(text)
        if any(w in folded for w in ordered):
            out.append(i)
    return out


_FLOAT_WORD = re.compile(r"\d+e?")


def _named_rows(question: Question, table: Table, texts: Sequence[str] | None = None) -> set[int]:
    phrases = question.names()
    terms = question.terms
    prefixes = tuple(t for t in terms if len(t) >= PREFIX_MIN and not t.isdigit())
    seen: dict[str, tuple[bool, frozenset[str]]] = {}
    found: set[int] = set()
    holders: dict[str, set[int]] = {}
    looked_at = range(len(table.rows)) if texts is None else _candidates(question, texts)
    for i in looked_at:
        for _, value in table.rows[i]:
            if value is None or isinstance(value, bool):
                continue
            text = value if isinstance(value, str) else str(value)
            if len(text) > MAX_CELL_CHARS:
                continue
            known = seen.get(text)
            if known is None:
                parts = words_of(text)
                norm = " ".join(parts)
                hit = bool(norm) and norm in phrases and norm not in QUESTION_WORDS
                held = terms.intersection(parts)
                if prefixes:  # "karst" names "Karsten"
                    held |= {t for t in prefixes for w in parts if w.startswith(t)}
                known = seen[text] = (hit, frozenset(held))
            if known[0]:
                found.add(i)
            for term in known[1]:
                holders.setdefault(term, set()).add(i)
    limit = max(1, len(table.rows) // RARE_SHARE)
    for rows in holders.values():
        if len(rows) <= limit:
            found |= rows
    return found


def _compare(comparison: Comparison, table: Table, words: Sequence[str]) -> set[int]:
    if comparison.kind == "month":
        candidates = [c for c in table.columns.values() if len(c.months) >= 2]
    elif comparison.kind == "year":
        candidates = [c for c in table.columns.values() if c.yearly]
    else:
        candidates = [c for c in table.columns.values() if c.numeric]
        if _yearish(comparison.low):
            candidates += [c for c in table.columns.values() if c.yearly and not c.numeric]
    if not candidates:
        return set()
    hinted = {c.name for c in table.named_columns(comparison.hints)}
    named = [c for c in candidates if c.name in hinted] or [
        c for c in candidates if c.name in {x.name for x in table.named_columns(words)}
    ]
    out: set[int] = set()
    for col in named or candidates:
        values = _values(col, comparison.kind)
        hits = {i for i, vs in values.items() if any(_holds(comparison, v) for v in vs)}
        if named or 0 < len(hits) < len(values):
            out |= hits
    return out


def _yearish(value: float) -> bool:
    return value.is_integer() and 1000 <= value <= 2100


def _values(col: Column, kind: str) -> dict[int, list[float]]:
    if kind == "month":
        return {i: [float(m) for m in ms] for i, ms in col.months.items()}
    if kind == "year" or (not col.numeric and col.yearly):
        return {i: [float(y) for y in ys] for i, ys in col.years.items()}
    return {i: [v] for i, v in col.numbers.items()}


def _holds(c: Comparison, v: float) -> bool:
    if c.op == ">":
        return v > c.low
    if c.op == ">=":
        return v >= c.low
    if c.op == "<":
        return v < c.low
    if c.op == "<=":
        return v <= c.low
    return c.high is not None and c.low <= v <= c.high


def _extreme(extreme: Extreme, table: Table, n: int, terms: frozenset[str]) -> set[int] | None:
    """The extreme rows of every numeric or year column the question names (near the
    superlative or anywhere else: "wyckoff ... least votes" names both)."""
    named = table.named_columns((*extreme.hints, *sorted(terms)))
    columns = [c for c in named if c.numeric or c.yearly]
    k = extreme.rank
    out: set[int] = set()
    for col in columns:
        values = _values(col, "number" if col.numeric else "year")
        keyed = {i: max(vs) for i, vs in values.items() if vs}
        if not keyed:
            continue
        ranked = sorted(set(keyed.values()))
        if len(ranked) < 2:
            continue  # a constant column has no extreme rows
        low, high = ranked[min(k, len(ranked)) - 1], ranked[-min(k, len(ranked))]
        out |= {i for i, v in keyed.items() if v <= low or v >= high}
    if extreme.positional:
        out |= set(range(min(k, n))) | set(range(max(0, n - k), n))
    if not out:
        return None
    return out


__all__ = ["Column", "Selection", "Table", "cell_number", "cells", "select_rows"]

"""The conditions a question states about the rows of a table: a small deterministic parser.

:func:`parse_question` reads a user question (English) and returns what a lossy cut of a
table must respect to keep the answer, as far as the question states it:

- **named values**: every phrase of the question (:meth:`Question.names`); a row whose
  cell equals one of them (case- and accent-insensitive) is selected
  (:mod:`._conditions` does the matching against the data);
- **neighbours** (``after X``, ``right before X``, ``next``, ``previous``, ``following``,
  ``preceding``): the rows next to a named row are selected too;
- **comparisons** (``over 16``, ``smaller than 107.7``, ``after 1936``, ``between 3 and 5``,
  ``at least 10,000``, ``before 2010``, ``10 or more``, ``after august``, ``in the 1990s``):
  ``>``, ``>=``, ``<``, ``<=`` or an inclusive range, on a number, a year or a month;
- **extremes** (``most``, ``least``, ``highest``, ``fastest``, ``first``, ``last``,
  ``second``, ``top 3``): the extreme rows of the column the question names;
- **aggregation** (``how many``, ``total``, ``sum``, ``average``, ``difference``,
  ``how long``, ``number of``, ``combined``): the answer depends on every row the
  conditions select, and on every row when none narrows it.

The parser looks at the question only; it never guesses from the data. Same question,
same result.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from ..relevance.bm25 import STOPWORDS

MAX_PHRASE_WORDS = 8  # longest question phrase matched against a cell

# Words that carry no condition (beyond the search stopwords).
QUESTION_WORDS = STOPWORDS | frozenset(
    {
        "did", "were", "had", "been", "being", "than", "then", "not", "no", "only", "same",
        "other", "besides", "also", "each", "every", "one", "ones", "name", "named", "listed",
        "according", "chart", "table", "number", "many", "much", "long", "total", "after",
        "before", "next", "previous", "more", "less", "most", "least", "but", "if", "so",
        "both", "either", "neither", "nor", "into", "about", "above", "below", "over", "under",
        "between", "during", "through", "per", "year", "years", "time", "times", "his", "her",
        "he", "she", "they", "we", "us", "him", "those", "whom", "whose", "would",
        "could", "should", "out", "up", "down", "off", "again", "some", "such",
        "own", "too", "very", "just", "yes", "ever", "happen", "happened", "come", "came",
    }
)  # fmt: skip

_NUM = r"(\$?\d[\d,]*(?:\.\d+)?)"
_GT = (
    r"more|greater|higher|larger|bigger|longer|older|taller|heavier|faster|wider|deeper"
    r"|over|above|exceed(?:s|ed|ing)?|beyond|after|later|past|since|surpass(?:ed|es)?"
)
_LT = (
    r"less|fewer|lower|smaller|shorter|younger|lighter|slower|narrower|shallower"
    r"|under|below|before|earlier|prior|until|till|up to|within"
)
_INCLUSIVE = frozenset({"since", "until", "till", "up to", "within"})
_GT_RE = re.compile(rf"\b({_GT})\s+(?:than\s+|to\s+)?(?:the\s+)?(?:year\s+)?{_NUM}")
_LT_RE = re.compile(rf"\b({_LT})\s+(?:than\s+|to\s+)?(?:the\s+)?(?:year\s+)?{_NUM}")
_GE_RE = re.compile(
    rf"\b(?:at least|no less than|no fewer than|a minimum of|minimum of|not less than)\s+{_NUM}"
    rf"|{_NUM}\s+(?:\w+\s+)?(?:or|and)\s+(?:more|greater|higher|above|over|up|better|later)\b"
    rf"|{_NUM}\s*\+"
)
_LE_RE = re.compile(
    rf"\b(?:at most|no more than|not more than|a maximum of|maximum of)\s+{_NUM}"
    rf"|{_NUM}\s+(?:\w+\s+)?(?:or|and)\s+(?:less|fewer|lower|below|under|earlier)\b"
)
_RANGE_RE = re.compile(rf"\b(?:between|from)\s+{_NUM}\s*(?:and|to|through|till|until|-|&)\s*{_NUM}")
_DECADE_RE = re.compile(r"\b(?:in\s+)?(?:the\s+)?((?:1[0-9]|20)\d)0'?s\b")
MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
_MONTH_ALT = "|".join(MONTHS)
_MONTH_GT_RE = re.compile(rf"\b(after|since|later than|past)\s+({_MONTH_ALT})\b")
_MONTH_LT_RE = re.compile(rf"\b(before|until|till|prior to|earlier than)\s+({_MONTH_ALT})\b")
# A comparative word implies the column it is about.
_IMPLIED = {
    "older": ("age", "born", "birth"),
    "younger": ("age", "born", "birth"),
    "taller": ("height",),
    "shorter": ("height", "length"),
    "heavier": ("weight",),
    "lighter": ("weight",),
    "longer": ("length", "time", "duration"),
    "faster": ("time",),
    "slower": ("time",),
    "earlier": ("date", "year"),
    "later": ("date", "year"),
    "oldest": ("age", "born", "birth", "date", "year", "founded", "established"),
    "youngest": ("age", "born", "birth"),
    "newest": ("date", "year", "founded", "established", "opened"),
    "earliest": ("date", "year"),
    "latest": ("date", "year"),
    "tallest": ("height",),
    "heaviest": ("weight",),
    "fastest": ("time", "speed"),
    "slowest": ("time", "speed"),
    "longest": ("length", "time", "duration"),
    "shortest": ("length", "time", "duration"),
}

_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5,
    "6th": 6, "7th": 7, "8th": 8, "9th": 9, "10th": 10, "last": 1, "penultimate": 2,
}  # fmt: skip
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10,
}  # fmt: skip
_SUPERLATIVES = frozenset(
    {
        "most", "least", "highest", "lowest", "largest", "smallest", "biggest", "greatest",
        "fewest", "longest", "shortest", "fastest", "slowest", "best", "worst", "top",
        "bottom", "maximum", "minimum", "max", "min", "earliest", "latest", "oldest",
        "newest", "youngest", "heaviest", "lightest", "tallest", "farthest", "furthest",
        "nearest", "closest", "deepest", "widest", "hottest", "coldest", "warmest", "richest",
        "poorest", "strongest", "weakest", "busiest", "cheapest", "costliest",
    }
)  # fmt: skip
_POSITIONAL = frozenset(_ORDINALS)
_NEIGHBOUR_RE = re.compile(
    r"\b(?:after|before|next|previous|previously|following|followed|preceding|preceded"
    r"|prior|succeeding|succeeded|behind|ahead|above|below|later|earlier|then)\b"
)
_AGGREGATE_RE = re.compile(
    r"\bhow (?:many|much|long|often|old)\b|\b(?:total|totals|totaled|totalled|sum|average"
    r"|mean|median|difference|differ|combined|altogether|count|counted|tally|number of"
    r"|amount of|in all|percentage|percent|ratio|majority|overall|cumulative|aggregate)\b"
    r"|\b(?:more|less|fewer) \w+(?: \w+)? than\b|\bat least one\b|\b(?:once|twice)\b"
    r"|\b(?:more|less|fewer|greater|higher|lower|larger|smaller) than\b(?! \d)"
)
_SPAN_RE = re.compile(r"\b(?:in ?between|between)\b|\bfrom\b.+\b(?:to|until|till|through)\b")
_WORD_RE = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Comparison:
    """``op`` is ``>``, ``>=``, ``<``, ``<=`` or ``range`` (``low <= x <= high``)."""

    op: str
    low: float
    high: float | None
    kind: str  # "number" | "year" | "month"
    hints: tuple[str, ...]  # words near it that may name the column


@dataclass(frozen=True, slots=True)
class Extreme:
    """An extreme of a column (``most``, ``least``) or a position (``first``, ``second``)."""

    word: str
    rank: int  # how many rows from each end: 1 for "most", 2 for "second", 3 for "top 3"
    positional: bool  # first / last / ordinals: row order when no column is named
    hints: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Question:
    text: str  # normalised: see :func:`normalise`
    words: tuple[str, ...]
    terms: frozenset[str]  # content words (not question words), for column and row matching
    comparisons: tuple[Comparison, ...]
    extremes: tuple[Extreme, ...]
    neighbours: bool
    aggregate: bool
    span: bool = False  # "between X and Y" / "in between": the rows from one named row to another

    def names(self) -> frozenset[str]:
        """Every phrase of up to :data:`MAX_PHRASE_WORDS` words (normalised, space-joined)."""
        return _phrases(self.words)

    @property
    def states_conditions(self) -> bool:
        return bool(self.comparisons or self.extremes or self.terms)


def normalise(text: str) -> str:
    """Lower case, accents folded, words (letters and digits) joined by single spaces."""
    return " ".join(words_of(text))


def words_of(text: str) -> list[str]:
    return _WORD_RE.findall(fold(text))


def fold(text: str) -> str:
    """Lower case, accents folded (NFKD, combining marks dropped)."""
    folded = text.lower()
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in folded if not unicodedata.combining(c))
    return folded


def stem(word: str) -> str:
    """A crude stem for matching a question word to a column name (``attendees`` ~
    ``attendance``: the first five letters; shorter words whole, plural ``s`` off)."""
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word[:5]


@lru_cache(maxsize=256)
def _phrases(words: tuple[str, ...]) -> frozenset[str]:
    out: set[str] = set()
    for i in range(len(words)):
        for j in range(i + 1, min(len(words), i + MAX_PHRASE_WORDS) + 1):
            out.add(" ".join(words[i:j]))
    return frozenset(out)


def _number(text: str) -> float | None:
    try:
        return float(text.lstrip("$").replace(",", ""))
    except ValueError:
        return None


def _kind(value: float, word: str) -> str:
    yearish = value.is_integer() and 1000 <= value <= 2100
    temporal = word in ("after", "before", "since", "until", "till", "prior", "earlier", "later")
    return "year" if yearish and (temporal or word in ("between", "from")) else "number"


def _hints(text: str, start: int, end: int, word: str) -> tuple[str, ...]:
    before = words_of(text[max(0, start - 40) : start])[-3:]
    after = words_of(text[end : end + 40])[:3]
    found = [w for w in (*before, *after) if w not in QUESTION_WORDS and not w.isdigit()]
    return tuple(dict.fromkeys([*found, *_IMPLIED.get(word, ())]))


def _comparisons(text: str) -> list[Comparison]:
    out: list[Comparison] = []
    taken: list[tuple[int, int]] = []

    def add(m: re.Match[str], op: str, low: float, high: float | None, word: str) -> None:
        taken.append(m.span())
        kind = _kind(low, word)
        out.append(Comparison(op, low, high, kind, _hints(text, m.start(), m.end(), word)))

    for m in _RANGE_RE.finditer(text):
        a, b = _number(m.group(1)), _number(m.group(2))
        if a is not None and b is not None:
            add(m, "range", min(a, b), max(a, b), "between")
    for m in _DECADE_RE.finditer(text):
        start = float(m.group(1)) * 10
        out.append(Comparison("range", start, start + 9, "year", ()))
    for pattern, op in ((_GE_RE, ">="), (_LE_RE, "<=")):
        for m in pattern.finditer(text):
            raw = next(g for g in m.groups() if g is not None)
            value = _number(raw)
            if value is not None and not _inside(m.span(), taken):
                add(m, op, value, None, "at")
    for pattern, strict, loose in ((_GT_RE, ">", ">="), (_LT_RE, "<", "<=")):
        for m in pattern.finditer(text):
            value = _number(m.group(2))
            word = m.group(1)
            if value is None or _inside(m.span(), taken):
                continue
            add(m, loose if word in _INCLUSIVE else strict, value, None, word.split()[0])
    for pattern, op in ((_MONTH_GT_RE, ">"), (_MONTH_LT_RE, "<")):
        for m in pattern.finditer(text):
            month = float(MONTHS.index(m.group(2)) + 1)
            out.append(Comparison(op, month, None, "month", ("date", "month")))
    return out


def _inside(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(a <= span[0] < b or a < span[1] <= b for a, b in taken)


def _extremes(words: tuple[str, ...]) -> list[Extreme]:
    out: list[Extreme] = []
    for i, word in enumerate(words):
        superlative = word in _SUPERLATIVES or (
            word.endswith("est") and len(word) > 5 and word not in _NOT_SUPERLATIVE
        )
        if not (superlative or word in _POSITIONAL):
            continue
        if word in ("least", "most") and i > 0 and words[i - 1] == "at":
            continue  # "at least 3" is a comparison
        rank = _ORDINALS.get(word, 1)
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if word in ("top", "bottom", "first", "last") and (nxt.isdigit() or nxt in _NUMBER_WORDS):
            rank = int(nxt) if nxt.isdigit() else _NUMBER_WORDS[nxt]
        elif word in _POSITIONAL and nxt in _SUPERLATIVES:  # "second highest"
            continue
        if word in _POSITIONAL and i > 0 and words[i - 1] in _ORDINALS:
            rank = max(rank, _ORDINALS[words[i - 1]])
        hints = [w for w in words[i + 1 : i + 6] if w not in QUESTION_WORDS and not w.isdigit()]
        hints += [w for w in words[max(0, i - 2) : i] if w not in QUESTION_WORDS]
        hints += list(_IMPLIED.get(word, ()))
        if i > 0 and words[i - 1] in _ORDINALS and word in _SUPERLATIVES:
            rank = max(rank, _ORDINALS[words[i - 1]])
        positional = word in _POSITIONAL
        out.append(Extreme(word, min(rank, 50), positional, tuple(dict.fromkeys(hints))))
    return out


_NOT_SUPERLATIVE = frozenset(
    {
        "interest", "forest", "contest", "request", "honest", "modest", "suggest", "protest",
        "harvest", "manifest", "digest", "invest", "arrest", "attest", "everest", "budapest",
        "bucharest", "earnest", "conquest", "southwest", "northwest", "midwest",
        "celebest", "tempest", "bequest", "inquest", "pretest", "retest", "contests",
        "requests", "interests", "forests", "suggests", "protests", "priest",
    }
)  # fmt: skip


@lru_cache(maxsize=256)
def parse_question(question: str) -> Question:
    """The conditions ``question`` states (see the module docstring)."""
    lowered = unicodedata.normalize("NFKC", question).lower().replace("\u2019", "'")
    words = tuple(words_of(question))
    terms = frozenset(
        w for w in words if w not in QUESTION_WORDS and (len(w) >= 3 or any(c.isdigit() for c in w))
    )
    comparisons = tuple(_comparisons(lowered))
    extremes = tuple(_extremes(words))
    return Question(
        text=" ".join(words),
        words=words,
        terms=terms,
        comparisons=comparisons,
        extremes=extremes,
        neighbours=bool(_NEIGHBOUR_RE.search(" ".join(words))),
        aggregate=bool(_AGGREGATE_RE.search(" ".join(words))),
        span=bool(_SPAN_RE.search(" ".join(words))),
    )


__all__ = [
    "MONTHS",
    "Comparison",
    "Extreme",
    "Question",
    "normalise",
    "parse_question",
    "stem",
    "words_of",
]

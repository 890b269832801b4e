"""Sentences: the one splitter every part of the package uses (the text compressor, the
CacheAligner, the LlamaIndex node postprocessor), so the same text is cut the same way
everywhere. Deterministic, dependency-free, character offsets into the original text.
"""

from __future__ import annotations

import re

__all__ = ["line_sentence_spans", "sentence_spans"]

# a sentence ends at . ! ? (closing quotes allowed) before a capital or a digit, or at 。！？
_SENTENCE_END = re.compile(
    r"[.!?]+[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[\u00bf\u00a1]*[A-Z0-9\u00c0-\u00de])"
    r"|[\u3002\uff01\uff1f]\s*"
)
_OPENERS = "\"'\u201c\u2018([\u00bf\u00a1"
_ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "al", "fig", "figs", "eq",
        "no", "nos", "vol", "pp", "ed", "eds", "approx", "dept", "est", "inc", "ltd", "co", "corp",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "ca",
        "cf", "op",
    }
)  # fmt: skip
_ABBREVIATION = re.compile("|".join(sorted(_ABBREVIATIONS)), re.IGNORECASE)  # non-ASCII case
_INITIALS = re.compile(r"(?:[A-Za-z]\.)+")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of every sentence of ``text[start:end]``, in order, trailing whitespace
    excluded. A sentence ends at ``.``, ``!`` or ``?`` (closing quotes and brackets allowed)
    before whitespace and a capital, a digit or an opening quote, or at ``。！？``; a dot
    after a known abbreviation (``Dr.``, ``etc.``) or an initial (``J.``, ``e.g.``) ends
    none."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    begin = start
    for m in _SENTENCE_END.finditer(text, start, end):
        if m[0][0] == "." and _is_abbreviation(text, begin, m.start()):
            continue
        spans.append((begin, m.start() + len(m[0].rstrip())))
        begin = m.end()
    tail = text[begin:end].rstrip()
    if tail:
        spans.append((begin, begin + len(tail)))
    return spans


def _is_abbreviation(text: str, begin: int, dot: int) -> bool:
    """The word ending at ``dot`` is an abbreviation or an initial (``Dr.``, ``e.g.``, ``J.``)."""
    word_start = max(text.rfind(" ", begin, dot), text.rfind("\n", begin, dot)) + 1
    word = text[max(word_start, begin) : dot + 1].lstrip(_OPENERS)
    # no abbreviation is longer than 6 letters; initials alternate letter and dot
    stem = word[:-1]
    if len(stem) <= 6 and (
        stem.lower() in _ABBREVIATIONS if stem.isascii() else bool(_ABBREVIATION.fullmatch(stem))
    ):
        return True
    return (len(word) == 2 or word[-3:-2] == ".") and bool(_INITIALS.fullmatch(word))


def line_sentence_spans(text: str) -> list[tuple[int, int]]:
    """:func:`sentence_spans` line by line: each line is its own run of sentences, so code,
    logs and JSON split into lines and prose into sentences. In text order, never
    overlapping, whitespace excluded."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        if line.strip():
            lead = len(line) - len(line.lstrip())
            spans.extend((pos + a, pos + b) for a, b in sentence_spans(line, lead))
        pos += len(line) + 1
    return spans

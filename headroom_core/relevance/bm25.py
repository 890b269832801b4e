"""BM25 relevance with no dependencies.

Terms are lowercased runs of letters/digits, keeping inner ``-_./:`` so that ids such as
``dep-1027``, ``ch_8f3a`` or ``src/app.py`` stay one term (their parts are indexed too).
Scores are BM25 normalised by the best item, so the top match scores 1.0; an item that
contains a query term that is rare across the items scores high even when it is long.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_TERM = re.compile(r"[0-9a-z]+(?:[-_./:][0-9a-z]+)*")
_SPLIT = re.compile(r"[-_./:]")
_RUN = re.compile(r"[0-9a-z]+")
_CHUNK = 256  # items whose lengths are taken together
# a compound id as _TERM finds it: starts a run, holds at least one inner separator
_COMPOUND = re.compile(r"(?<![0-9a-z])[0-9a-z]++(?:[-_./:][0-9a-z]++)+")
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "show",
        "tell",
        "that",
        "the",
        "their",
        "them",
        "there",
        "these",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "please",
        "give",
        "find",
        "get",
        "list",
        "all",
        "any",
    }
)


def tokenize(text: str) -> list[str]:
    """Terms of ``text``: compound ids whole, plus their parts."""
    return _terms(text.lower())


def _terms(low: str) -> list[str]:
    out: list[str] = []
    for term in _TERM.findall(low):
        out.append(term)
        if _SPLIT.search(term):
            out.extend(p for p in _SPLIT.split(term) if p)
    return out


def _length(low: str) -> int:
    """``len(_terms(low))`` without building the terms: one per run of letters/digits, plus
    one per compound id (its whole form; its parts are the runs)."""
    return len(_RUN.findall(low)) + len(_COMPOUND.findall(low))


class BM25Scorer:
    """Okapi BM25 over the given items; ``k1`` and ``b`` as in RelevanceScorerConfig."""

    name = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b

    def score_items(self, items: Sequence[str], query: str) -> list[float]:
        q_terms = [t for t in dict.fromkeys(tokenize(query)) if t not in STOPWORDS]
        if not items or not q_terms:
            return [0.0] * len(items)
        # Only an item whose text holds a query term (as a substring) can score; every
        # other item scores 0 and counts only through its length (the average), which is
        # taken over a chunk of items at once (joined by a space: no term spans two).
        starts = range(0, len(items), _CHUNK)
        if not any(any(t in _chunk_low(items, a) for t in q_terms) for a in starts):
            return [0.0] * len(items)  # no item can score: lengths do not matter
        docs: dict[int, Doc] = {}
        total = 0
        for a in starts:
            low = _chunk_low(items, a)
            if not any(t in low for t in q_terms):
                total += _length(low)
                continue
            for i in range(a, min(a + _CHUNK, len(items))):
                item_low = items[i].lower()
                if any(t in item_low for t in q_terms):
                    doc = _doc(item_low, q_terms)
                    total += doc[1]
                    if doc[0]:
                        docs[i] = doc
                else:
                    total += _length(item_low)
        return bm25_scores(docs, len(items), total, q_terms, self.k1, self.b)


def _chunk_low(items: Sequence[str], a: int) -> str:
    return " ".join(items[a : a + _CHUNK]).lower()


#: An item as BM25 needs it: the counts of the query terms it holds (none 0), its length.
Doc = tuple[dict[str, int], int]


def _doc(low: str, q_terms: Sequence[str]) -> Doc:
    """``(Counter(_terms(low)) restricted to q_terms, len(_terms(low)))`` without building
    the terms: a simple term occurs once per run of letters/digits equal to it (as a term
    of its own or as a part of a compound id), a compound id once per compound equal to it."""
    runs = _RUN.findall(low)
    compounds = _COMPOUND.findall(low)
    counts: dict[str, int] = {}
    for t in q_terms:
        c = (compounds if _SPLIT.search(t) else runs).count(t)
        if c:
            counts[t] = c
    return counts, len(runs) + len(compounds)


def bm25_scores(
    docs: dict[int, Doc],
    n: int,
    total_length: int,
    q_terms: Sequence[str],
    k1: float = 1.5,
    b: float = 0.75,
) -> list[float]:
    """BM25 of ``n`` items normalised by the best, from the items that can score (``docs``:
    index -> query-term counts and length; every other item scores 0) and the total term
    count of all ``n`` items (for the average length). ``q_terms``: distinct, no stopwords."""
    if n == 0:
        return []
    avg_len = total_length / n or 1.0
    df = {t: sum(1 for counts, _ in docs.values() if counts.get(t)) for t in q_terms}
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in q_terms}
    raw = [0.0] * n
    for i, (counts, length) in docs.items():
        score = 0.0
        for t in q_terms:
            tf = counts.get(t, 0)
            if tf:
                norm = tf + k1 * (1 - b + b * length / avg_len)
                score += idf[t] * tf * (k1 + 1) / norm
        raw[i] = score
    best = max(raw)
    return [s / best if best > 0 else 0.0 for s in raw]

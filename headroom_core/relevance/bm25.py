"""BM25 relevance with no dependencies.

Terms are lowercased runs of letters/digits, keeping inner ``-_./:`` so that ids such as
``dep-1027``, ``ch_8f3a`` or ``src/app.py`` stay one term (their parts are indexed too).
Scores are BM25 normalised by the best item, so the top match scores 1.0; an item that
contains a query term that is rare across the items scores high even when it is long.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_TERM = re.compile(r"[0-9a-z]+(?:[-_./:][0-9a-z]+)*")
_SPLIT = re.compile(r"[-_./:]")
_RUN = re.compile(r"[0-9a-z]+")
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
        # other item scores 0 and counts only through its length (the average).
        lows = [item.lower() for item in items]
        docs = {
            i: Counter(_terms(low)) for i, low in enumerate(lows) if any(t in low for t in q_terms)
        }
        n = len(lows)
        avg_len = sum(map(_length, lows)) / n or 1.0
        df = {t: sum(1 for d in docs.values() if t in d) for t in q_terms}
        idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in q_terms}
        raw = [0.0] * n
        for i, doc in docs.items():
            length = sum(doc.values())
            score = 0.0
            for t in q_terms:
                tf = doc.get(t, 0)
                if tf:
                    norm = tf + self.k1 * (1 - self.b + self.b * length / avg_len)
                    score += idf[t] * tf * (self.k1 + 1) / norm
            raw[i] = score
        best = max(raw)
        return [s / best if best > 0 else 0.0 for s in raw]

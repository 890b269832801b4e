"""Multi-hop ranking: pick passages one at a time, each scored against the question plus what
the passages already picked say (the bridge), new evidence over repeated evidence.

At each step every passage left gets the larger of two scores:

- **direct**: its relevance to the question (the scorer's, in [0, 1]) times
  ``REPEAT_FLOOR + (1 - REPEAT_FLOOR) * novelty``, where novelty is the idf-weighted share
  of the question terms it matches that no picked passage matched yet. A passage that only
  repeats what is picked keeps ``REPEAT_FLOOR`` of its relevance; one that brings the other
  half of a comparison question keeps all of it.
- **linked**: the passage is about an entity (its title, see :mod:`._names`) that the
  question names (score 1), or that a sentence of a picked passage names: the picked
  passage's score times ``LINK_FLOOR + (1 - LINK_FLOOR) * w``, where ``w`` is that
  sentence's relevance to the question (in [0, 1]; the sentences of a passage are ranked
  against each other). That is the second hop of a bridge question: "the director of film
  X" picks X's passage, whose sentence "... directed by Y" links the passage about Y,
  which shares few words with the question.

The best passage is picked (ties: relevance, then input order) with that score, which is
non-increasing from pick to pick. Deterministic; BM25 and the core's text processing only,
whatever the scorer.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._names import names_of, subject_of, text_names
from ._text import sentence_relevance, sentence_spans, terms_of

if TYPE_CHECKING:
    from ..relevance import Scorer

REPEAT_FLOOR = 0.5  # share of its relevance a passage keeps when it only repeats picked terms
# share of the picking passage's score a link gets from a sentence of no relevance
LINK_FLOOR = 0.5
QUESTION = -1  # ``via`` of a passage whose entity the question names


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrieved passage: ``text`` (what may be cut), ``title`` (what it is about; may be
    empty) and ``view`` (what the scorer reads; default: title and text)."""

    text: str
    title: str = ""
    view: str | None = None

    def scored_text(self) -> str:
        if self.view is not None:
            return self.view
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass(frozen=True, slots=True)
class Ranking:
    """Passages best first (``order``) and, per passage in input order: ``scores`` (evidence
    score at its pick, in [0, 1]), ``relevance`` (the scorer's, to the question alone),
    ``via`` (the passage whose sentence linked it, :data:`QUESTION` for the question, None
    when picked on its own relevance) and ``names`` (the names that pick it out among these
    passages, see :func:`passage_names`; a title several passages share is nobody's)."""

    order: tuple[int, ...]
    scores: tuple[float, ...]
    relevance: tuple[float, ...]
    via: tuple[int | None, ...]
    names: tuple[tuple[str, ...], ...]


def passage_names(passage: Passage) -> tuple[str, ...]:
    """The names of what ``passage`` is about: its title's, else its first sentence's subject."""
    if passage.title.strip():
        return names_of(passage.title)
    spans = sentence_spans(passage.text)
    subject = subject_of(passage.text[spans[0][0] : spans[0][1]]) if spans else ""
    return (subject,) if subject else ()


def _distinct(passages: Sequence[Passage]) -> list[tuple[str, ...]]:
    """Each passage's names, kept only where they pick out that passage: a name that is the
    whole name (the title, or the opening name) of several passages (chunks of one document)
    names none of them; one that is the whole name of exactly one passage names only it
    ("Ximena Sariñana" names that passage, not "Ximena Sariñana (album)")."""
    names = [passage_names(p) for p in passages]
    whole = Counter(n[0] for n in names if n)
    return [
        tuple(name for name in own if whole[name] == 0 or (whole[name] == 1 and name == own[0]))
        for own in names
    ]


def rank_passages(
    passages: Sequence[Passage],
    query: str,
    scorer: Scorer,
    *,
    prior: Sequence[float] | None = None,
) -> Ranking:
    """Rank ``passages`` for ``query`` hop by hop (see the module docstring). Ties: the
    scorer's relevance, then ``prior`` (a retriever's score, higher first), then input order."""
    n = len(passages)
    tie = list(prior) if prior is not None else [0.0] * n
    scored = scorer.score_items([p.scored_text() for p in passages], query)
    relevance = [min(1.0, max(0.0, float(s))) for s in scored]
    names = _distinct(passages)
    terms = [terms_of(p.scored_text()) for p in passages]
    q_terms = terms_of(query)
    idf = _idf(q_terms, terms)
    link = [1.0 if any(text_names(query, nm) for nm in names[i]) else 0.0 for i in range(n)]
    via: list[int | None] = [QUESTION if link[i] else None for i in range(n)]
    scores = [0.0] * n
    covered: set[str] = set()
    order: list[int] = []
    left = set(range(n))
    while left:
        best = max(
            left,
            key=lambda i: (
                max(_direct(relevance[i], terms[i] & q_terms, covered, idf), link[i]),
                relevance[i],
                tie[i],
                -i,
            ),
        )
        direct = _direct(relevance[best], terms[best] & q_terms, covered, idf)
        scores[best] = max(direct, link[best])
        if direct >= link[best]:
            via[best] = None
        left.discard(best)
        order.append(best)
        covered |= terms[best] & q_terms
        _spread_links(best, scores[best], passages, names, query, left, link, via)
    return Ranking(tuple(order), tuple(scores), tuple(relevance), tuple(via), tuple(names))


def _direct(
    relevance: float, matched: frozenset[str], covered: set[str], idf: dict[str, float]
) -> float:
    total = sum(idf[t] for t in matched)
    if total <= 0:
        return relevance
    novelty = sum(idf[t] for t in matched if t not in covered) / total
    return relevance * (REPEAT_FLOOR + (1 - REPEAT_FLOOR) * novelty)


def _spread_links(
    source: int,
    score: float,
    passages: Sequence[Passage],
    names: Sequence[tuple[str, ...]],
    query: str,
    left: set[int],
    link: list[float],
    via: list[int | None],
) -> None:
    """Raise the link score of every passage left whose entity a sentence of ``source`` names."""
    text = passages[source].text
    targets = [i for i in left if any(name in text for name in names[i])]  # a cheap filter
    if not targets or score <= 0:
        return
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    weights = sentence_relevance(sentences, query)
    for i in targets:
        w = max(
            (
                w
                for sentence, w in zip(sentences, weights, strict=True)
                if any(text_names(sentence, name) for name in names[i])
            ),
            default=None,
        )
        if w is None:
            continue
        strength = score * (LINK_FLOOR + (1 - LINK_FLOOR) * w)
        if strength > link[i]:
            link[i] = strength
            via[i] = source


def _idf(q_terms: frozenset[str], docs: Sequence[frozenset[str]]) -> dict[str, float]:
    n = len(docs)
    idf = {}
    for t in q_terms:
        df = sum(1 for d in docs if t in d)
        idf[t] = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf

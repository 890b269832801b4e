"""Sentence-level fill: which sentences of which passages fit a token budget.

Every sentence of every passage is a unit worth ``passage score * sentence weight``; units
are taken most valuable first while they fit (a unit that does not fit is skipped, a
smaller one after it may still fit). When the whole passage costs no more than the part
kept so far plus the unit (its cut marker outweighs the sentences left), the whole
passage is taken instead. A sentence's weight, in [0, 1], is the largest of:

- 1 for the passage's first sentence (it says what the passage is about, with its title);
- the score of the best other passage it names (the bridge of a multi-hop question:
  "... was directed by Alfred Hitchcock" in the film's passage, "... the cities of
  Concord and Clayton" in the school district's);
- its relevance to the question and to the names that linked its passage (BM25 over the
  core's stemmed terms, normalised by the passage's best sentence), or
  :data:`NEIGHBOUR_WEIGHT` of a neighbour's (answers follow the sentence naming the topic).

So under a tight budget several passages keep their evidence sentences instead of one or
two passages whole, and as the budget grows passages fill up, best first, to whole.

Costs come from the caller (its token counter, its rendering): ``open_cost`` is what a
passage costs once any of it is shown (its title line, a separator, a cut marker),
``whole_cost`` what it costs whole (no marker), ``unit_costs`` what each sentence adds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._names import text_names
from ._text import NEIGHBOUR_WEIGHT, sentence_relevance

SENTENCE_FLOOR = 0.25  # every sentence is worth at least this share of its passage's score


@dataclass(frozen=True, slots=True)
class FillItem:
    """One passage for :func:`plan_fill`: its evidence ``score`` and ``rank`` (0: best),
    per-sentence ``weights`` and ``unit_costs`` (same length), ``open_cost`` and
    ``whole_cost`` (see the module docstring). ``contiguous``: its sentences are taken in
    text order, stopping at the first that does not fit (it keeps its beginning, no holes),
    all worth its first weight."""

    score: float
    rank: int
    weights: tuple[float, ...]
    unit_costs: tuple[int, ...]
    open_cost: int
    whole_cost: int
    contiguous: bool = False


@dataclass(frozen=True, slots=True)
class FillPlan:
    """``kept[i]``: the sentence indices of passage ``i`` kept (sorted), empty when it is left
    out; ``whole[i]``: all of it is kept; ``taken``: (passage, sentence) in the order taken,
    so a caller whose exact count is over can give back the last ones first."""

    kept: tuple[tuple[int, ...], ...]
    whole: tuple[bool, ...]
    taken: tuple[tuple[int, int], ...]
    cost: int


def sentence_weights(
    sentences: Sequence[str],
    query: str,
    *,
    link_names: Sequence[str] = (),
    others: Sequence[tuple[Sequence[str], float]] = (),
) -> tuple[float, ...]:
    """Weights in [0, 1] of a passage's ``sentences`` (see the module docstring).

    ``link_names``: the names that linked this passage (added to the question for
    relevance); ``others``: (names, score) of the other passages, so that a sentence
    naming one is worth that passage's score.
    """
    if not sentences:
        return ()
    base = sentence_relevance(sentences, " ".join([query, *link_names]))
    out = list(base)
    for i in range(1, len(out)):
        out[i] = max(out[i], NEIGHBOUR_WEIGHT * base[i - 1])
        out[i - 1] = max(out[i - 1], NEIGHBOUR_WEIGHT * base[i])
    out[0] = 1.0
    joined = "\n".join(sentences)
    for names, score in sorted(others, key=lambda o: -o[1]):
        if score <= SENTENCE_FLOOR:
            break
        if not any(name in joined for name in names):  # a cheap filter
            continue
        for i, sentence in enumerate(sentences):
            if out[i] < score and any(text_names(sentence, name) for name in names):
                out[i] = score
    return tuple(max(w, SENTENCE_FLOOR) for w in out)


def plan_fill(items: Sequence[FillItem], room: int) -> FillPlan:
    """The most valuable sentences that fit ``room`` (see the module docstring); ties go to
    the better-ranked passage, then the earlier sentence."""
    units = sorted(
        ((i, j) for i, item in enumerate(items) for j in range(len(item.weights))),
        key=lambda u: (-_priority(items[u[0]], u[1]), items[u[0]].rank, u[1]),
    )
    kept: list[set[int]] = [set() for _ in items]
    costs = [0] * len(items)
    used = 0
    taken: list[tuple[int, int]] = []
    closed: set[int] = set()
    for i, j in units:
        item = items[i]
        if j in kept[i] or (item.contiguous and (i in closed or j != len(kept[i]))):
            continue
        add = {j}
        partial = item.open_cost + sum(item.unit_costs[k] for k in kept[i] | add)
        if item.whole_cost <= partial:  # the whole passage costs no more: take all of it
            add = set(range(len(item.weights))) - kept[i]
        after = _cost(item, kept[i] | add)
        if used - costs[i] + after <= room:
            kept[i] |= add
            used += after - costs[i]
            costs[i] = after
            taken.extend((i, k) for k in sorted(add, key=lambda k: k != j))
        else:
            closed.add(i)
    return FillPlan(
        kept=tuple(tuple(sorted(k)) for k in kept),
        whole=tuple(
            len(k) == len(item.weights) and len(k) > 0 for k, item in zip(kept, items, strict=True)
        ),
        taken=tuple(taken),
        cost=used,
    )


def _priority(item: FillItem, j: int) -> float:
    return item.score * (item.weights[0] if item.contiguous else item.weights[j])


def _cost(item: FillItem, kept: set[int]) -> int:
    if len(kept) == len(item.weights):
        return item.whole_cost
    return item.open_cost + sum(item.unit_costs[k] for k in kept)

"""Evidence selection for retrieved passages: which passages, and which of their sentences,
carry the answer to a question under a token budget. Framework-neutral; the LlamaIndex node
postprocessor is a thin adapter over it.

Two steps:

1. :func:`rank_passages` picks passages one at a time (:mod:`._rank`): each pick is scored
   against the question plus what the passages already picked say about it. A passage
   about an entity that the question, or a sentence of a picked passage, names is linked
   (the second hop of a bridge question: "the director of film X" finds X's passage, whose
   "... directed by Y" finds Y's); a passage that only repeats question terms already
   matched is worth less than one that matches the rest (the other half of a comparison).
2. :func:`plan_fill` spends the budget sentence by sentence across passages (:mod:`._fill`):
   each sentence is worth its passage's score times its own weight
   (:func:`sentence_weights`: the first sentence, sentences relevant to the question, and
   sentences naming another retrieved passage weigh most), so a tight budget keeps the
   evidence sentences of several passages rather than two passages whole.

What a passage is about comes from its title (``Passage.title``, e.g. a node's
``metadata["title"]``) or, without one, from the name its first sentence opens with
(:mod:`._names`). Deterministic; BM25 and the core's prose processing
(:mod:`headroom_core.transforms.text_compressor`'s sentence splitter and stemmed terms),
whatever scorer ranks the passages against the question.
"""

from __future__ import annotations

from ._fill import FillItem, FillPlan, plan_fill, sentence_weights
from ._names import names_of, subject_of, text_names
from ._rank import QUESTION, Passage, Ranking, passage_names, rank_passages

__all__ = [
    "QUESTION",
    "FillItem",
    "FillPlan",
    "Passage",
    "Ranking",
    "names_of",
    "passage_names",
    "plan_fill",
    "rank_passages",
    "sentence_weights",
    "subject_of",
    "text_names",
]

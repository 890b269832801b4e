"""The text processing evidence selection shares with the rest of the core: the package's
sentence splitter (:func:`headroom_core.text.line_sentence_spans`: sentences, line by line)
and the prose compressor's stemmed content terms and BM25 over them. One place, so passages
are split and weighed the way :mod:`headroom_core.transforms.text_compressor` splits and
weighs prose."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from ..relevance.bm25 import BM25Scorer
from ..text import line_sentence_spans as sentence_spans
from ..transforms.text_compressor import NEIGHBOUR_WEIGHT, content_terms

__all__ = ["NEIGHBOUR_WEIGHT", "sentence_relevance", "sentence_spans", "terms_of"]

_BM25 = BM25Scorer()


def terms_of(text: str) -> frozenset[str]:
    """The stemmed content terms of ``text``."""
    return frozenset(_stemmed(text).split())


def sentence_relevance(sentences: Sequence[str], query: str) -> list[float]:
    """BM25 of each sentence against ``query`` over stemmed content terms, normalised by the
    best sentence (so in [0, 1]); all 0 when the query has no content term."""
    q = _stemmed(query)
    if not q:
        return [0.0] * len(sentences)
    return _BM25.score_items([_stemmed(s) for s in sentences], q)


@lru_cache(maxsize=8192)
def _stemmed(text: str) -> str:
    # Passages come back query after query (and sentence after sentence within one call).
    return " ".join(content_terms(text))

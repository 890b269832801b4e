"""Prose: left alone unless over its budget; then extractive, whole sentences in order.

The budget is ``ctx.budget_tokens`` when the caller sets one, else
:data:`MAX_PROSE_TOKENS`. Over it, the text is cut into blocks (paragraphs, list items;
headings, tables, fenced and indented code are verbatim blocks, always kept) and prose
blocks into sentences. Sentences are kept whole, never rewritten, in their original
order, in this priority until the budget is met:

1. every sentence that contains a number, a quoted string, an identifier or a
   capitalised name that the query mentions (kept even over the budget);
2. sentences whose BM25 relevance to the query is at least :data:`HIGH_RELEVANCE`
   (stemmed terms; a sentence next to a relevant one in its block shares
   :data:`NEIGHBOUR_WEIGHT` of its score);
3. the first sentence of each block;
4. the other sentences, most relevant first, then the earlier in its block first (so
   without a query: every block's second sentence, then every third, ...); a sentence
   repeated word for word comes last.

Each run of cut sentences becomes one marker, ``[... 4 sentences omitted; ref=<ref>]``,
where the run was; the original is stored once under ``ref`` (kind ``"text"``).

Only prose is touched (:func:`._detect.is_prose`): never code, JSON, logs, search
output, diffs or stack traces. Never more tokens than the input; deterministic; a text
holding a marker is left alone, so compressing the output again returns None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from ..relevance.bm25 import STOPWORDS, Doc, bm25_scores
from ..text import sentence_spans
from ._content import Compressed
from ._detect import is_code_line, is_prose

if TYPE_CHECKING:
    from ._content import ContentContext

MAX_PROSE_TOKENS = 2_000  # prose up to this many tokens is left alone (without a budget)
HIGH_RELEVANCE = 0.5  # normalised BM25 from which a sentence outranks paragraph openers
NEIGHBOUR_WEIGHT = 0.7  # a sentence scores at least this share of its neighbours' score
_SHRINK_ROUNDS = 4  # attempts at meeting the budget

_MARKER_RE = re.compile(r"\[\.\.\. \d+ sentences? omitted; ref=")
_FENCE = re.compile(r"\s*(?:```|~~~)")
_VERBATIM_LINE = re.compile(
    r"\s*(?:#{1,6}\s|\||[-*_=]{3,}\s*$|<[A-Za-z/!])|\t| {4}(?!\s*(?:[-*+]|\d+[.)])\s)"
)
_ITEM_START = re.compile(r"\s*(?:[-*+]|\d+[.)])\s+\S")
_QUESTION_WORD = re.compile(
    r"what|which|who|whom|whose|why|how|when|where|does|did|is|are|was|were|can|could|should"
    r"|would|will|explain|describe|tell|show|list|give|find|please|name",
    re.IGNORECASE,
)
_SUFFIXES = ("ings", "ing", "edly", "ed", "ers", "er", "es", "s", "ly")
_PART = re.compile(r"[0-9a-z]+")
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
_QUOTED = re.compile(r"\"([^\"\n]{2,80})\"|`([^`\n]{1,80})`|\u201c([^\u201d\n]{2,80})\u201d")
_IDENTIFIER = re.compile(
    r"[A-Za-z][A-Za-z0-9]*(?:[_./:-][A-Za-z0-9]+)+|[a-z]+[A-Z]\w*|[A-Z][a-z0-9]+[A-Z]\w*|[A-Z]{2,}\w*"
)
_CAPITALISED = re.compile(r"[A-Z][\w'\u2019-]*(?:\s+[A-Z][\w'\u2019-]*)*")


class _Unit(NamedTuple):
    """A span of the text kept or cut as a whole (a tuple: a long text has a million)."""

    start: int
    end: int
    block: int
    fixed: bool  # a verbatim block: always kept
    rank: int  # position of the sentence in its block (0: the first)


class TextCompressor:
    """Extractive cut of long prose; see the module docstring."""

    name = "text"

    def detect(self, text: str) -> bool:
        return is_prose(text)

    def compress(self, text: str, ctx: ContentContext) -> Compressed | None:
        if not ctx.config.reversible or _MARKER_RE.search(text) or not is_prose(text):
            return None  # every cut here needs retrieval
        before = ctx.count(text)
        limit = ctx.budget_tokens if ctx.budget_tokens is not None else MAX_PROSE_TOKENS
        if before <= limit:
            return None
        units = _segment(text)
        if sum(1 for u in units if not u.fixed) < 2:
            return None
        sentences = [text[u.start : u.end] for u in units]
        must = _must_keep(sentences, units, ctx.query)
        scores = _scores(sentences, units, ctx.query)
        order = _priority(units, sentences, scores, must)
        ref = ctx.planned_ref(text)
        marker_tokens = ctx.count(_marker(10, ref))
        ratio = before / len(text)
        target = float(limit)
        out, tokens, kept = text, before, set(range(len(units)))
        for _ in range(_SHRINK_ROUNDS):
            kept = _choose(units, order, must, target, ratio, marker_tokens)
            out = _render(text, units, kept, ref)
            tokens = ctx.count(out)
            if tokens <= limit:
                break
            target -= (tokens - limit) * 1.1 + marker_tokens
        if tokens >= before or len(kept) == len(units):
            return None
        if tokens > limit:
            ctx.notes.append(f"text: {tokens} tokens, over the budget of {limit}")
        stored = ctx.keep(text, "text")
        if stored != ref:  # a store with its own kind of ref
            ref, out = stored, _render(text, units, kept, stored)
            if ctx.count(out) >= before:
                return None
        dropped = len(units) - len(kept)
        return Compressed(text=out, lossy=True, refs=(ref,), dropped=dropped)


# ---- segmentation ------------------------------------------------------------------------


def _segment(text: str) -> list[_Unit]:
    """Blocks, then the sentences of each prose block, as spans in text order."""
    units: list[_Unit] = []
    for block, (start, end, verbatim) in enumerate(_blocks(text)):
        if verbatim:
            units.append(_Unit(start, end, block, fixed=True, rank=0))
            continue
        for k, (s, e) in enumerate(sentence_spans(text, start, end)):
            units.append(_Unit(s, e, block, fixed=False, rank=k))
    return units


def _blocks(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, verbatim) of each block; blank lines separate blocks, a list item or a
    verbatim line starts a new one, a fenced code block is one verbatim block."""
    blocks: list[tuple[int, int, bool]] = []
    current: list[int] | None = None  # [start, end] of the prose block being built
    fence: int | None = None
    pos = 0
    for line in text.split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        if fence is not None:
            if _FENCE.match(line):
                blocks.append((fence, end, True))
                fence = None
            continue
        if current is not None and (_breaks(line) or _ITEM_START.match(line)):
            blocks.append((current[0], current[1], False))
            current = None
        if _FENCE.match(line):
            fence = start
        elif _breaks(line):
            if line.strip():
                blocks.append((start + _indent(line), end, True))
        elif current is None:
            current = [start + _indent(line), end]
        else:
            current[1] = end
    if current is not None:
        blocks.append((current[0], current[1], False))
    if fence is not None:  # an unclosed fence: verbatim to the end
        blocks.append((fence, len(text.rstrip()), True))
    return blocks


def _breaks(line: str) -> bool:
    """A line that ends the prose block: blank, a fence, or kept verbatim (a heading, a
    table row, a rule, markup, indented or code-like)."""
    return (
        not line.strip()
        or bool(_FENCE.match(line))
        or bool(_VERBATIM_LINE.match(line))
        or is_code_line(line)
    )


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


# ---- scoring and choice ------------------------------------------------------------------


_CHUNK = 256  # sentences looked at together before one by one (most chunks hold no term)
_STOP_PART = re.compile(r"(?<![0-9a-z])(?:" + "|".join(sorted(STOPWORDS)) + r")(?![0-9a-z])")


def _chunks(sentences: list[str]) -> Iterator[tuple[int, str]]:
    """(first index, the chunk's sentences joined by a space) for each run of :data:`_CHUNK`
    sentences: a literal absent from the chunk is absent from each of its sentences."""
    for a in range(0, len(sentences), _CHUNK):
        yield a, " ".join(sentences[a : a + _CHUNK])


def _query_needles(query: str) -> list[tuple[str, re.Pattern[str]]]:
    """Numbers, quoted strings, identifiers and capitalised names of the query: each as
    the literal a match contains and its pattern."""
    needles = {m[0] for m in _IDENTIFIER.finditer(query)}
    needles.update(_NUMBER.findall(_IDENTIFIER.sub(" ", query)))  # "1" of "us-east-1": no
    needles.update(next(g for g in m.groups() if g) for m in _QUOTED.finditer(query))
    for m in _CAPITALISED.finditer(query):
        words = [
            w
            for w in m[0].split()
            if w.lower() not in STOPWORDS and not _QUESTION_WORD.fullmatch(w)
        ]
        if words:
            needles.add(" ".join(words))
    return [
        (n, re.compile(rf"(?<![\w.]){re.escape(n)}(?![\w]|[.,]\d)"))
        for n in sorted(needles)
        if len(n) > 1 or n.isdigit()
    ]


def _must_keep(sentences: list[str], units: list[_Unit], query: str | None) -> set[int]:
    must = {i for i, u in enumerate(units) if u.fixed}
    if not query:
        return must
    needles = _query_needles(query)
    for a, joined in _chunks(sentences):
        present = [pattern for literal, pattern in needles if literal in joined]
        if present:
            chunk = sentences[a : a + _CHUNK]
            must.update(a + k for k, s in enumerate(chunk) if any(p.search(s) for p in present))
    return must


def _scores(sentences: list[str], units: list[_Unit], query: str | None) -> list[float]:
    """BM25 over stemmed terms (all 0 without a query); a sentence scores at least
    :data:`NEIGHBOUR_WEIGHT` times the score of the sentence before or after it in its
    block (answers sit next to the sentence that names the topic: "Delano Las Vegas is a
    hotel. It is owned by MGM Resorts.").

    Only sentences holding a query term (a stem is a prefix of its word, so a substring of
    the lowercased sentence) are split into terms; the others count through their length
    alone, taken over a whole chunk at once."""
    n = len(sentences)
    q_terms = [t for t in dict.fromkeys(_terms(query or "").split()) if t not in STOPWORDS]
    lows = (joined.lower() for _, joined in _chunks(sentences))
    if not q_terms or not any(any(t in low for t in q_terms) for low in lows):
        return [0.0] * n  # no sentence can score: lengths do not matter
    docs: dict[int, Doc] = {}
    total = 0
    for a, joined in _chunks(sentences):
        low = joined.lower()
        total += len(_PART.findall(low)) - len(_STOP_PART.findall(low))
        if any(t in low for t in q_terms):
            for k, sentence in enumerate(sentences[a : a + _CHUNK], a):
                lowered = sentence.lower()
                if any(t in lowered for t in q_terms):
                    stems = _terms(sentence).split()
                    counts = {t: c for t in q_terms if (c := stems.count(t))}
                    if counts:
                        docs[k] = counts, len(stems)
    base = bm25_scores(docs, n, total, q_terms)
    out = list(base)
    for i in docs:
        lift = NEIGHBOUR_WEIGHT * base[i]
        if lift > 0:
            for j in (i - 1, i + 1):
                if 0 <= j < n and units[j].block == units[i].block and out[j] < lift:
                    out[j] = lift
    return out


def _terms(text: str) -> str:
    """Stemmed content terms of ``text``, space-separated (compound ids by their parts)."""
    return " ".join([_stem(t) for t in _PART.findall(text.lower()) if t not in STOPWORDS])


@lru_cache(maxsize=1 << 16)
def _stem(term: str) -> str:
    """A light suffix stripper, so "owns", "owned" and "owner" meet at "own"."""
    if len(term) <= 4 or not term.isalpha():
        return term
    for suffix in _SUFFIXES:
        if term.endswith(suffix) and len(term) - len(suffix) >= 3:
            term = term[: -len(suffix)]
            break
    return term[:-1] if term.endswith("e") and len(term) > 4 else term


def _priority(
    units: list[_Unit], sentences: list[str], scores: list[float], must: set[int]
) -> list[int]:
    """Cuttable units, the most important first (see the module docstring). Ties go to
    the earlier sentence of its block, then to the earlier block; a sentence repeated
    word for word comes last."""
    seen: set[str] = set()
    repeated: set[int] = set()
    for i, sentence in enumerate(sentences):
        if sentence in seen:
            repeated.add(i)
        seen.add(sentence)

    def key(i: int) -> tuple[int, float, int, int]:
        level = 0 if scores[i] >= HIGH_RELEVANCE else 1 if units[i].rank == 0 else 2
        return (3 if i in repeated else level, -scores[i], units[i].rank, i)

    return sorted((i for i in range(len(units)) if i not in must), key=key)


def _choose(
    units: list[_Unit],
    order: list[int],
    must: set[int],
    target: float,
    ratio: float,
    marker_tokens: int,
) -> set[int]:
    """``must`` plus units in priority order while the estimate (markers included) fits."""
    n = len(units)
    kept = set(must)
    spent = sum(ratio * (units[i].end - units[i].start + 1) for i in kept)
    spent += marker_tokens * _gaps(kept, n)
    for i in order:
        left = i == 0 or i - 1 in kept
        right = i == n - 1 or i + 1 in kept
        delta_gaps = -1 if left and right else 1 if not (left or right) else 0
        cost = ratio * (units[i].end - units[i].start + 1) + marker_tokens * delta_gaps
        if spent + cost <= target:
            spent += cost
            kept.add(i)
    return kept


def _gaps(kept: set[int], n: int) -> int:
    return sum(1 for i in range(n) if i not in kept and (i == 0 or i - 1 in kept))


# ---- rendering ---------------------------------------------------------------------------


def _marker(count: int, ref: str) -> str:
    return f"[... {count} sentence{'s' if count != 1 else ''} omitted; ref={ref}]"


def _render(text: str, units: list[_Unit], kept: set[int], ref: str) -> str:
    """Kept spans with their original separators; one marker per run of cut units."""
    n = len(units)
    out = [text[: units[0].start]]
    i = 0
    while i < n:
        if i in kept:
            out.append(text[units[i].start : units[i].end])
            last = i
        else:
            last = i
            while last + 1 < n and last + 1 not in kept:
                last += 1
            out.append(_marker(last - i + 1, ref))
        sep_end = units[last + 1].start if last + 1 < n else len(text)
        out.append(text[units[last].end : sep_end])
        i = last + 1
    return "".join(out)


# ---- shared with other modules -----------------------------------------------------------


def content_terms(text: str) -> list[str]:
    """The stemmed content terms of ``text`` that this compressor's relevance uses."""
    return _terms(text).split()

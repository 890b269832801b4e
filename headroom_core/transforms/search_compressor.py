"""Search output (grep, ripgrep, find): grouped by file; cut to what matters when long.

Each file's path is written once, its results below it (``path`` then ``  123: text``,
``  123:7: text`` with a column, ``  124- text`` for a context line; find output is
grouped by directory, ``dir/`` then ``  name``). Exact duplicate results are dropped and
a text that matches on several lines of one file is written once (``  12,40,88: text``),
so grouping alone loses nothing; it is used when it saves at least :data:`MIN_SAVING`.
Without ``reversible`` (a caller that cannot retrieve) grouping is all that is done.

When there are more than :data:`CUT_ABOVE` results (a result is one line, a run of
adjacent lines when context lines were asked for, or one text merged over lines) or the
grouped text is over ``ctx.budget_tokens``, results are cut. Kept, in this priority:
up to :data:`MAX_RELEVANT` results most relevant to the query (normalised BM25 of the
text at least :data:`RELEVANCE_MIN`, :data:`PATH_BONUS` added in a file whose path the
query names; query terms that nearly every result contains are ignored); then the first
result of each file in file order, then the second of each, and so on. When cutting for
their number, at most :data:`MAX_KEPT` results are kept; with a budget, only as many as
fit it. Each file with cut results ends with
``  [... 40 more matches in this file; ref=<ref>]``; the files with no result left are
named, with their counts, in one summary line. The original is stored once under ``ref``
(kind ``"search"``); ``retrieve(ref, query=path)`` gives a file's lines back.

Never more tokens than the input; deterministic; the output is not search output in any
parsed mode and carries markers, so compressing it again returns None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..relevance.bm25 import STOPWORDS, BM25Scorer, tokenize
from ._content import Compressed
from ._detect import SearchListing, SearchRecord, is_search_output, parse_search

if TYPE_CHECKING:
    from ._content import ContentContext

CUT_ABOVE = 60  # more results than this are cut (at or below: grouping only)
MAX_KEPT = 40  # results kept when cutting without a token budget
MAX_RELEVANT = 15  # results kept for their relevance to the query, at most
RELEVANCE_MIN = 0.5  # normalised BM25 score from which a result counts as relevant
PATH_BONUS = 0.5  # added to the score of results in a file whose path the query names
UBIQUITOUS = 0.8  # query terms found in this share of results do not discriminate
MIN_SAVING = 0.10  # below this fraction of tokens saved, leave the text alone
MAX_LISTED_FILES = 20  # files named in the summary of wholly dropped files
_SHRINK_ROUNDS = 4  # attempts at meeting a token budget
_SAMPLE_CHARS = 64_000  # detect() checks this much of a longer text first

_MARKER_RE = re.compile(r"(?m)^ *\[\.\.\. \d+ more (?:match|entr)[^\]\n]*; ref=")
_MARKER_CHARS = 56  # "  [... 1 more match in this file; ref=0123456789abcdef]" and newline


@dataclass(frozen=True, slots=True)
class _Unit:
    """A result as kept or cut: its rendered lines, what it counts, its text for scoring."""

    file: int
    rank: int  # position within its file
    lines: tuple[str, ...]
    matches: int
    context: int
    text: str


@dataclass(frozen=True, slots=True)
class _Listing:
    parsed: SearchListing
    paths: tuple[str, ...]
    units: tuple[_Unit, ...]


class SearchCompressor:
    """Groups and cuts grep / ripgrep / find output; see the module docstring."""

    name = "search"

    def detect(self, text: str) -> bool:
        if len(text) > _SAMPLE_CHARS:  # a long text: judged by its head (compress re-parses)
            return is_search_output(text[: text.rfind("\n", 0, _SAMPLE_CHARS)])
        return is_search_output(text)

    def compress(self, text: str, ctx: ContentContext) -> Compressed | None:
        parsed = parse_search(text)
        if parsed is None or _MARKER_RE.search(text):
            return None
        listing = _build(parsed)
        before = ctx.count(text)
        budget = ctx.budget_tokens
        full = _render(listing, set(range(len(listing.units))), "")
        full_tokens = ctx.count(full)
        many = len(listing.units) > CUT_ABOVE
        if not many and (budget is None or full_tokens <= budget):
            return _lossless(full, full_tokens, before)
        if before < ctx.config.min_tokens_to_crush or not ctx.config.reversible:
            return _lossless(full, full_tokens, before)
        ratio = full_tokens / max(len(full), 1)
        scores = _scores(listing, ctx.query)
        order = _priority(listing, scores)
        max_units = MAX_KEPT if many else len(listing.units)
        limit = float(budget) if budget is not None else float("inf")
        ref = ctx.planned_ref(text)
        kept, out, tokens = set(), "", before
        for _ in range(_SHRINK_ROUNDS):
            kept = _select(listing, order, max_units, limit, ratio)
            out = _render(listing, kept, ref)
            tokens = ctx.count(out)
            if budget is None or tokens <= budget:
                break
            limit -= (tokens - budget) * 1.1 + 10
        if tokens > (1 - MIN_SAVING) * before:
            return None
        if budget is not None and tokens > budget:
            ctx.notes.append(f"search: {tokens} tokens, over the budget of {budget}")
        stored = ctx.keep(text, "search")
        if stored != ref:  # a store with its own kind of ref
            ref, out = stored, _render(listing, kept, stored)
            if ctx.count(out) >= before:
                return None
        dropped = sum(u.matches for i, u in enumerate(listing.units) if i not in kept)
        return Compressed(text=out, lossy=True, refs=(ref,), dropped=dropped)


def _lossless(full: str, full_tokens: int, before: int) -> Compressed | None:
    if full_tokens > (1 - MIN_SAVING) * before:
        return None
    return Compressed(text=full, lossy=False)


# ---- structure ---------------------------------------------------------------------------


def _build(parsed: SearchListing) -> _Listing:
    """Results grouped by path (first-seen order), exact duplicates dropped, cut into units."""
    groups: dict[str, list[SearchRecord]] = {}
    seen: set[SearchRecord] = set()
    for record in parsed.records:
        if record not in seen:
            seen.add(record)
            groups.setdefault(record.path, []).append(record)
    units: list[_Unit] = []
    for file, (path, records) in enumerate(groups.items()):
        if any(r.context for r in records):
            chunks = _runs(records)
        elif records[0].line is not None:
            chunks = _merged(records)
        else:
            chunks = [[r] for r in records]
        for rank, chunk in enumerate(chunks):
            units.append(_unit(file, rank, path, chunk))
    return _Listing(parsed, tuple(groups), tuple(units))


def _runs(records: list[SearchRecord]) -> list[list[SearchRecord]]:
    """Runs of adjacent lines (a match with its context lines)."""
    runs: list[list[SearchRecord]] = []
    for r in records:
        prev = runs[-1][-1] if runs else None
        if prev and prev.line is not None and r.line is not None and 0 <= r.line - prev.line <= 1:
            runs[-1].append(r)
            continue
        runs.append([r])
    return runs


def _merged(records: list[SearchRecord]) -> list[list[SearchRecord]]:
    """Matches with the same text (and column) in one file, together, at the first one."""
    by_text: dict[tuple[str, int | None], list[SearchRecord]] = {}
    for r in records:
        by_text.setdefault((r.text, r.col), []).append(r)
    return list(by_text.values())


def _unit(file: int, rank: int, path: str, chunk: list[SearchRecord]) -> _Unit:
    first = chunk[0]
    if first.line is None:
        lines = tuple(_line("", r.text) for r in chunk)
    elif len(chunk) > 1 and all(not r.context and r.text == first.text for r in chunk):
        nums = ",".join(str(r.line) for r in chunk)
        lines = (_line(f"{nums}{_col(first)}:", first.text),)
    else:
        lines = tuple(
            _line(f"{r.line}-" if r.context else f"{r.line}{_col(r)}:", r.text) for r in chunk
        )
    matches = sum(1 for r in chunk if not r.context)
    text = " ".join(r.text for r in chunk)
    return _Unit(file, rank, lines, matches, len(chunk) - matches, text)


def _col(r: SearchRecord) -> str:
    return "" if r.col is None else f":{r.col}"


def _line(prefix: str, text: str) -> str:
    if not prefix:
        return "  " + text
    return f"  {prefix} {text}" if text else f"  {prefix}"


# ---- selection ---------------------------------------------------------------------------


def _scores(listing: _Listing, query: str | None) -> list[float]:
    """BM25 of each result's text against the query terms that do not occur in nearly
    every result, plus :data:`PATH_BONUS` when its path holds one of those terms."""
    units = listing.units
    if not query or not units:
        return [0.0] * len(units)
    terms = [t for t in dict.fromkeys(tokenize(query)) if t not in STOPWORDS]
    texts = [u.text.lower() for u in units]
    paths = [p.lower() for p in listing.paths]
    n = len(texts)
    # substring presence: a cheap upper bound on the term's document frequency
    terms = [
        t
        for t in terms
        if sum(1 for u, s in zip(units, texts, strict=True) if t in s or t in paths[u.file])
        < UBIQUITOUS * n
    ]
    if not terms:
        return [0.0] * n
    scores = BM25Scorer().score_items([u.text for u in units], " ".join(terms))
    hits = [any(t in p for t in terms) for p in paths]
    return [s + PATH_BONUS * hits[u.file] for s, u in zip(scores, units, strict=True)]


def _priority(listing: _Listing, scores: list[float]) -> list[int]:
    """Unit indices, most important first: the relevant ones by score, then round-robin
    over the files (every file's first result, then every file's second, ...)."""
    units = listing.units
    relevant = sorted(
        (i for i, s in enumerate(scores) if s >= RELEVANCE_MIN), key=lambda i: (-scores[i], i)
    )[:MAX_RELEVANT]
    chosen = set(relevant)
    rest = sorted(
        (i for i in range(len(units)) if i not in chosen),
        key=lambda i: (units[i].rank, units[i].file, i),
    )
    return relevant + rest


def _select(
    listing: _Listing, order: list[int], max_units: int, limit: float, ratio: float
) -> set[int]:
    """Units in priority order while they fit ``max_units`` and the estimated ``limit``;
    then a file's one cut unit is kept anyway when it is no longer than its marker."""
    units = listing.units
    sizes = [sum(len(line) + 1 for line in u.lines) for u in units]
    per_file: dict[int, list[int]] = {}
    for i, u in enumerate(units):
        per_file.setdefault(u.file, []).append(i)
    longest = max((len(p) for p in listing.paths), default=0)
    spent = ratio * (_MARKER_CHARS + min(len(per_file), MAX_LISTED_FILES) * (longest + 8))
    kept: set[int] = set()
    headed: set[int] = set()
    for i in order:
        if len(kept) >= max_units:
            break
        file = units[i].file
        cost = sizes[i]
        if file not in headed:
            cost += len(listing.paths[file]) + 1 + (_MARKER_CHARS if len(per_file[file]) > 1 else 0)
        if spent + ratio * cost <= limit:
            spent += ratio * cost
            kept.add(i)
            headed.add(file)
    for idx in per_file.values():
        cut = [i for i in idx if i not in kept]
        if len(cut) == 1 and len(cut) < len(idx) and sizes[cut[0]] <= _MARKER_CHARS:
            kept.add(cut[0])
    return kept


# ---- rendering ---------------------------------------------------------------------------


def _render(listing: _Listing, kept: set[int], ref: str) -> str:
    parsed = listing.parsed
    paths_mode = parsed.mode == "paths"
    noun = ("entry", "entries") if paths_mode else ("match", "matches")
    per_file: dict[int, list[int]] = {}
    for i, u in enumerate(listing.units):
        per_file.setdefault(u.file, []).append(i)
    out = list(parsed.prelude)
    gone: list[tuple[str, int]] = []
    for file, idx in per_file.items():
        path = listing.paths[file]
        shown = [i for i in idx if i in kept]
        cut = [listing.units[i] for i in idx if i not in kept]
        if not shown:
            gone.append((path, sum(u.matches for u in cut)))
            continue
        out.append(path)
        for i in shown:
            out.extend(listing.units[i].lines)
        if cut:
            where = "directory" if paths_mode else "file"
            extra = sum(u.context for u in cut)
            more = f" and {extra} context lines" if extra else ""
            n = sum(u.matches for u in cut)
            out.append(f"  [... {n} more {noun[n != 1]}{more} in this {where}; ref={ref}]")
    out.extend(parsed.others)
    if gone:
        place = ("directory", "directories") if paths_mode else ("file", "files")
        out.append(_summary(gone, noun, place, ref))
    out.extend(parsed.epilogue)
    return "\n".join(out)


def _summary(
    gone: list[tuple[str, int]], noun: tuple[str, str], place: tuple[str, str], ref: str
) -> str:
    total = sum(n for _, n in gone)
    named = ", ".join(f"{path} ({n})" for path, n in gone[:MAX_LISTED_FILES])
    if len(gone) > MAX_LISTED_FILES:
        named += f", and {len(gone) - MAX_LISTED_FILES} more {place[1]}"
    where = f"{len(gone)} {place[len(gone) != 1]}"
    return f"[... {total} more {noun[total != 1]} in {where} not shown: {named}; ref={ref}]"

"""Cut any text to a hard token budget by whole lines: errors, query matches, head and
tail go last.

The last resort of :func:`~.router.fit_text` (and the log compressor's, over a budget):
it works on any text, however large, in one pass of a few regex scans. Lines are kept in
this order of priority until the budget is spent, and shown in their original order:

1. error and warning lines (:func:`._templates.classify`), each error with
   :data:`CONTEXT` lines around it: first the lines that *start* with an error level
   (``ERROR``, ``[ERROR]``, ``error[E0308]:``, ``E   ``, ``--- FAIL``, ``npm error``,
   ``panic:``), then the first line of every distinct error template, then the last
   one, then the others;
2. lines holding a word of the query that few lines hold (at most 1 in
   :data:`RARE_SHARE`);
3. the first :data:`HEAD` and last :data:`TAIL` lines;
4. lines kept by the caller's own plan (``extra``: e.g. one line of each log template);
5. the lines nearest the head and the tail, alternately.

Each run of cut lines becomes one marker line ``[... 1234 lines omitted (lines
120-1353); ref=<ref>]`` (1-based line numbers of the text as given, which is stored
under ``ref``). A line longer than a share of the budget keeps its head and ends with
``…[headroom: N chars cut; ref=...]``; a text of one line is cut the same way. Sizes are
estimated from an exact count of a sample and checked with an exact count of the
result, shrinking for up to :data:`ROUNDS` rounds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..relevance.bm25 import STOPWORDS
from . import _templates as tpl

HEAD = 5
TAIL = 5
CONTEXT = 2
RARE_SHARE = 20
ROUNDS = 6
SAMPLE_CHARS = 16_000  # characters counted exactly to estimate tokens per character
LONG_LINE_SHARE = 0.25  # a kept line may use at most this share of the budget
_MARKER_TOKENS = 24  # a gap marker, about
_WORD = re.compile(r"[A-Za-z0-9_][\w.\-/]{2,}")
# An error level at the start of a line, after punctuation, up to three timestamp-like
# fields and a tool name: "ERROR ...", "[ERROR] ...", "2024-01-02 10:00:00 ERROR ...",
# "error[E0308]: ...", "E     assert ...", "--- FAIL: ...", "npm error ...", "panic: ...".
_LEADING_ERROR = re.compile(
    r"^[^\w\n]{0,4}(?:[\d\-:.TZ,/]+[ \t]+){0,3}(?:(?:npm|yarn|pnpm|cargo|mvn|gradle)[ \t]+)?"
    r"[\[(<]?(?:ERROR|Error|error|ERR!?|FATAL|Fatal|fatal|CRITICAL|SEVERE|PANIC|panic|FAIL|FAILED"
    r"|Failed|E)(?![\w-])",
    re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class Cut:
    text: str
    tokens: int
    dropped: int  # lines cut (whole or in part)
    fits: bool


def marker(first: int, last: int, ref: str) -> str:
    """The line that stands for lines ``first..last`` (0-based) of the original."""
    n = last - first + 1
    noun = "line" if n == 1 else "lines"
    span = f"line {first + 1}" if n == 1 else f"lines {first + 1}-{last + 1}"
    return f"[... {n} {noun} omitted ({span}); ref={ref}]"


def cut_to_budget(
    text: str,
    budget: int,
    count: Callable[[str], int],
    ref: str,
    *,
    query: str | None = None,
    extra: Iterable[int] = (),
) -> Cut:
    """``text`` cut by lines to at most ``budget`` tokens (see the module docstring).
    ``fits`` is False only when not even one marker fits the budget."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return Cut(text, count(text), 0, count(text) <= budget)
    ratio = _ratio(text, count)
    order = _priority(text, lines, query, extra)
    sizes = [len(line) for line in lines]
    long_cap = max(64, int(LONG_LINE_SHARE * budget / ratio))
    limit = float(budget)
    best: Cut | None = None
    for _ in range(ROUNDS):
        kept = _choose(order, sizes, ratio, limit, long_cap)
        out = _render(lines, kept, ref, long_cap)
        tokens = count(out)
        dropped = len(lines) - len(kept) + sum(1 for i in kept if sizes[i] > long_cap)
        if best is None or tokens < best.tokens:
            best = Cut(out, tokens, dropped, tokens <= budget)
        if tokens <= budget:
            return best
        limit -= (tokens - budget) * 1.1 + 8
        if limit <= 0:
            break
    last = _render(lines, [], ref, long_cap)
    tokens = count(last)
    if best is None or tokens < best.tokens:
        best = Cut(last, tokens, len(lines), tokens <= budget)
    return best


def _ratio(text: str, count: Callable[[str], int]) -> float:
    """Tokens per character, from an exact count of up to three slices of the text."""
    if len(text) <= SAMPLE_CHARS:
        return max(count(text), 1) / max(len(text), 1)
    third = SAMPLE_CHARS // 3
    mid = len(text) // 2
    parts = (text[:third], text[mid : mid + third], text[-third:])
    return sum(count(p) for p in parts) / sum(len(p) for p in parts)


def _priority(text: str, lines: list[str], query: str | None, extra: Iterable[int]) -> list[int]:
    n = len(lines)
    body = "\n".join(line.rstrip("\r\n") for line in lines)
    starts = tpl.line_starts(body)
    severe, errors = tpl.classify(body, starts)
    first_seen: dict[str, int] = {}
    last_seen: dict[str, int] = {}
    marked = sorted(severe)
    keys = tpl.templates("\n".join(lines[i][:400].rstrip("\r\n") for i in marked))
    for i, key in zip(marked, keys, strict=False):
        first_seen.setdefault(key, i)
        last_seen[key] = i
    leading = tpl.lines_matching(_LEADING_ERROR, body, starts)
    order: list[int] = sorted(leading)
    order += [*sorted(first_seen.values()), *sorted(last_seen.values())]
    order += sorted(tpl.spread(errors, CONTEXT, n))
    order += sorted(severe)
    order += _query_lines(body, starts, query, n)
    order += [*range(min(HEAD, n)), *range(max(0, n - TAIL), n)]
    order += sorted(set(extra))
    lo, hi = min(HEAD, n), max(0, n - TAIL) - 1
    while lo <= hi:
        order.append(lo)
        if hi != lo:
            order.append(hi)
        lo, hi = lo + 1, hi - 1
    return list(dict.fromkeys(i for i in order if 0 <= i < n))


def _query_lines(body: str, starts: list[int], query: str | None, n: int) -> list[int]:
    if not query:
        return []
    terms = {t.lower() for t in _WORD.findall(query)} - STOPWORDS
    out: set[int] = set()
    for term in sorted(terms):
        hits = tpl.lines_matching(re.compile(re.escape(term), re.IGNORECASE), body, starts)
        if 0 < len(hits) <= max(1, n // RARE_SHARE):
            out |= hits
    return sorted(out)


def _choose(
    order: list[int], sizes: list[int], ratio: float, limit: float, long_cap: int
) -> list[int]:
    kept: set[int] = set()
    spent = 0.0
    for i in order:
        cost = ratio * min(sizes[i], long_cap + 60) + 1
        gap = _MARKER_TOKENS if (i - 1 not in kept or i + 1 not in kept) else 0
        if spent + cost + gap > limit:
            continue
        kept.add(i)
        spent += cost + gap
    return sorted(kept)


def _render(lines: list[str], kept: list[int], ref: str, long_cap: int) -> str:
    out: list[str] = []
    prev = -1
    for i in kept:
        if i > prev + 1:
            out.append(marker(prev + 1, i - 1, ref) + "\n")
        line = lines[i]
        if len(line) > long_cap:
            body = line.rstrip("\r\n")
            end = line[len(body) :]
            cut = len(body) - long_cap
            line = f"{body[:long_cap]}…[headroom: {cut} chars cut; ref={ref}]{end or chr(10)}"
        out.append(line)
        prev = i
    if prev < len(lines) - 1:
        out.append(marker(prev + 1, len(lines) - 1, ref))
    return "".join(out)


__all__ = ["Cut", "cut_to_budget", "marker"]

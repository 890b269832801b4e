"""What every code planner shares: elidable spans, function blocks, query matching, markers.

A *planner* reads the lines of one source file and proposes :class:`Span` s: runs of lines
inside a function body that may be replaced by one marker line. Which spans are really
elided is decided here, the same way for every language (:func:`choose`): small spans,
spans that hold a marker already, and spans the query points at stay whole.

Brace languages describe their functions as a tree of :class:`Block` s (from tree-sitter or
from brace matching); :func:`spans_from_blocks` turns that tree into spans, keeping the
signature of every top-level function and of every named function declared directly in a
function body (``function onerror(err) {`` inside ``sendfile``), so the output still reads
as the file's outline.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

#: Spans of at most this many lines are kept: a marker would save next to nothing.
SMALL_SPAN = 3

#: A span holding more than this share of the text's non-blank lines is kept when at most
#: :data:`FOCUS_LEAD` lines (or a fifth of the text) come before it: such a text is a view
#: of one function (``sed -n 282,449p``, a read with a line range), read for that body.
MAX_SPAN_SHARE = 0.5
FOCUS_LEAD = 8

#: A span is elided only if its text costs at least this many tokens more than its marker.
MIN_GAIN_TOKENS = 8

#: One marker line, whatever the language's comment syntax around it.
MARKER_RE = re.compile(
    r"\[headroom: (?:body|value) elided, \d+ lines \(L\d+-L\d+\); ref=[^\]\s]*\]"
)

_IDENT_RE = re.compile(r"[A-Za-z_$][\w$]*")
_DOTTED_RE = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+")

# Words of a question that name nothing in code: English function words, words about code
# itself, and the literals and keywords every language shares.
_STOPWORDS = frozenset(
    """
    a an the and or not no nor but if then else of to in on at by for from with without
    into onto over under about as is are was were be been being am do does did done
    doing have has had having can could should would will shall may might must it its
    this that these those there here what which who whom whose why how when where i me
    my we our you your he she they them their his her all any each every some such more
    most less least only also just very too so than same other please show explain tell
    find look see use used uses using make makes made get gets got fix fixes fixed bug
    bugs issue code file files line lines function functions method methods class
    classes body bodies variable variables call calls called work works working happen
    happens return returns true false none null nil self this undefined new def let var
    const func fn out up down off time times way like now first last next one two well back
    even still after before again while because since until through between both few own
    want need try give take put keep know think say wrong right instead happen happening
    break breaks broken fail fails failing failed crash crashes slow fast
    """.split()  # noqa: SIM905
)


@dataclass(frozen=True, slots=True)
class Span:
    """Lines ``start..end`` (0-based, inclusive) of one function body that may be elided.

    ``indent`` is written before the marker; ``owners`` names the enclosing definitions,
    outermost first (``("Session", "request")``), for matching the query. ``kind`` is
    ``"body"``, or ``"value"`` for the inside of a long bracketed module or class constant.
    """

    start: int
    end: int
    indent: str
    owners: tuple[str, ...]
    kind: str = "body"


@dataclass(slots=True)
class Block:
    """A function whose body is a ``{ ... }`` block.

    ``start`` is the first line of its declaration, ``open`` the line of the body's ``{``,
    ``close`` the line of the matching ``}``. ``structural`` marks a named declaration
    standing directly in its parent's body (or any top-level function): its signature is
    kept even when the parent's body is elided. ``children`` are the nearest nested
    functions.
    """

    name: str
    start: int
    open: int
    close: int
    structural: bool
    children: list[Block] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Query:
    """The identifiers a user's question names (see :func:`parse_query`)."""

    plain: frozenset[str]
    dotted: frozenset[str]

    @property
    def used(self) -> frozenset[str]:
        """Names that keep a body when the body mentions them."""
        return self.plain | {d.rsplit(".", 1)[1] for d in self.dotted}


def parse_query(query: str | None) -> Query:
    """Identifiers in ``query``, case kept; stopwords and one-letter names left out."""
    if not query:
        return Query(frozenset(), frozenset())
    dotted = {m.group(0) for m in _DOTTED_RE.finditer(query)}
    plain = {
        word
        for word in _IDENT_RE.findall(_DOTTED_RE.sub(" ", query))
        if len(word) > 1 and word.lower() not in _STOPWORDS
    }
    return Query(frozenset(plain), frozenset(dotted))


def _names_owner(owners: tuple[str, ...], query: Query) -> bool:
    """Does the query name a definition enclosing the span (``Client``, ``fetch``,
    ``Client.fetch``; a Go receiver type or a JS object counts like a class)?"""
    if any(part in query.plain for name in owners for part in name.split(".")):
        return True
    qualname = ".".join(owners)
    return any(qualname == d or qualname.endswith("." + d) for d in query.dotted)


def choose(
    spans: Iterable[Span],
    lines: Sequence[str],
    query: Query,
    *,
    count: Callable[[str], int] | None = None,
    marker_tokens: int = 0,
) -> list[Span]:
    """The spans to elide, in line order: not small, not the body a one-function view is
    about, no marker inside, not asked about, and (with ``count``) worth at least
    :data:`MIN_GAIN_TOKENS` more than a marker."""
    used = query.used
    chosen = []
    code_lines = [i for i, line in enumerate(lines) if line.strip()]
    lead = max(FOCUS_LEAD, len(code_lines) // 5)
    for span in spans:
        size = span.end - span.start + 1
        if size <= SMALL_SPAN:
            continue
        before = bisect.bisect_left(code_lines, span.start)  # non-blank lines above it
        if size > MAX_SPAN_SHARE * len(code_lines) and before <= lead:
            continue
        text = "\n".join(lines[span.start : span.end + 1])
        if MARKER_RE.search(text) or _names_owner(span.owners, query):
            continue
        if used and not used.isdisjoint(_IDENT_RE.findall(text)):
            continue
        if count is not None and count(text) < marker_tokens + MIN_GAIN_TOKENS:
            continue
        chosen.append(span)
    chosen.sort(key=lambda s: s.start)
    return _disjoint(chosen)


def _disjoint(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for span in spans:
        if not out or span.start > out[-1].end:
            out.append(span)
    return out


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def spans_from_blocks(
    blocks: Iterable[Block], lines: Sequence[str], comment_only: Sequence[bool]
) -> list[Span]:
    """Spans for a function tree. ``comment_only[i]``: line i holds a comment and no code."""
    out: list[Span] = []
    for block in blocks:
        _function_spans(block, (), lines, comment_only, out)
    return out


def _function_spans(
    block: Block,
    owners: tuple[str, ...],
    lines: Sequence[str],
    comment_only: Sequence[bool],
    out: list[Span],
) -> None:
    owners = (*owners, block.name) if block.name else owners
    cursor = block.open + 1
    for child in sorted(block.children, key=lambda b: b.start):
        if not child.structural:
            continue
        if child.start < cursor or child.close >= block.close:
            continue  # shares a line with what came before: part of the body text
        end = child.start - 1
        while end >= cursor and (comment_only[end] or not lines[end].strip()):
            end -= 1  # a comment just above a nested function belongs to it
        _add(out, cursor, end, lines, owners)
        _function_spans(child, owners, lines, comment_only, out)
        cursor = child.close + 1
    _add(out, cursor, block.close - 1, lines, owners)


def _add(
    out: list[Span], start: int, end: int, lines: Sequence[str], owners: tuple[str, ...]
) -> None:
    if end < start:
        return
    first = next((i for i in range(start, end + 1) if lines[i].strip()), None)
    if first is None:
        return
    out.append(Span(start, end, indent_of(lines[first]), owners))


def marker(style: str, kind: str, count: int, first: int, last: int, ref: str) -> str:
    """The text of one marker (without indentation); ``style`` is ``"python"`` or ``"c"``."""
    note = f"[headroom: {kind} elided, {count} lines (L{first}-L{last}); ref={ref}]"
    return f"...  # {note}" if style == "python" else f"// ... {note}"

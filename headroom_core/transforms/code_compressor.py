"""Source code compression: keep the file's outline, elide function bodies.

For a file an agent read (``cat``, ``read_file``, also ``cat -n`` / numbered listings) the
output is the same file, in the same order, where every kept line is the original line,
byte for byte: imports, module and class level code, every function's decorators,
signature and docstring, and the signature of every function declared directly inside
another. A function body is replaced by one marker line at its indentation::

    ...  # [headroom: body elided, 23 lines (L120-L142); ref=1a2b3c4d5e6f7a8b]     (Python)
    // ... [headroom: body elided, 23 lines (L120-L142); ref=1a2b3c4d5e6f7a8b]     (others)

``L120-L142`` are 1-based line numbers of the elided lines in the original text (for a
numbered listing, the listing's own numbers), which is stored whole, once, in
``ctx.store`` under ``ref``.

Kept whole (:func:`~._code_outline.choose`): bodies of at most three lines or that cost
little more than a marker, the body a one-function view is about, bodies of a function,
method or class the query names (``prepare_body``, ``Session.request``), and bodies that
use a name the query mentions (:func:`~._code_outline.parse_query`). Marker lines are
never elided again, so the compressor is idempotent. Long bracketed Python constants
(``X = [`` ... ``]``) are cut the same way, with a ``value elided`` marker.

The result is None (text left alone) below ``ctx.config.min_tokens_to_crush`` tokens,
when the text is not code, or when it would save less than :data:`MIN_SAVING`.

Parsers: Python with :mod:`ast` (indentation when it does not parse);
JavaScript/TypeScript, Go, Java, Rust and C with tree-sitter when the ``code`` extra is
installed, else (and for C++, C#, Kotlin, ...) brace matching (:mod:`._code_generic`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from ._code_generic import plan_braces
from ._code_outline import Span, choose, marker, parse_query
from ._code_python import plan_by_indent, plan_python
from ._code_treesitter import plan_tree_sitter
from ._content import Compressed

if TYPE_CHECKING:
    from ._content import ContentContext

MIN_SAVING = 0.10  # below this fraction of tokens saved, leave the text alone
MIN_LINES = 8  # detect(): fewer non-blank lines are not worth outlining
_SAMPLE_LINES = 400  # detect() and the language guess look at most at this many lines
_PLACEHOLDER_REF = "0" * 16

_LISTING_RE = re.compile(r"^( *)(\d*)(\t|→|:)")  # "   12<TAB>", "    12→", "12:"
_LISTING_EDGE = 3  # header / footer lines allowed around a numbered listing
_SEARCH_LINE_RE = re.compile(r"^(?:[\w./\\-]+:\d+[:-]|\d+[:-])")  # grep -n output

Planner = Callable[[Sequence[str]], "list[Span] | None"]


def _python(lines: Sequence[str]) -> list[Span] | None:
    spans = plan_python(lines)
    return spans if spans is not None else plan_by_indent(lines)


def _braces(language: str, flavor: str) -> Planner:
    def plan(lines: Sequence[str]) -> list[Span] | None:
        spans = plan_tree_sitter(lines, language)
        return spans if spans is not None else plan_braces(lines, flavor)

    return plan


# language -> planner; every language but Python writes // markers.
PLANNERS: dict[str, Planner] = {
    "python": _python,
    "javascript": _braces("javascript", "js"),
    "typescript": _braces("typescript", "js"),
    "tsx": _braces("tsx", "js"),
    "go": _braces("go", "go"),
    "rust": _braces("rust", "rust"),
    "java": _braces("java", "c"),
    "c": _braces("c", "c"),
    "c-like": _braces("c-like", "c"),  # C++, C#, Kotlin, Swift, PHP, ...: braces only
}

# language -> line patterns that are typical of it (scored over a sample of lines)
_SIGNALS: dict[str, re.Pattern[str]] = {
    "python": re.compile(
        r"^\s*(?:(?:async\s+)?def\s+\w+\s*\(|class\s+\w+\s*[(:]|from\s+[\w.]+\s+import\s"
        r"|import\s+[\w.]+(?:\s+as\s+\w+)?\s*$|elif\s.*:\s*$|except\b.*:\s*$|try:\s*$"
        r"|@[\w.]+(?:\(.*)?$|if __name__)"
    ),
    "go": re.compile(r"^(?:package\s+\w+\s*$|func\s|type\s+\w+\s+(?:struct|interface)\b)|:= "),
    "rust": re.compile(
        r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:fn|struct|enum|impl|trait|mod|use)\s|\blet\s+mut\s"
    ),
    "java": re.compile(
        r"^(?:package\s+[\w.]+;|import\s+(?:static\s+)?[\w.*]+;)"
        r"|^\s*(?:public|private|protected)\s+(?:static\s+)?(?:final\s+)?[\w<>\[\],]+\s+\w+\s*\("
    ),
    "c": re.compile(r"^\s*#\s*(?:include|define|ifn?def|endif|pragma)\b|\bstd::|->\w+"),
    "javascript": re.compile(
        r"^\s*(?:(?:export\s+)?(?:default\s+)?(?:async\s+)?function\b|(?:const|let|var)\s+\S+\s*="
        r"|import\s.*\bfrom\s+['\"]|export\s|module\.exports)|\brequire\(|=>\s*[{(]?\s*$"
    ),
}
_TYPESCRIPT_RE = re.compile(
    r"^\s*(?:export\s+)?(?:interface|type|enum)\s+\w+|:\s*(?:string|number|boolean|any|void"
    r"|unknown|never)\b|\bimport\s+type\b|\bas\s+const\b|\bReact\.FC\b"
)
_JSX_RE = re.compile(r"</\w[\w.]*>|<\w[\w.]*(?:\s[^<>]*)?/>|^\s*<\w[\w.]*[\s>]|return\s*\(?\s*<\w")
_SHAPE_RE = re.compile(r"(?:[{}\[\]();:,>\\]|=>)\s*$|^\s*(?:[}\])]|@|#|<)")
_COMMENT_LINE_RE = re.compile(r"^\s*(?://|/\*|\*|#(?!\s*(?:include|define|if|endif)))")
# a sentence at the margin: six words or more, no code punctuation, no leading keyword
_PROSE_LINE_RE = re.compile(
    r"^(?!(?:import|from|package|use|using|def|class|return|const|let|var|func|type)\b)"
    r"[A-Za-z][\w,.'’!?:\"-]*(?:[ \t]+[\w,.'’!?:\"-]+){5,}[ \t]*$"
)
_LOG_LINE_RE = re.compile(
    r"^\s*\[?(?:\d{4}-\d\d-\d\d[ T]\d\d:\d\d|\d\d:\d\d:\d\d)"
    r"|^\s*\[?(?:INFO|WARN|WARNING|ERROR|DEBUG)\b"
)


@dataclass(frozen=True, slots=True)
class _Listing:
    """A text's lines and, for a numbered listing, each line's number prefix.

    Listings: ``cat -n`` (``   12<TAB>``), read tools (``    12→``) and SWE-agent windows
    (``12:``, numbers consecutive, unlike ``grep -n`` output), with up to
    :data:`_LISTING_EDGE` header or footer lines around them (``[File: ...]``,
    ``(40 more lines above)``), which are kept and not parsed.
    """

    lines: list[str]  # as given
    code: list[str]  # with any number prefix taken off; "" for header / footer lines
    prefixes: list[str]  # "" for every line when the text is not a numbered listing

    @classmethod
    def of(cls, text: str) -> _Listing:
        lines = text.split("\n")
        plain = cls(lines, lines, [""] * len(lines))
        matches = [_LISTING_RE.match(line) for line in lines]
        numbered = [i for i, m in enumerate(matches) if m is not None and m.group(2)]
        if len(numbered) < 3:
            return plain
        first, last = numbered[0], numbered[-1]
        sep = matches[first].group(3)  # type: ignore[union-attr]
        if first > _LISTING_EDGE or len(lines) - 1 - last > _LISTING_EDGE:
            return plain
        for i in range(first, last + 1):
            m = matches[i]
            if (m is None or m.group(3) != sep) and lines[i].strip():
                return plain
        numbers = [int(matches[i].group(2)) for i in numbered]  # type: ignore[union-attr]
        if not _in_order(numbers, consecutive=sep == ":"):
            return plain
        prefixes = [""] * len(lines)
        code = [""] * len(lines)
        for i in range(first, last + 1):
            m = matches[i]
            prefixes[i] = m.group(0) if m is not None else ""
            code[i] = lines[i][len(prefixes[i]) :]
        return cls(lines, code, prefixes)

    def number(self, index: int) -> int:
        m = _LISTING_RE.match(self.prefixes[index])
        return int(m.group(2)) if m is not None and m.group(2) else index + 1

    def marker_prefix(self, start: int, end: int) -> str:
        """The number prefix of a marker for lines ``start..end``, digits blanked."""
        prefix = next((p for p in self.prefixes[start : end + 1] if p), "")
        return re.sub(r"\d", " ", prefix)


def _in_order(numbers: list[int], *, consecutive: bool) -> bool:
    pairs = zip(numbers, numbers[1:], strict=False)
    if consecutive:
        return all(b == a + 1 for a, b in pairs)
    return all(b > a for a, b in pairs)


def guess_language(lines: Sequence[str]) -> str | None:
    """The planner key for ``lines`` (see :data:`PLANNERS`), or None if it is not code."""
    sample = [line for line in lines[:_SAMPLE_LINES] if line.strip()]
    if len(sample) < MIN_LINES or _looks_like_json(lines):
        return None
    if sum(1 for line in sample if _LOG_LINE_RE.match(line)) >= 0.2 * len(sample):
        return None
    if sum(1 for line in sample if _SEARCH_LINE_RE.match(line)) >= 0.5 * len(sample):
        return None
    if _is_document_or_diff(sample):
        return None
    scores = {lang: sum(1 for s in sample if p.search(s)) for lang, p in _SIGNALS.items()}
    best = max(scores, key=lambda lang: scores[lang])  # dict order breaks ties
    body = [line for line in sample if not _COMMENT_LINE_RE.match(line)]
    shaped = sum(1 for line in body if _SHAPE_RE.search(line))
    if scores[best] < 2:  # no language's marks: still code if it is shaped like C
        return "c-like" if body and shaped >= 0.7 * len(body) and _has_braces(body) else None
    if best != "python" and shaped < 0.5 * len(body):
        return None
    if best == "javascript":
        typed = any(_TYPESCRIPT_RE.search(line) for line in sample)
        jsx = any(_JSX_RE.search(line) for line in sample)
        return ("tsx" if jsx else "typescript") if typed else "javascript"
    if best == "c" and scores["java"] == 0:
        return "c" if not any("::" in line or "class " in line for line in sample) else "c-like"
    return best


def _is_document_or_diff(sample: Sequence[str]) -> bool:
    """Markdown with fenced code, prose with some code in it, or a unified diff."""
    if sum(1 for line in sample if line.lstrip().startswith(("```", "~~~"))) >= 2:
        return True
    if any(line.startswith("@@ ") for line in sample) and any(
        line.startswith(("+++ ", "diff --git")) for line in sample
    ):
        return True
    prose = sum(1 for line in sample if _PROSE_LINE_RE.match(line))
    return prose >= 0.3 * len(sample)


def _has_braces(lines: Sequence[str]) -> bool:
    ends = [line.rstrip()[-1:] for line in lines]
    return ends.count(";") >= 2 and "{" in ends and "}" in ends


def _looks_like_json(lines: Sequence[str]) -> bool:
    text = "\n".join(lines).strip()
    if not text or text[0] not in "[{" or text[-1] not in "]}":
        return False
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


class CodeCompressor:
    """Outlines source code by eliding function bodies; see the module docstring."""

    name = "code"

    def detect(self, text: str) -> bool:
        listing = _Listing.of(text)
        language = guess_language(listing.code)
        if language != "python":
            return language is not None
        return plan_python(listing.code[: _SAMPLE_LINES * 4]) is not None or _python_shaped(
            listing.code
        )

    def compress(self, text: str, ctx: ContentContext) -> Compressed | None:
        if not ctx.config.reversible:
            return None  # an elided body can only be read back by retrieval
        before = ctx.count(text)
        if before < ctx.config.min_tokens_to_crush:
            return None
        listing = _Listing.of(text)
        language = guess_language(listing.code)
        if language is None:
            return None
        spans = PLANNERS[language](listing.code)
        style = "python" if language == "python" else "c"
        cost = ctx.count(marker(style, "body", 10, 100, 1000, _PLACEHOLDER_REF))
        query = parse_query(ctx.query)
        chosen = choose(spans or (), listing.code, query, count=ctx.count, marker_tokens=cost)
        if not chosen:
            return None
        limit = (1 - MIN_SAVING) * before
        if ctx.count(_render(listing, chosen, style, _PLACEHOLDER_REF)) > limit:
            return None
        ref = ctx.keep(text, "code")
        out = _render(listing, chosen, style, ref)
        if ctx.count(out) > limit:
            return None
        dropped = sum(span.end - span.start + 1 for span in chosen)
        return Compressed(text=out, lossy=True, refs=(ref,), dropped=dropped)


def _python_shaped(lines: Sequence[str]) -> bool:
    """Python that does not parse (cut short): enough ``def`` / ``class`` / import lines."""
    return sum(1 for line in lines[:_SAMPLE_LINES] if _SIGNALS["python"].search(line)) >= 3


def _render(listing: _Listing, spans: Sequence[Span], style: str, ref: str) -> str:
    out: list[str] = []
    cursor = 0
    for span in spans:
        out.extend(listing.lines[cursor : span.start])
        first, last = listing.number(span.start), listing.number(span.end)
        count = span.end - span.start + 1
        line = listing.marker_prefix(span.start, span.end) + span.indent
        line += marker(style, span.kind, count, first, last, ref)
        if listing.lines[span.end].endswith("\r"):
            line += "\r"
        out.append(line)
        cursor = span.end + 1
    out.extend(listing.lines[cursor:])
    return "\n".join(out)

"""Shared content detectors: diffs, stack traces, search output, prose.

:func:`is_diff` and :func:`is_stack_trace` answer "does this text CONTAIN one, anywhere":
the router keeps such texts whole, so a compressor never cuts a hunk or a frame.
:func:`is_search_output` and :func:`is_prose` answer "is this text, as a whole, of that
kind"; both are False for any text that contains a diff or a stack trace.

Search output is parsed here (:func:`parse_search`) because detecting it *is* parsing
it; :mod:`.search_compressor` renders what this module parses. Modes:

- ``numbered``: ``path:123:text`` / ``path:123:7:text`` (grep -n, rg --no-heading,
  rg --vimgrep), with ``path-124-text`` context lines (-A/-B/-C) and ``--`` separators;
- ``heading``: rg's default tty layout, a path line then ``123:text`` lines, blank
  line between files;
- ``plain``: ``path:text`` (grep -r without -n), paths with a directory and an extension;
- ``paths``: one path per line (find, ``rg -l``, ``grep -l``).

Compiler and linter diagnostics (``a.c:3:5: error: ...``, ``x.py:1:1: E501 ...``) have
the numbered shape but are not search results; they are left to the log compressor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import orjson

# ---- diffs and stack traces -------------------------------------------------------------

_DIFF_HEADER = re.compile(r"^diff --(?:git|cc|combined) \S", re.M)
_HUNK = re.compile(r"^@@@? (?:-\d+(?:,\d+)? )+\+\d+(?:,\d+)? @@@?", re.M)

# "at pkg.Class.method(File.java:12)" / Maven's "at pkg.Class.method (File.java:12)" /
# "at X.Y() in f.cs:line 3" / "at fn (file.js:3:14)"
_AT_FRAME = r"[ \t]+at (?:[\w$.<>/]+\.[\w$<>]+ ?\([^)\n]*\)|[^\n]*?\(?[^\s()]+:\d+:\d+\)?)[^\n]*"
# Each pattern with the literals one of which any match contains: a text holding none of
# them is skipped without running the pattern (a record array or a log of many megabytes
# would otherwise be scanned line by line by every pattern).
_TRACE_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    # Python (plain and IPython): the header, then a frame within the next lines.
    (
        ("Traceback (most recent call last)",),
        re.compile(
            r"Traceback \(most recent call last\):?[^\n]*\n(?:[^\n]*\n){0,2}?"
            r"[^\n]*(?:File \"[^\"\n]+\", line \d+|Cell In\[\d+\], line \d+)"
        ),
    ),
    # Java / Kotlin / C# / JavaScript: two consecutive "at ..." frames.
    ((" at ", "\tat "), re.compile(rf"^{_AT_FRAME}\r?\n{_AT_FRAME}", re.M)),
    # Go: a goroutine header, a function line, a tab-indented file.go:line.
    (
        ("goroutine ",),
        re.compile(r"^goroutine \d+ \[[^\]\n]+\]:\r?\n[^\n]+\r?\n\t[^\n]+\.go:\d+", re.M),
    ),
    # Rust panics, Ruby and PHP frames.
    (("' panicked at ",), re.compile(r"^thread '[^'\n]*' panicked at ", re.M)),
    (
        (":in ",),
        re.compile(r"^[ \t]*from \S[^\n]*:\d+:in [`'][^\n]*\n[ \t]*from \S[^\n]*:\d+:in ", re.M),
    ),
    (("#0 ",), re.compile(r"^#0 [^\n]+\(\d+\): [^\n]*\n#1 ", re.M)),
)


def is_diff(text: str) -> bool:
    """True if ``text`` contains a unified/combined diff (a ``diff --git`` header or a hunk)."""
    return ("diff --" in text and bool(_DIFF_HEADER.search(text))) or (
        "@@ -" in text and bool(_HUNK.search(text))
    )


def is_stack_trace(text: str) -> bool:
    """True if ``text`` contains a stack trace: Python, Java/Kotlin/C#/JS ``at`` frames,
    Go goroutine dumps, Rust panics, Ruby or PHP frames."""
    return any(
        any(lit in text for lit in literals) and pattern.search(text)
        for literals, pattern in _TRACE_PATTERNS
    )


# ---- search output ----------------------------------------------------------------------

MIN_RECORDS = 3  # fewer result lines are not worth calling search output
MIN_PATH_LINES = 5  # for path lists (find): fewer is just a few paths
_RECORD_SHARE = 0.6  # result lines / non-empty lines, at least
_OTHER_SHARE = 0.1  # non-result lines between results / results, at most
_DIAGNOSTIC_SHARE = 0.5  # diagnostics / results: from here on it is compiler output

_PATH = r"(?:[A-Za-z]:[\\/])?[^\s:\"'{}\[\](),;<>|=]+"
_NUMBERED = re.compile(rf"({_PATH}):(\d+):(?:(\d+):)?(.*)")
_HEADING_LINE = re.compile(r"(\d+)([:-])(?:(\d+):)?(.*)")
_PLAIN = re.compile(rf"({_PATH}):(?!:)(.*)")  # not "tests/a.py::test_x PASSED" (pytest)
_PATH_ONLY = re.compile(r"(?:[A-Za-z]:)?[^\s:\"'{}\[\](),;<>|=*?]+")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}$")
_BARE_NAME = re.compile(r"[A-Za-z][\w-]*")
_LEVELS = frozenset({"ERROR", "WARNING", "WARN", "INFO", "DEBUG", "FATAL", "CRITICAL", "TRACE"})
_DIAGNOSTIC = re.compile(
    r"^ ?(?:(?:fatal )?error|warning|note|hint|info|[A-Z]{1,4}\d{2,4})\b", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class SearchRecord:
    """One result line. ``line``/``col`` are None where the tool printed none."""

    path: str
    line: int | None
    col: int | None
    text: str
    context: bool = False  # a -A/-B/-C context line, not a match


@dataclass(frozen=True, slots=True)
class SearchListing:
    """A parsed search output: lines before the results, results, other lines between
    results (in order), lines after the results."""

    mode: str  # "numbered" | "heading" | "plain" | "paths"
    prelude: tuple[str, ...]
    records: tuple[SearchRecord, ...]
    others: tuple[str, ...]
    epilogue: tuple[str, ...]


def is_search_output(text: str) -> bool:
    """True if ``text`` is grep / ripgrep / find output as a whole (see the module doc)."""
    return parse_search(text) is not None


def parse_search(text: str) -> SearchListing | None:
    """The results of a search output, or None if ``text`` is not one."""
    if "\n" not in text.strip() or is_diff(text) or is_stack_trace(text):
        return None
    lines = text.split("\n")
    for parse in (_parse_numbered, _parse_heading, _parse_plain, _parse_paths):
        listing = parse(lines)
        if listing is not None:
            return listing
    return None


def _is_pathlike(path: str, *, strict: bool = False) -> bool:
    if not any(c.isalpha() for c in path) or path.upper() in _LEVELS:
        return False
    has_dir = "/" in path or "\\" in path
    if strict:
        return has_dir and bool(_EXTENSION.search(path))
    return has_dir or bool(_EXTENSION.search(path)) or bool(_BARE_NAME.fullmatch(path))


def _assemble(
    mode: str, lines: list[str], hits: dict[int, SearchRecord], structural: frozenset[int]
) -> SearchListing | None:
    """Split ``lines`` around the result lines ``hits`` (index -> record) and check shares.
    ``structural`` lines (rg file headings) belong to the results but are not records."""
    if len(hits) < MIN_RECORDS:
        return None
    first, last = min(hits.keys() | structural), max(hits)
    nonempty = sum(1 for line in lines if line.strip())
    others = tuple(
        line
        for i, line in enumerate(lines[first : last + 1], first)
        if i not in hits and i not in structural and line.strip() and line != "--"
    )
    covered = len(hits) + len(structural)
    if covered < _RECORD_SHARE * nonempty or len(others) > _OTHER_SHARE * len(hits):
        return None
    records = tuple(hits[i] for i in sorted(hits))
    diagnostics = sum(1 for r in records if not r.context and _DIAGNOSTIC.match(r.text))
    if diagnostics >= _DIAGNOSTIC_SHARE * len(records):
        return None
    return SearchListing(mode, tuple(lines[:first]), records, others, tuple(lines[last + 1 :]))


def _fold_columns(hits: dict[int, SearchRecord]) -> dict[int, SearchRecord]:
    """Columns only if every match has one (rg --column); else "12:30:x" is line 12, text "30:x"."""
    if all(r.col is not None for r in hits.values() if not r.context):
        return hits
    return {
        i: r
        if r.col is None
        else SearchRecord(r.path, r.line, None, f"{r.col}:{r.text}", r.context)
        for i, r in hits.items()
    }


def _parse_numbered(lines: list[str]) -> SearchListing | None:
    hits: dict[int, SearchRecord] = {}
    for i, line in enumerate(lines):
        m = _NUMBERED.fullmatch(line)
        if m and _is_pathlike(m[1]):
            col = int(m[3]) if m[3] is not None else None
            hits[i] = SearchRecord(m[1], int(m[2]), col, m[4])
    if len(hits) < MIN_RECORDS:
        return None
    hits = _fold_columns(hits)
    hits.update(_context_lines(lines, hits))
    return _assemble("numbered", lines, hits, frozenset())


def _context_lines(lines: list[str], hits: dict[int, SearchRecord]) -> dict[int, SearchRecord]:
    """``path-12-text`` lines whose path is that of the match before or after them (a path
    may itself hold ``-12-``, so only known paths are tried)."""
    after: dict[int, str] = {}
    upcoming = ""
    for i in range(len(lines) - 1, -1, -1):
        if i in hits:
            upcoming = hits[i].path
        else:
            after[i] = upcoming
    found: dict[int, SearchRecord] = {}
    before = ""
    for i, line in enumerate(lines):
        if i in hits:
            before = hits[i].path
            continue
        for path in (before, after[i]):
            if path and line.startswith(path + "-"):
                num, sep, rest = line[len(path) + 1 :].partition("-")
                if sep and num.isdigit():
                    found[i] = SearchRecord(path, int(num), None, rest, context=True)
                    break
    return found


def _parse_heading(lines: list[str]) -> SearchListing | None:
    hits: dict[int, SearchRecord] = {}
    headings: set[int] = set()
    path: str | None = None
    for i, line in enumerate(lines):
        m = _HEADING_LINE.fullmatch(line) if path is not None else None
        if path is not None and m:
            if m[2] == "-":
                hits[i] = SearchRecord(path, int(m[1]), None, line[len(m[1]) + 1 :], context=True)
            else:
                hits[i] = SearchRecord(path, int(m[1]), _int(m[3]), m[4])
        elif path is not None and line == "--":
            continue
        elif _is_heading(lines, i):
            path = line
            headings.add(i)
        else:
            path = None
    if len(headings) < 2:
        return None
    return _assemble("heading", lines, _fold_columns(hits), frozenset(headings))


def _is_heading(lines: list[str], i: int) -> bool:
    line = lines[i]
    return (
        i + 1 < len(lines)
        and bool(_PATH_ONLY.fullmatch(line))
        and _is_pathlike(line)
        and bool(_HEADING_LINE.fullmatch(lines[i + 1]))
    )


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)


def _parse_plain(lines: list[str]) -> SearchListing | None:
    hits: dict[int, SearchRecord] = {}
    for i, line in enumerate(lines):
        m = _PLAIN.fullmatch(line)
        if m and _is_pathlike(m[1], strict=True) and not _NUMBERED.fullmatch(line):
            hits[i] = SearchRecord(m[1], None, None, m[2])
    if all(r.text.strip().isdigit() for r in hits.values()):  # grep -c counts
        return None
    return _assemble("plain", lines, hits, frozenset())


def _parse_paths(lines: list[str]) -> SearchListing | None:
    """One path per line; a record is (directory with its trailing separator, name)."""
    hits: dict[int, SearchRecord] = {}
    for i, line in enumerate(lines):
        if _PATH_ONLY.fullmatch(line) and ("/" in line or "\\" in line) and _is_pathlike(line):
            cut = max(line.rstrip("/\\").rfind("/"), line.rstrip("/\\").rfind("\\")) + 1
            hits[i] = SearchRecord(line[:cut], None, None, line[cut:])
    if len(hits) < MIN_PATH_LINES:
        return None
    return _assemble("paths", lines, hits, frozenset())


# ---- prose -------------------------------------------------------------------------------

MIN_PROSE_WORDS = 8
_SAMPLE_CHARS = 16_000  # prose statistics are taken on about this many characters
_FENCE = re.compile(r"^\s*(?:```|~~~)")
_CODE_START = re.compile(
    r"\s*(?:def |class |import |from \S+ import |elif |try:|except\b|function\b|const |let "
    r"|var |public |private |protected |package |func |#include|#define|using |namespace "
    r"|@\w+|if ?\(|for ?\(|while ?\(|[{}]|//|/\*|\*/|\d+(?::|\t|\u2192))"
)
_LOG_LINE = re.compile(
    r"^\s*\[?(?:\d{4}-\d\d-\d\d[ T]\d\d:\d\d|\d\d:\d\d:\d\d|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d"
    r"|(?:TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL|CRITICAL)\b)"
)
_SYMBOL = re.compile(r"[=_{}\[\]<>\\|*#@&^~`$+]")
_WORD = re.compile(r"\w+")
_ALPHA_WORD = re.compile(r"(?<!\w)[^\W\d_]+(?!\w)")
_TERMINATOR = re.compile(r"[.!?][\"')\]]*(?=\s|$)|[。！？]")
_PROSE_LIMITS = {
    "alpha_share": 0.7,  # alphabetic words / all words, at least
    "words_per_line": 8.0,  # words / non-empty line (headings aside), at least
    "code_share": 0.1,  # code-like lines / lines, at most
    "log_share": 0.2,  # log-like lines / lines, at most
    "symbol_share": 0.04,  # code symbols / non-space characters, at most
    "words_per_terminator": 35.0,  # words per sentence end (. ! ?), at most
}


def is_code_line(line: str) -> bool:
    """A line that looks like code or a numbered listing (``cat -n``, ``12:``)."""
    end = line.rstrip()[-2:]
    return (
        bool(_CODE_START.match(line))
        or end[-1:] in ("{", "}", ";")
        or (end[-1:] == ":" and ")" in end)
        or " => " in line
    )


def is_prose(text: str) -> bool:
    """True if ``text`` is natural-language prose (light Markdown allowed: headings, lists,
    fenced code blocks that are not most of it); False for JSON, code, logs, tables,
    search output, diffs and stack traces, and for symbol-heavy Markdown."""
    stripped = text.strip()
    if not stripped or _is_json(stripped) or is_diff(text) or is_stack_trace(text):
        return False
    body, fenced = _body_lines(text)
    if not body or fenced > len(body):
        return False
    body = _sample(body)
    joined = "\n".join(body)
    cjk = 0 if joined.isascii() else len(_cjk().findall(joined))
    alpha = len(_ALPHA_WORD.findall(joined)) + cjk
    n_words = len(_WORD.findall(joined)) + cjk
    if n_words < MIN_PROSE_WORDS:
        return False
    limits = _PROSE_LIMITS
    nonspace = len("".join(joined.split())) or 1
    return (
        alpha >= limits["alpha_share"] * n_words
        and n_words >= limits["words_per_line"] * sum(1 for b in body if b.lstrip()[:1] != "#")
        and sum(map(is_code_line, body)) <= limits["code_share"] * len(body)
        and sum(1 for b in body if _LOG_LINE.match(b)) <= limits["log_share"] * len(body)
        and len(_SYMBOL.findall(joined)) <= limits["symbol_share"] * nonspace
        and len(_TERMINATOR.findall(joined)) * limits["words_per_terminator"] >= n_words
        and parse_search(joined) is None
    )


@lru_cache(maxsize=1)
def _cjk() -> re.Pattern[str]:
    """Kana, CJK ideographs and Hangul: each counts as a word (compiled on first use: the
    class is slow to compile and most texts are ASCII)."""
    return re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def _body_lines(text: str) -> tuple[list[str], int]:
    """Non-empty lines outside fenced code blocks, and the number of fenced lines."""
    body: list[str] = []
    fenced = 0
    inside = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            inside = not inside
            fenced += 1
        elif inside:
            fenced += 1
        elif line.strip():
            body.append(line)
    return body, fenced


def _sample(lines: list[str]) -> list[str]:
    """Every k-th line (and at most :data:`_SAMPLE_CHARS` of each), so that long texts are
    judged on about that many characters."""
    total = sum(map(len, lines))
    if total <= _SAMPLE_CHARS:
        return lines
    return [line[:_SAMPLE_CHARS] for line in lines[:: -(-total // _SAMPLE_CHARS)]]


def _is_json(stripped: str) -> bool:
    if stripped[0] in "{[" and stripped[-1] in "}]":
        try:
            orjson.loads(stripped)
            return True
        except orjson.JSONDecodeError:
            pass
    lines = stripped.split("\n")
    starts = sum(1 for line in lines if line.lstrip()[:1] in ("{", "}", "[", "]", '"'))
    return starts >= 0.3 * len(lines)

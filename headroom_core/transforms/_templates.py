"""Line templates and line classes for log compression.

A *template* is a line with its variable parts masked: numbers, times, hex ids, UUIDs,
IPs, ids such as ``blk_-123``, paths and URLs (from the first ``/`` or ``\\``), quoted
values, ``key=value`` values (short lower-case words like ``true`` excepted), month and
weekday names; runs of blanks count as one. Lines of one template are the same event with
different values.

A line is *severe* when it must never be cut: a WARN-or-worse level word (any case;
Android ``W``/``E``/``F``/``A`` letters), a failure, an exception or a stack frame.
*Error* lines are the severe lines that start or belong to a failure report (exceptions,
stack frames, tracebacks, ``FAILED``, ``error:`` / ``fatal:`` diagnostics); they are also
kept with some context around them. A bare level (``[error]``, ``WARN``) is kept without
context, or a log that repeats one error line would keep everything around it.

Speed: every regex runs once over the whole text and starts with a literal or a narrow
character class, so the regex engine skips ahead in C instead of trying each position
(a pattern with a leading look-around is ~10x slower on a 300 KB log). Matches are mapped
back to line numbers with a bisect over the line offsets.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable

MASK = "<*>"

# Applied in this order; none can match across a newline, so a line's template does not
# depend on its neighbours (which keeps compression idempotent).
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r'"[^"\n]{0,200}"'), MASK),  # quoted values
    (re.compile(r"'[^'\n]{0,200}'"), MASK),
    (re.compile(r"/[\w.\-/]+"), MASK),  # paths and URLs, from their first slash
    (re.compile(r"\\[\w.\-\\]+"), MASK),  # Windows paths
    # key=value, except short lower-case words (true, off, root) that tell events apart
    (re.compile(r"=(?![a-z]{1,7}(?:[\s,;)\]}'\"]|$))[^\s,;)\]}'\"]+", re.M), "=" + MASK),
    (
        re.compile(
            r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec|Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b"
        ),
        MASK,
    ),
    (re.compile(r"0[xX][0-9a-fA-F]+"), MASK),  # hex literals
    # numbers, times, IPs[:port], versions, hex ids and UUIDs, from their first digit
    (re.compile(r"\d[0-9a-fA-F]*(?:[.:,\-]\d[0-9a-fA-F]*|-[0-9a-fA-F]{4,}(?![0-9a-zA-Z]))*"), MASK),
    # hex ids that start with a letter (a64f992 -> <*>); the look-behind sits after the
    # first character so the engine can still scan fast
    (re.compile(r"[a-fA-F](?<![0-9A-Za-z][a-fA-F])[a-fA-F]{0,40}<\*>"), MASK),
)
_SIGN_RE = re.compile(r"-(?<![0-9A-Za-z]-)<\*>")

_LEVEL_WORDS = ("warning", "warn", "error", "err", "fatal", "critical", "severe", "panic")
_ERROR_WORDS = frozenset(_LEVEL_WORDS) - {"warning", "warn"}
# On the lower-cased text; the left word boundary is checked in Python (a leading
# look-behind would disable the engine's fast scan).
_WORD_RE = re.compile(r"(?:" + "|".join(_LEVEL_WORDS) + r"|exception)(?![\w/\-])")
_WORD_RE_I = re.compile(_WORD_RE.pattern, re.IGNORECASE)  # if lower() changes lengths
_BRACKET_RE = re.compile(r"\[(?:crit|alert|emerg)\]")  # syslog / Apache levels, lower-cased
_EXC_RE = re.compile(r"(?:Exception|Error)\b|FAIL(?:ED|URE)?\b")  # IOException, ValueError
_LINE_RE = re.compile(  # [ \t], never \s: a pattern must not run across blank lines
    r"^(?:"
    r"[\d\-]{5,10} [\d:.]{8,15}[ \t]+\d+[ \t]+\d+[ \t]+(?P<tt>[VDIWEFA]) "  # logcat threadtime
    r"|(?:[\d\-]{5,10} [\d:.]{8,15}[ \t]+)?(?P<br>[VDIWEFA])/[^\s(:]+[ \t]*[(:]"  # brief
    r"|(?P<err>"
    r"[ \t]+at [\w$.<>/]+ ?\("  # JVM / JS stack frame
    r"|[ \t]*Caused by:|[ \t]*\.\.\. \d+ more\b"
    r"|Traceback \(most recent call last\)|[ \t]+File \"[^\"\n]+\", line \d+"  # Python
    r"|panic:|goroutine \d+ \["  # Go
    r"|E {2,}\S"  # pytest failure detail
    r"))",
    re.MULTILINE,
)
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")


def templates(text: str) -> list[str]:
    """The template of every line of ``text`` (split on ``\\n``), in order."""
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    text = _SIGN_RE.sub(MASK, text)  # blk_-1 is like blk_1; worker-1 stays worker-<*>
    while MASK + MASK in text:
        text = text.replace(MASK + MASK, MASK)
    text = text.replace("\t", " ")
    while "  " in text:  # str.replace beats a regex here by ~20x
        text = text.replace("    ", " ").replace("  ", " ")
    return text.split("\n")


def template_of(line: str) -> str:
    """The template of one line (the same as :func:`templates` gives it in any text)."""
    return templates(line)[0]


def line_starts(text: str) -> list[int]:
    """Offset of the first character of every ``\\n``-separated line."""
    starts = [0]
    find = text.find
    pos = find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = find("\n", pos + 1)
    return starts


def lines_matching(pattern: re.Pattern[str], text: str, starts: list[int]) -> set[int]:
    """Indices of the lines where ``pattern`` matches (a match's first line)."""
    return {bisect_right(starts, m.start()) - 1 for m in pattern.finditer(text)}


def classify(text: str, starts: list[int]) -> tuple[set[int], set[int]]:
    """(severe, error) line indices; every error line is also severe."""
    severe: set[int] = set()
    error: set[int] = set()

    def add(pos: int, is_error: bool) -> None:
        line = bisect_right(starts, pos) - 1
        severe.add(line)
        if is_error:
            error.add(line)

    low = text.lower()
    word_re = _WORD_RE
    if len(low) != len(text):  # a few non-ASCII letters lower-case to two characters
        low, word_re = text, _WORD_RE_I
    for m in word_re.finditer(low):
        start, end = m.span()
        if start == 0 or (low[start - 1] not in _WORD_CHARS and low[start - 1] not in "/.-"):
            word = m.group().lower()
            add(start, word == "exception" or (word in _ERROR_WORDS and low[end : end + 1] == ":"))
    for m in _BRACKET_RE.finditer(low):
        add(m.start(), False)
    for m in _EXC_RE.finditer(text):
        if _word_start(text, m.start()).isupper():
            add(m.start(), True)
    for m in _LINE_RE.finditer(text):
        letter = m.group("tt") or m.group("br")
        if m.group("err") is not None:
            add(m.start(), True)
        elif letter in ("W", "E", "F", "A"):
            add(m.start(), False)
    return severe, error


def _word_start(text: str, pos: int) -> str:
    """The first character of the word that contains ``text[pos]`` (looking back at most
    64 characters, so a huge blob of words cannot make this quadratic)."""
    stop = max(0, pos - 64)
    while pos > stop and text[pos - 1] in _WORD_CHARS:
        pos -= 1
    return text[pos]


def display(template: str, limit: int = 80) -> str:
    """A short label for a template: leading timestamp-like tokens dropped, cut to ``limit``."""
    tokens = template.split(" ")
    start = next(
        (i for i, tok in enumerate(tokens) if any(c.isalpha() for c in tok.replace(MASK, ""))),
        0,
    )
    label = " ".join(tokens[start:]).strip().replace('"', "'")
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def spread(indices: Iterable[int], radius: int, size: int) -> set[int]:
    """Every index within ``radius`` of one of ``indices``, clipped to ``range(size)``."""
    out: set[int] = set()
    for i in indices:
        out.update(range(max(0, i - radius), min(size, i + radius + 1)))
    return out

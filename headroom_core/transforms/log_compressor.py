"""Log and build-output compression: collapse repeated line templates, keep what matters.

Lines are grouped by template (numbers, ids, hex, IPs, ... masked; see
:mod:`._templates`). Of each template the first and the last occurrence stay verbatim;
the occurrences in between are replaced by ONE marker line, placed where the first cut
line was::

    [... 312 more lines like line 14 omitted, from lines 15-980 (template "INFO
    dfs.DataNode$DataXceiver: Receiving block blk_<*> src: <*>"); ref=0f3a9c5e1b2d4f60]

Line numbers are 1-based, as ``str.splitlines`` and ``headroom_retrieve`` count them, in
the original text, which is stored once in ``ctx.store`` under ``ref``: the cut lines are
exactly the lines of that span that have the template of line 14 and are not in the output.
Templates seen at most twice are therefore never cut.

Without ``reversible`` (a caller that cannot retrieve) nothing is stored and the marker
ends after the template, without ``; ref=...``: it still says what was omitted, and every
line shape, warning and error stays. This is the one answer-safe cut such a caller gets.

Never cut, kept verbatim and in order: WARN-or-worse lines (any case; Android ``W``/``E``
letters), failures, exceptions and stack frames plus :data:`CONTEXT` lines around each
error report, the first :data:`HEAD` and last :data:`TAIL` lines, and marker lines. All
of these are kept again when the output is compressed again, so a second pass cuts
nothing (idempotent). ``detect`` is the router's job; ``compress`` does not call it.

A budget (``ctx.budget_tokens``) is a hard cap: when the grouped text is still over it,
the log is cut by lines with :func:`._cut.cut_to_budget` (errors with their context,
lines matching the query, head and tail go last; then one line of each template).
Text reaching this compressor through the router has had its escape sequences and
carriage-return redraws resolved (:mod:`._terminal`); the ref gives back the original.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from . import _templates as tpl
from ._content import Compressed
from ._cut import cut_to_budget

if TYPE_CHECKING:
    from ._content import ContentContext

HEAD = 5  # first lines always kept
TAIL = 5  # last lines always kept
CONTEXT = 2  # lines kept before and after each error / exception line
MIN_CUT_LINES = 3  # a template is collapsed only if at least this many lines go...
MIN_CUT_CHARS = 240  # ...and they hold at least this many characters (> one marker)
MIN_SAVING = 0.10  # below this fraction of tokens saved, leave the text alone
MIN_LINES = 20  # detect(): fewer non-empty lines are not a log
_SAMPLE_LINES = 400  # detect() looks at most at this many lines...
_LINE_CHARS = 500  # ...and at most at this many characters of each

# Our markers and other compressors' ("[... N lines omitted; ref=...]", "[headroom: ...]"),
# and ours without a ref (``reversible=False``).
_MARKER_RE = re.compile(
    r"(?m)^\[(?:\.\.\. \d+ |headroom: )[^\n]*\bref="
    r"|^\[\.\.\. \d+ more lines like line \d+ omitted, "
)
_MARKER_CHARS = 160  # a marker's usual length, for the size estimate

# detect(): per-line signals, searched in the first characters of a line.
_TIMESTAMP_RE = re.compile(
    r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d|\d\d:\d\d:\d\d|\b\d{6} \d{6}\b|\b1\d{9}(?:\.\d+)?\b"
)
_LEVEL_RE = re.compile(  # upper case, bracketed, or "Info:" / "Info   " (not prose "info")
    r"\b(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|FATAL|CRITICAL|SEVERE)\b"
    r"|[\[<(](?i:trace|debug|info|notice|warn|warning|error|fatal|crit|critical|severe)[\]>)]"
    r"|\b(?:Trace|Debug|Info|Notice|Warn|Warning|Error|Fatal|Critical|Severe)(?::| {2,})"
    r"|^[VDIWEF]/|\s\d+\s+[VDIWEF]\s"  # Android logcat brief / threadtime
)
_BUILD_RE = re.compile(  # build, install and test runners, matched at the start of a line
    r"^(?:\[\s*\d+%\]|\[\d+/\d+\]|#\d+ |Step \d+/\d+|> Task :|make(?:\[\d+\])?:"
    r"|npm (?:ERR|WARN|notice|http|info|verb|sill|timing|error|warn)\b|={3,}|-- "
    r"|--- (?:PASS|FAIL)|=== RUN|ok\s|PASS\b|FAIL\b|\s*(?:PASS|FAIL) \S"
    r"|\s*[\u2713\u2714\u2715\u2717\u00d7\u25cb\u25cf\u2022] "  # jest / mocha: ✓ ✕ ○ ●
    r"|\s+at [\w$.<>/]+ ?\(|\s*Caused by: |\s+\.\.\. \d+ more|==> \S|Generated \S+ app"
    r"|(?:info|warn|warning|error|debug|verbose|silly):\s"  # winston / npmlog style levels
    r"|\(node:\d+\) \w*Warning|\s+\d+\) test |\s+(?:code|left|right|stacktrace):"  # node, ExUnit
    r"|Running ExUnit|Finished in [\d.]+ |\d+ (?:tests?|doctests?), \d+ failures?"
    r"|\s+\(\w+ [\d.]+\) \S+:\d+:"  # Elixir stack frame "(phoenix 1.8.3) lib/x.ex:12:"
    r"|(?:Get|Hit|Ign|Err):\d+ |Setting up |Unpacking |Selecting previously"
    r"|Requirement already satisfied|Successfully (?:installed|built)"
    r"|\s*(?:Compiling|Building|Linking|Downloading|Installing|Collecting|Running|Finished"
    r"|Fresh|Checking|Resolving|Fetching|Scanning|Generating|Processing)\b"
    r"|\s*(?:gcc|g\+\+|cc|c\+\+|clang\+*|javac|rustc|tsc|ld)\s"
    r"|[\w/.\-]+\.\w+:\d+(?::\d+)?:"  # compiler diagnostic file:line[:col]:
    r"|test .+ \.\.\. (?:ok|FAILED|ignored)"
    r"|[\w/.\-]+::\S+.*\b(?:PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b)"
)
_CODE_RE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import |return\b|elif |else\b|try:|except\b"
    r"|function\b|const |let |var |public |private |protected |package |func |#include"
    r"|using |namespace |@\w+)"
    r"|[{};]\s*$|^\s*[})\]][;,)]*\s*$"
)
_LINE_NUMBER_RE = re.compile(r"^\s*\d+(?:\t|→)")  # `cat -n` style listings
_NUMBER_RE = re.compile(r"\s*-?[\d.:/\- ]*\d[\d.:/\- ]*$")  # a value, not a column name
_DIFF_RE = re.compile(r"(?m)^@@ -\d+(?:,\d+)? \+\d+")  # unified diff hunk header


class LogCompressor:
    """Collapses repeated log lines by template; see the module docstring."""

    name = "log"

    def detect(self, text: str) -> bool:
        lines = [line for line in text.split("\n") if line.strip()]
        if len(lines) < MIN_LINES or _is_json(text, lines) or _DIFF_RE.search(text):
            return False
        whole = _sample(lines)
        if _is_table(whole):
            return False
        sample = [_LINE_NUMBER_RE.sub("", line[:_LINE_CHARS], count=1) for line in whole]
        if _count(_CODE_RE, sample) >= 0.25 * len(sample):
            return False
        signals = sum(1 for line in sample if _log_signal(line))
        return signals >= 0.5 * len(sample) or _shared_prefix_share(sample) >= 0.6

    def compress(self, text: str, ctx: ContentContext) -> Compressed | None:
        lines = text.splitlines(keepends=True)  # numbered as headroom_retrieve numbers them
        budget = ctx.budget_tokens
        before = ctx.count(text) if budget is None else ctx.estimate(text)
        if budget is not None and before <= budget and ctx.count(text) <= budget:
            budget = None  # fits: the usual rules decide
        if budget is None and (len(lines) < MIN_LINES or before < ctx.config.min_tokens_to_crush):
            return None
        plan = _plan("\n".join(text.splitlines()))
        ref: str | None = None
        if plan.cuts and plan.kept_chars <= (1 - MIN_SAVING) * len(text):
            # Without ``reversible`` nothing is stored and the markers name no ref.
            ref = ctx.keep(text, "log") if ctx.config.reversible else None
            out = _render(lines, plan, ref)
            tokens = ctx.count(out)
            if tokens <= (1 - MIN_SAVING) * before and (budget is None or tokens <= budget):
                dropped = sum(len(cut.lines) for cut in plan.cuts)
                return Compressed(text=out, lossy=True, refs=(ref,) if ref else (), dropped=dropped)
        if budget is None or not ctx.config.reversible:
            return None
        # Over the budget even grouped: cut by lines, errors, query matches, head and tail
        # last, then one line of each template (those the plan keeps).
        ref = ref or ctx.keep(text, "log")
        cut_lines = {i for cut in plan.cuts for i in cut.lines}
        kept = (i for i in range(len(lines)) if i not in cut_lines)
        cut = cut_to_budget(text, budget, ctx.count, ref, query=ctx.query, extra=kept)
        return Compressed(text=cut.text, lossy=True, refs=(ref,), dropped=cut.dropped)


@dataclass(frozen=True, slots=True)
class _Cut:
    """The cut occurrences of one template (0-based indices) and its first kept line."""

    template: str
    example: int
    lines: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    cuts: tuple[_Cut, ...]
    kept_chars: int  # a rough size of the output, to skip hopeless texts before storing


def _plan(body: str) -> _Plan:
    """Which lines of ``body`` (lines joined by ``\\n``) to cut, grouped by template."""
    starts = tpl.line_starts(body)
    starts.append(len(body) + 1)
    temps = tpl.templates(body)
    keep = _protected(body, starts, len(temps))
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, template in enumerate(temps):
        first.setdefault(template, i)
        last[template] = i
    keep.update(first.values())
    keep.update(last.values())
    groups: dict[str, list[int]] = {}
    for i, template in enumerate(temps):
        if i not in keep:
            groups.setdefault(template, []).append(i)
    cuts: list[_Cut] = []
    kept_chars = len(body)
    for template, idx in groups.items():
        chars = sum(starts[i + 1] - starts[i] for i in idx)
        if len(idx) >= MIN_CUT_LINES and chars >= MIN_CUT_CHARS:
            cuts.append(_Cut(template, first[template], tuple(idx)))
            kept_chars -= chars - _MARKER_CHARS
    return _Plan(tuple(cuts), kept_chars)


def _protected(body: str, starts: list[int], size: int) -> set[int]:
    """Lines never cut: severe/error lines (+ context), markers, head and tail."""
    keep, errors = tpl.classify(body, starts)
    keep |= tpl.spread(errors, CONTEXT, size)
    keep |= tpl.lines_matching(_MARKER_RE, body, starts)
    keep.update(range(min(HEAD, size)))
    keep.update(range(max(0, size - TAIL), size))
    return keep


def _render(lines: list[str], plan: _Plan, ref: str | None) -> str:
    """Kept lines in order, each cut group's marker where its first cut line was."""
    markers: dict[int, str] = {}
    for cut in plan.cuts:
        markers.update(dict.fromkeys(cut.lines, ""))
        at = lines[cut.lines[0]]
        markers[cut.lines[0]] = _marker(cut, ref) + (at[len(at.rstrip("\r\n")) :] or "\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        marker = markers.get(i)
        if marker is None:
            out.append(line)
        elif marker:
            out.append(marker)
    return "".join(out)


def _marker(cut: _Cut, ref: str | None) -> str:
    return (
        f"[... {len(cut.lines)} more lines like line {cut.example + 1} omitted, from lines "
        f'{cut.lines[0] + 1}-{cut.lines[-1] + 1} (template "{tpl.display(cut.template)}")'
        + (f"; ref={ref}]" if ref else "]")
    )


def _is_json(text: str, lines: list[str]) -> bool:
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        try:
            orjson.loads(stripped)
            return True
        except orjson.JSONDecodeError:
            pass
    starts_json = sum(1 for line in lines[:_SAMPLE_LINES] if line.lstrip()[:1] in ("{", '"'))
    return starts_json >= 0.5 * min(len(lines), _SAMPLE_LINES)


def _sample(lines: list[str]) -> list[str]:
    """The first half of the sample from the top, the rest evenly spread (deterministic)."""
    if len(lines) <= _SAMPLE_LINES:
        return lines
    head = _SAMPLE_LINES // 2
    step = (len(lines) - head) / (_SAMPLE_LINES - head)
    return lines[:head] + [lines[head + int(k * step)] for k in range(_SAMPLE_LINES - head)]


def _log_signal(line: str) -> bool:
    prefix = line[:80]
    return bool(
        _TIMESTAMP_RE.search(prefix[:48]) or _LEVEL_RE.search(prefix) or _BUILD_RE.match(line)
    )


def _count(pattern: re.Pattern[str], lines: list[str]) -> int:
    return sum(1 for line in lines if pattern.search(line))


def _is_table(sample: list[str]) -> bool:
    """CSV/TSV (a header of names, then rows with as many fields) or rows without blanks."""
    if sum(1 for line in sample if " " not in line.strip()) >= 0.6 * len(sample):
        return True
    header = sample[0]
    if _TIMESTAMP_RE.search(header):
        return False
    for sep in (",", "\t", ";", "|"):
        try:
            names = next(csv.reader([header], delimiter=sep))
            if len(names) < 2 or any(_NUMBER_RE.match(name) for name in names):
                continue
            rows = csv.reader(sample, delimiter=sep)
            if sum(1 for row in rows if len(row) == len(names)) >= 0.9 * len(sample):
                return True
        except csv.Error:  # NUL bytes, unbalanced quotes across lines: not a clean table
            continue
    return False


def _shared_prefix_share(sample: list[str]) -> float:
    """Share of lines whose first two tokens, masked, are the most common such pair. Only
    pairs that start with a masked value count: log lines start with a timestamp, an id or a
    counter; prose, lists and code rarely do."""
    shapes = Counter(
        shape
        for shape in (tpl.template_of(" ".join(line.split()[:2])) for line in sample)
        if shape.startswith(tpl.MASK)
    )
    if not shapes:
        return 0.0
    return shapes.most_common(1)[0][1] / len(sample)

"""Brace languages without a parser: a lexer that masks strings and comments, then braces.

The fallback for JavaScript/TypeScript, Go, Java, C/C++, C#, Rust, ... when the optional
tree-sitter grammars (extra ``code``) are not installed, and for languages they don't cover.

1. :func:`mask` blanks the inside of every string, character, template and regex literal
   and every comment (``'...'``, ``"..."``, ```...``` with ``${...}`` nesting, ``//``,
   ``/* */``; Go raw strings; Rust lifetimes are not strings), keeping the text's length
   and line breaks, and lists the code braces.
2. Each ``{`` is classified by its *header*, the code before it back to the start of the
   statement (``;``, ``{``, ``}``, ``,`` or an unclosed ``(`` outside brackets, or a line
   end where Go-style semicolon insertion would end a statement): ``function``, ``func``,
   ``fn``, ``=>``, or ``name(params)`` with an optional return type and no control keyword
   (``if``, ``for``, ``catch``, ...) opens a function body; anything else (class, struct,
   object literal, control block) does not.
3. The function bodies form a tree of :class:`~._code_outline.Block` s; a ``{`` never
   closed (a file cut short) is left whole and its nested functions stand on their own.

It is a heuristic: a regex literal after ``)`` or a brace inside a C macro can still
mislead it. What it gets wrong is kept, never cut across: a span always runs between
the two lines of one matched brace pair.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ._code_outline import Block, Span, spans_from_blocks

_CODE_RE = re.compile(
    r"""(?P<ws>\s+)|(?P<line>//[^\n]*)|(?P<block>/\*[\s\S]*?(?:\*/|\Z))"""
    r"""|(?P<dq>"(?:[^"\\\n]|\\[\s\S])*(?:"|(?=\n)|\Z))|(?P<q>')|(?P<bt>`)"""
    r"""|(?P<open>\{)|(?P<close>\})|(?P<slash>/)|(?P<word>[\w$]+)|(?P<other>.)"""
)
_SQ_STRING_RE = re.compile(r"""'(?:[^'\\\n]|\\[\s\S])*(?:'|(?=\n)|\Z)""")
_CHAR_RE = re.compile(r"""'(?:\\.[^'\n]{0,9}|[^'\\\n]{1,2})'""")
_REGEX_RE = re.compile(r"/(?:[^/\\\[\n]|\\.|\[(?:[^\]\\\n]|\\.)*\])+/[A-Za-z]*")
_TEMPLATE_RE = re.compile(r"(?:[^`\\$]|\\[\s\S]|\$(?!\{))*")
_RAW_RE = re.compile(r"[^`]*(?:`|\Z)")
_REGEX_AFTER = frozenset("(,=:[!&|?{};+-*%<>~^")
_REGEX_AFTER_WORDS = frozenset(
    """
    return typeof case do else in of new delete void throw yield await instanceof
    """.split()  # noqa: SIM905
)


@dataclass(frozen=True, slots=True)
class Masked:
    text: str  # same length and line breaks as the source; literals and comments blanked
    braces: list[tuple[int, str]]  # (offset, "{" or "}") of every code brace, in order


def mask(text: str, flavor: str) -> Masked:
    """Blank literals and comments; ``flavor`` is ``"js"``, ``"go"``, ``"rust"`` or ``"c"``."""
    out = list(text)
    braces: list[tuple[int, str]] = []
    stack: list[str] = []  # "{" for a code brace, "$" for a template's ${
    prev = ""  # last significant token, for telling a regex from a division
    pos = 0
    while pos < len(text):
        m = _CODE_RE.match(text, pos)
        if m is None:  # pragma: no cover - the pattern matches any character
            break
        kind, end = m.lastgroup, m.end()
        if kind == "q":
            end = _quote_end(text, pos, flavor)
            _blank(out, pos + 1, end - 1)
        elif kind in ("line", "block"):
            _blank(out, pos, end)
        elif kind == "dq":
            _blank(out, pos + 1, end - 1)
        elif kind == "bt":
            if flavor == "js":
                end = _template(text, pos + 1, out, stack)
            else:
                end = _RAW_RE.match(text, pos + 1).end()  # type: ignore[union-attr]
                _blank(out, pos + 1, end - 1)
        elif kind == "slash" and flavor == "js" and _regex_allowed(prev):
            rm = _REGEX_RE.match(text, pos)
            if rm is not None:
                end = rm.end()
                _blank(out, pos + 1, end - 1)
        elif kind == "open":
            stack.append("{")
            braces.append((pos, "{"))
        elif kind == "close":
            if stack and stack[-1] == "$":
                stack.pop()
                _blank(out, pos, end)
                end = _template(text, end, out, stack)
            else:
                if stack:
                    stack.pop()
                braces.append((pos, "}"))
        if kind != "ws" and kind not in ("line", "block"):
            prev = m.group(0) if kind in ("word", "other", "open", "close", "slash") else "x"
        pos = max(end, pos + 1)
    return Masked("".join(out), braces)


def _quote_end(text: str, pos: int, flavor: str) -> int:
    if flavor == "js":
        return _SQ_STRING_RE.match(text, pos).end()  # type: ignore[union-attr]
    m = _CHAR_RE.match(text, pos)  # a char literal, or (Rust) a lifetime: just a quote
    return m.end() if m is not None else pos + 1


def _template(text: str, pos: int, out: list[str], stack: list[str]) -> int:
    """Blank a template literal's text from ``pos``; stop after its closing ` or at ``${``."""
    end = _TEMPLATE_RE.match(text, pos).end()  # type: ignore[union-attr]
    _blank(out, pos, end)
    if text.startswith("${", end):
        stack.append("$")
        _blank(out, end, end + 2)
        return end + 2
    return end + 1


def _blank(out: list[str], start: int, end: int) -> None:
    for i in range(start, min(end, len(out))):
        if out[i] != "\n":
            out[i] = " "


def _regex_allowed(prev: str) -> bool:
    return prev == "" or prev in _REGEX_AFTER or prev in _REGEX_AFTER_WORDS


# ------------------------------------------------------------------------ classification

_CONTROL = frozenset(
    """
    if for while switch catch with else do try return new throw await typeof sizeof case
    synchronized foreach using lock fixed unsafe checked match loop select defer go
    """.split()  # noqa: SIM905
)
_QUALIFIERS = frozenset({"const", "noexcept", "override", "final", "mut"})
_KEYWORDS = {"js": "function", "go": "func", "rust": "fn", "c": ""}
_MAX_HEADER = 400  # characters of a header the name patterns look at
_STATEMENT_ENDS = frozenset({"", ";", "{", "}", "\n"})  # not "," nor "(": an argument
_ANNOTATION_RE = re.compile(r"@[\w.]+(?:\([^()]*\))?\s*")
_CONTAINER_RE = re.compile(
    r"\b(?:class|struct|interface|impl|trait|enum|namespace|object|module|record)"
    r"(?:\s*<[^<>{}]*>)?\s+(?:[\w$:]+(?:<[^<>{}]*>)?\s+for\s+)?([\w$]+)"
)
_GO_TYPE_RE = re.compile(r"^type\s+(\w+)\s+(?:struct|interface)\b")
_NAME_RES = (
    re.compile(r"([\w$][\w$.]*)\s*[:=]\s*(?:async\s+)?function\b"),
    re.compile(r"\bfunction\b\s*\*?\s*([\w$]+)"),
    re.compile(r"^func\s*\(\s*\w*\s*\*?\s*(\w+)[^)]*\)\s*(\w+)"),
    re.compile(r"\b(?:func|fn)\s+(\w+)"),
    re.compile(r"([\w$][\w$.]*)\s*:?=\s*(?:async\s*)?(?:\([^()]*\)|[\w$]+)\s*(?::[^=]*)?=>$"),
    re.compile(r"([\w$]+)\s*(?:<[^()]*>)?\s*\([^()]*(?:\([^()]*\)[^()]*)*\)[^()]*$"),
    re.compile(r"([\w]+)\s*:?=\s*func\b"),
)
_NAMED_DECL_RE = re.compile(
    r"^(?:export\s+)?(?:async\s+)?function\b\s*\*?\s*[\w$]+"
    r"|^(?:const|let|var)\s+[\w$]+\s*(?::[^=]+)?=\s*(?:async\b|function\b|\(|[\w$]+\s*=>)"
    r"|^(?:var\s+)?\w+\s*:?=\s*func\b|^(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?fn\s+\w+"
)


def header_before(masked: str, brace: int) -> tuple[int, str, str]:
    """Where the header of the ``{`` at ``brace`` starts, its text, and the character
    before it that ended the search ("" at the start of the text)."""
    depth = 0  # ( and [ seen backwards
    angle = 0
    i = brace - 1
    limit = max(0, brace - 2000)
    while i >= limit:
        c = masked[i]
        if c == "}" and depth == 0 and i > 0 and masked[i - 1] == "{":
            i -= 2  # `struct{}` / `interface{}` in a Go result type
            continue
        if c in ")]":
            depth += 1
        elif c in "([":
            if depth == 0:
                break
            depth -= 1
        elif c == ">" and i > 0 and masked[i - 1] not in "-=":
            angle += 1
        elif c == "<":
            angle = max(0, angle - 1)
        elif depth == 0 and _ends_header(masked, i, angle) and masked[i + 1 : brace].strip():
            break  # (a `{` alone on its line continues the header above it: Allman style)
        i -= 1
    start = i + 1
    while start < brace and masked[start].isspace():
        start += 1
    return start, masked[start:brace], masked[i] if i >= limit and i >= 0 else ""


def _ends_header(masked: str, i: int, angle: int) -> bool:
    c = masked[i]
    if c in ";{}" or (c == "," and angle == 0):
        return True
    return c == "\n" and _ends_statement(masked, i)


def _ends_statement(masked: str, newline: int) -> bool:
    """Go/JS semicolon insertion: the line before ``newline`` ends with a word, ``)`` ..."""
    line_start = masked.rfind("\n", 0, newline) + 1
    tail = masked[line_start:newline].rstrip()
    if not tail:
        return False
    return tail[-1].isalnum() or tail[-1] in "_$)]}\"'`" or tail.endswith(("++", "--"))


def is_function(header: str, flavor: str) -> bool:
    """Does the ``{`` after ``header`` open a function body?"""
    head = _ANNOTATION_RE.sub("", header[-_MAX_HEADER:]).strip()
    if not head:
        return False
    keyword = _KEYWORDS.get(flavor, "")
    if keyword and re.search(rf"\b{keyword}\b", head):
        return "(" in head
    if head.endswith("=>"):
        return True
    first = re.match(r"[\w$]+", head)
    if first is not None and first.group(0) in _CONTROL:
        return False
    close = head.rfind(")")
    if close < 0 or not _valid_suffix(head[close + 1 :]):
        return False
    name = re.search(r"([\w$]+)\s*(?:<[^()]*>)?\s*$", _before_params(head[: close + 1]))
    return name is not None and name.group(1) not in _CONTROL


def _valid_suffix(rest: str) -> bool:
    """What may stand between a parameter list and the body: a return type, qualifiers."""
    rest = rest.strip()
    if not rest or rest.startswith(("throws ", "where ")):
        return True
    if rest.startswith((":", "->")):
        return "=" not in rest.replace("=>", "")
    return all(word in _QUALIFIERS for word in rest.split())


def _before_params(head: str) -> str:
    """``head`` ends with ``)``: the text before its matching ``(``."""
    depth = 0
    for i in range(len(head) - 1, -1, -1):
        if head[i] == ")":
            depth += 1
        elif head[i] == "(":
            depth -= 1
            if depth == 0:
                return head[:i]
    return ""


def function_name(header: str) -> str:
    """The declared name (``res.send``, ``Context.Get``, ``onerror``), or "" if anonymous."""
    head = " ".join(_ANNOTATION_RE.sub("", header[-_MAX_HEADER:]).split())
    for pattern in _NAME_RES:
        m = pattern.search(head)
        if m is not None:
            name = ".".join(g for g in m.groups() if g)
            return "" if name in _CONTROL or name in _KEYWORDS.values() else name
    return ""


def container_name(header: str) -> str:
    head = " ".join(header.split())
    m = _CONTAINER_RE.search(head) or _GO_TYPE_RE.match(head)
    return m.group(1) if m is not None else ""


def is_named_declaration(header: str) -> bool:
    return _NAMED_DECL_RE.match(" ".join(header.split())) is not None


# ---------------------------------------------------------------------------- blocks


def plan_braces(lines: Sequence[str], flavor: str) -> list[Span]:
    """Spans for brace-language source, from brace matching alone."""
    text = "\n".join(lines)
    masked = mask(text, flavor)
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    roots = build_blocks(masked, starts, flavor)
    masked_lines = masked.text.split("\n")
    comment_only = [
        bool(o.strip()) and not m.strip() for o, m in zip(lines, masked_lines, strict=True)
    ]
    return spans_from_blocks(roots, lines, comment_only)


@dataclass(slots=True)
class _Open:
    block: Block | None  # the function this brace opens, if any
    scope: str  # name of the class / struct this brace opens, if any


def build_blocks(masked: Masked, starts: list[int], flavor: str) -> list[Block]:
    """The function tree of ``masked``; ``starts`` are the offsets of line starts."""

    def line_of(offset: int) -> int:
        return bisect.bisect_right(starts, offset) - 1

    roots: list[Block] = []
    stack: list[_Open] = []
    for offset, char in masked.braces:
        if char == "}":
            if stack:
                opened = stack.pop()
                if opened.block is not None:
                    opened.block.close = line_of(offset)
            continue
        start, header, boundary = header_before(masked.text, offset)
        if not is_function(header, flavor):
            stack.append(_Open(None, container_name(header)))
            continue
        parent = next((o.block for o in reversed(stack) if o.block is not None), None)
        name = function_name(header)
        if parent is None:
            scope = next((o.scope for o in reversed(stack) if o.scope), "")
            name = f"{scope}.{name}" if scope and name else name
            block = Block(name, line_of(start), line_of(offset), -1, True)
            roots.append(block)
        else:
            direct = (
                stack[-1].block is parent
                and boundary in _STATEMENT_ENDS
                and is_named_declaration(header)
            )
            block = Block(name, line_of(start), line_of(offset), -1, direct)
            parent.children.append(block)
        stack.append(_Open(block, ""))
    return _closed(roots)


def _closed(blocks: list[Block]) -> list[Block]:
    """Drop blocks never closed, standing their nested functions in their place."""
    out: list[Block] = []
    for block in blocks:
        block.children = _closed(block.children)
        if block.close >= 0:
            out.append(block)
        else:
            for child in block.children:
                child.structural = True
                out.append(child)
    return out

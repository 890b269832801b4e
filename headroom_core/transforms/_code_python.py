"""Python planner: the function bodies of a module, found with :mod:`ast`.

Kept: imports, module and class level statements, every ``def``/``async def``/``class``
line with its decorators and docstring, and every function or class defined directly in a
function body (with its own body outlined the same way). Elided: the runs of statements of
a function body between those, each run one :class:`~._code_outline.Span` (comments and
blank lines just before a run go with it).

When the text does not parse (a file cut short by ``head`` or a read limit, a slice that
starts inside a function), :func:`plan_by_indent` finds ``def`` blocks by indentation
instead: a body is every line after the signature indented deeper than its ``def``.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._code_outline import Span, indent_of

_Def = (ast.FunctionDef, ast.AsyncFunctionDef)
_Structure = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_BODY_FIELDS = ("body", "orelse", "handlers", "finalbody", "cases")
_Value = (ast.Assign, ast.AnnAssign, ast.AugAssign)
_OPENS = ("[", "(", "{")
_CLOSES = ("]", ")", "}")

_HEADER_RE = re.compile(r"^([ \t]*)(async[ \t]+def|def|class)[ \t]+([A-Za-z_]\w*)")
_DOCSTRING_RE = re.compile(r"^[ \t]*[rRbBuU]?(\"\"\"|''')")
_MAX_HEADER_LINES = 40


def plan_python(lines: Sequence[str]) -> list[Span] | None:
    """Spans for Python source; None if it is not Python this module can outline."""
    if any("\r" in line[:-1] or "\f" in line for line in lines):
        return None  # line numbers from ast would not match our lines
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes in the user's code are not ours
        try:
            tree = ast.parse("\n".join(lines))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
    spans: list[Span] = []
    _container(tree.body, (), lines, spans)
    return spans


def _container(
    stmts: Sequence[ast.stmt], owners: tuple[str, ...], lines: Sequence[str], out: list[Span]
) -> None:
    for stmt in stmts:
        if isinstance(stmt, _Def):
            _function(stmt, (*owners, stmt.name), lines, out)
        elif isinstance(stmt, ast.ClassDef):
            _container(stmt.body, (*owners, stmt.name), lines, out)
        elif isinstance(stmt, _Value):
            _long_value(stmt, owners, lines, out)
        else:  # if / for / while / with / try / match at this level
            for name in _BODY_FIELDS:
                for child in getattr(stmt, name, ()):
                    body = [child] if isinstance(child, ast.stmt) else child.body
                    _container(body, owners, lines, out)


def _long_value(
    stmt: ast.Assign | ast.AnnAssign | ast.AugAssign,
    owners: tuple[str, ...],
    lines: Sequence[str],
    out: list[Span],
) -> None:
    """``X = [`` ... ``]`` at module or class level: the lines between the brackets."""
    first, last = stmt.lineno - 1, _end(stmt) - 1
    head = lines[first].split("#", 1)[0].rstrip()
    if last - first < 2 or not head.endswith(_OPENS):
        return
    if not lines[last].lstrip().startswith(_CLOSES) or stmt.col_offset != len(
        indent_of(lines[first])
    ):
        return  # only `[` ... `]` on lines of their own: `...` in between stays valid Python
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    names = tuple(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    out.append(Span(first + 1, last - 1, indent_of(lines[first + 1]), (*owners, *names), "value"))


def _function(
    fn: ast.FunctionDef | ast.AsyncFunctionDef,
    owners: tuple[str, ...],
    lines: Sequence[str],
    out: list[Span],
) -> None:
    body = list(fn.body)
    kept_end = fn.lineno  # last line (1-based) of what is kept so far
    if body and _is_docstring(body[0]):
        kept_end = _end(body.pop(0))
    run: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, _Structure):
            _flush(run, kept_end, owners, lines, out)
            run = []
            if isinstance(stmt, _Def):
                _function(stmt, (*owners, stmt.name), lines, out)
            else:
                _container(stmt.body, (*owners, stmt.name), lines, out)
            kept_end = _end(stmt)
        else:
            run.append(stmt)
    _flush(run, kept_end, owners, lines, out)


def _flush(
    run: list[ast.stmt],
    kept_end: int,
    owners: tuple[str, ...],
    lines: Sequence[str],
    out: list[Span],
) -> None:
    if not run or run[0].lineno <= kept_end:
        return  # empty, or it shares a line with the signature / docstring: keep it
    first = run[0].lineno - 1  # 0-based
    start = first
    while start - 1 >= kept_end and _blank_or_comment(lines[start - 1]):
        start -= 1
    out.append(Span(start, _end(run[-1]) - 1, indent_of(lines[first]), owners))


def _end(node: ast.stmt) -> int:
    return node.end_lineno if node.end_lineno is not None else node.lineno


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


# ---------------------------------------------------------------- indentation fallback


@dataclass(frozen=True, slots=True)
class _Header:
    line: int  # 0-based line of ``def`` / ``class``
    end: int  # 0-based last line of the signature
    depth: int  # width of its indentation
    kind: str
    name: str


@dataclass(slots=True)
class _Block:
    header: _Header
    owners: tuple[str, ...]  # enclosing names and its own, outermost first
    end: int = -1  # 0-based last non-blank line of the block
    children: list[_Block] = field(default_factory=list)


def plan_by_indent(lines: Sequence[str]) -> list[Span]:
    """Spans for Python that :mod:`ast` rejects, from indentation alone."""
    spans: list[Span] = []
    for block in _blocks(lines):
        if block.header.kind == "class":
            continue
        start = _skip_docstring(lines, block.header.end + 1, block.end)
        first = next((i for i in range(start, block.end + 1) if lines[i].strip()), None)
        if first is None:
            continue
        for child in block.children:
            if child.header.depth != _width(lines[first]):
                continue  # inside an if / for / with of the body: part of the body
            head = child.header.line
            while head - 1 >= start and lines[head - 1].strip().startswith("@"):
                head -= 1
            _add_gap(lines, start, head - 1, block.owners, spans)
            start = child.end + 1
        _add_gap(lines, start, block.end, block.owners, spans)
    return spans


def _blocks(lines: Sequence[str]) -> list[_Block]:
    """Every ``def`` / ``class`` block, in order, each with its nested blocks."""
    blocks: list[_Block] = []
    stack: list[_Block] = []
    last_code = -1
    in_string = ""  # the triple quote of a string spanning lines, while inside one
    i = 0
    while i < len(lines):
        line = lines[i]
        if in_string:
            if line.count(in_string) % 2:
                in_string = ""
            last_code, i = i, i + 1
            continue
        if line.strip():
            width = _width(line)
            while stack and width <= stack[-1].header.depth:
                stack.pop().end = last_code
            header = _header(lines, i)
            if header is not None:
                owners = tuple(b.header.name for b in stack)
                block = _Block(header, (*owners, header.name))
                blocks.append(block)
                if stack:
                    stack[-1].children.append(block)
                stack.append(block)
                last_code, i = header.end, header.end + 1
                continue
            last_code = i
            in_string = next((q for q in ('"""', "'''") if line.count(q) % 2), "")
        i += 1
    for block in stack:
        block.end = last_code
    return blocks


def _header(lines: Sequence[str], i: int) -> _Header | None:
    match = _HEADER_RE.match(lines[i])
    if match is None:
        return None
    depth = 0
    for j in range(i, min(len(lines), i + _MAX_HEADER_LINES)):
        code = lines[j].split("#", 1)[0].rstrip()
        depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
        if depth <= 0 and code.endswith(":"):
            width = len(match.group(1).expandtabs())
            return _Header(i, j, width, match.group(2).split()[-1], match.group(3))
    return None


def _width(line: str) -> int:
    return len(indent_of(line).expandtabs())


def _skip_docstring(lines: Sequence[str], start: int, end: int) -> int:
    first = next((i for i in range(start, end + 1) if lines[i].strip()), None)
    if first is None:
        return start
    match = _DOCSTRING_RE.match(lines[first])
    if match is None:
        return start
    quote = match.group(1)
    if quote in lines[first][match.end() :]:
        return first + 1
    for j in range(first + 1, end + 1):
        if quote in lines[j]:
            return j + 1
    return start


def _add_gap(
    lines: Sequence[str], start: int, end: int, owners: tuple[str, ...], out: list[Span]
) -> None:
    first = next((i for i in range(start, end + 1) if lines[i].strip()), None)
    if first is not None:
        out.append(Span(start, end, indent_of(lines[first]), owners))

"""Optional planner for brace languages: tree-sitter grammars (``pip install ".[code]"``).

Uses the ``tree-sitter`` bindings and the per-language grammar wheels (JavaScript,
TypeScript/TSX, Go, Java, Rust, C), which ship compiled grammars: nothing is downloaded at
run time. Imported lazily; :func:`is_available` says whether a language can be parsed.
Without them, or when a parse has errors (a file cut short, a wrong guess of the
language), the compressor uses brace matching (:mod:`._code_generic`) instead.

The function tree it builds is the same :class:`~._code_outline.Block` tree brace matching
builds, so both give the same kind of outline.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
from collections.abc import Iterator, Sequence
from typing import Any

from ._code_outline import Block, Span, spans_from_blocks

_IDENT_RE = re.compile(r"[\w$]+")
_COMMENT_STARTS = ("//", "/*", "*")

# language -> (grammar module, function returning the language pointer)
GRAMMARS: dict[str, tuple[str, str]] = {
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "java": ("tree_sitter_java", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "c": ("tree_sitter_c", "language"),
}

_FUNCTIONS = frozenset(
    {
        "function_declaration", "function_expression", "function", "arrow_function",
        "generator_function_declaration", "generator_function", "method_definition",
        "method_declaration", "constructor_declaration", "func_literal", "function_item",
        "closure_expression", "function_definition", "lambda_expression",
    }
)  # fmt: skip
_DECLARATIONS = frozenset(
    {
        "function_declaration", "generator_function_declaration", "method_definition",
        "method_declaration", "constructor_declaration", "function_item", "function_definition",
    }
)  # fmt: skip
_BLOCKS = frozenset({"statement_block", "block", "compound_statement", "constructor_body"})
_WRAPPERS = frozenset(
    {
        "variable_declarator", "lexical_declaration", "variable_declaration", "expression_list",
        "short_var_declaration", "var_spec", "var_declaration", "export_statement",
    }
)  # fmt: skip
_SCOPES = frozenset(
    {
        "class_declaration", "class", "abstract_class_declaration", "interface_declaration",
        "impl_item", "trait_item", "struct_item", "enum_declaration", "object_declaration",
    }
)  # fmt: skip


@functools.cache
def is_available(language: str | None = None) -> bool:
    """True if tree-sitter (0.25 or later) and the grammar for ``language`` (for any
    language if None) load; never imports anything when ``tree_sitter`` is absent."""
    if language is None:
        return any(is_available(name) for name in GRAMMARS)
    if language not in GRAMMARS or importlib.util.find_spec("tree_sitter") is None:
        return False
    try:
        _query(language)
    except (ImportError, AttributeError, ValueError, TypeError, OSError):
        return False  # no grammar wheel, bindings too old, or a grammar ABI they can't load
    return True


@functools.cache
def _language(language: str) -> Any:
    tree_sitter = importlib.import_module("tree_sitter")
    module_name, function = GRAMMARS[language]
    module = importlib.import_module(module_name)
    return tree_sitter.Language(getattr(module, function)())


@functools.cache
def _query(language: str) -> Any:
    """A query capturing every function node kind this grammar has."""
    tree_sitter = importlib.import_module("tree_sitter")
    grammar = _language(language)
    kinds = sorted(k for k in _FUNCTIONS if grammar.id_for_node_kind(k, True))
    return tree_sitter.Query(grammar, "[" + " ".join(f"({k})" for k in kinds) + "] @fn")


def plan_tree_sitter(lines: Sequence[str], language: str) -> list[Span] | None:
    """Spans from a tree-sitter parse; None if unavailable or the parse has errors."""
    if not is_available(language):
        return None
    tree_sitter = importlib.import_module("tree_sitter")
    source = "\n".join(lines).encode("utf-8", "surrogatepass")
    tree = tree_sitter.Parser(_language(language)).parse(source)
    if tree.root_node.has_error:
        return None
    found = tree_sitter.QueryCursor(_query(language)).captures(tree.root_node).get("fn", [])
    roots = _blocks(sorted(found, key=lambda n: (n.start_byte, -n.end_byte)))
    comment_only = [line.lstrip().startswith(_COMMENT_STARTS) for line in lines]
    return spans_from_blocks(roots, lines, comment_only)


def _blocks(nodes: Sequence[Any]) -> list[Block]:
    """The function tree of ``nodes`` (function nodes in document order)."""
    roots: list[Block] = []
    open_: list[tuple[Any, Block]] = []  # enclosing (body node, block), innermost last
    for node in nodes:
        body = node.child_by_field_name("body")
        if body is None or body.type not in _BLOCKS:
            continue
        while open_ and open_[-1][0].end_byte <= node.start_byte:
            open_.pop()
        statement = _statement(node)
        name = _name(node)
        start, first, last = statement.start_point[0], body.start_point[0], body.end_point[0]
        if not open_:
            scope = _scope(node)
            name = f"{scope}.{name}" if scope and name else name
            block = Block(name, start, first, last, True)
            roots.append(block)
        else:
            owner_body, owner = open_[-1]
            direct = _body_of(statement) == owner_body and _is_declaration(node, statement)
            block = Block(name, start, first, last, direct)
            owner.children.append(block)
        open_.append((body, block))
    return roots


def _statement(node: Any) -> Any:
    while node.parent is not None and node.parent.type in _WRAPPERS:
        node = node.parent
    return node


def _body_of(statement: Any) -> Any:
    parent = statement.parent
    if parent is not None and parent.type == "statement_list":  # Go wraps a block's statements
        parent = parent.parent
    return parent


def _is_declaration(node: Any, statement: Any) -> bool:
    return node.type in _DECLARATIONS or statement is not node


def _text(node: Any) -> str:
    return bytes(node.text).decode("utf-8", "replace") if node is not None else ""


def _name(node: Any) -> str:
    name = _text(node.child_by_field_name("name"))
    parent = node.parent
    if parent is not None and parent.type == "assignment_expression":
        return _text(parent.child_by_field_name("left")) or name
    if not name and parent is not None and parent.type == "variable_declarator":
        return _text(parent.child_by_field_name("name"))
    receiver = node.child_by_field_name("receiver")  # Go: func (c *Context) Get
    if receiver is not None and name:
        types = [_text(n) for n in _descendants(receiver) if n.type == "type_identifier"]
        return f"{types[0]}.{name}" if types else name
    return name


def _scope(node: Any) -> str:
    parent = node.parent
    while parent is not None:
        if parent.type in _SCOPES:
            named = parent.child_by_field_name("name") or parent.child_by_field_name("type")
            match = _IDENT_RE.match(_text(named))
            return match.group(0) if match is not None else ""
        parent = parent.parent
    return ""


def _descendants(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children)

"""What a JSON case asks about, and which values its answer must keep.

Pure functions over a parsed JSON value:

* :func:`build_query` picks one concrete item deterministically (the middle
  element of the largest collection) and phrases the user's question about it.
  The item's identifying value is the *needle* that a compressed tool output
  must still contain.
* :func:`error_strings` lists the strings of every error body in the value
  (GitHub's ``{"message", "documentation_url"}``, ``"error"`` / ``"*_error"``
  fields, Jira's ``errorMessages``), which a compressor must keep.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Keys that name an item, most specific first.
ID_KEYS = (
    "id",
    "key",
    "number",
    "order_id",
    "reservation_id",
    "flight_number",
    "item_id",
    "product_id",
    "user_id",
    "login",
    "name",
    "title",
    "uid",
    "sha",
    "ref",
    "node_id",
    "slug",
)
MIN_COLLECTION = 3  # smaller "collections" are just fields, not lists of items
GENERIC_QUESTION = "Summarise this response: which fields matter and what do they say?"


@dataclass(frozen=True, slots=True)
class Query:
    """The user's question and the value the answer depends on (None: nothing specific)."""

    question: str
    needle: str | None
    item: Any = None  # the object the question is about, when it is one (must stay verbatim)


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, str)):
        text = str(value)
        return text if text.strip() else None
    return None


def _tier(node: list[Any] | dict[str, Any]) -> int | None:
    """How good a collection is to ask about (lower is better); None: not a collection."""
    if isinstance(node, dict):  # records keyed by id or date, e.g. {"2024-05-01": {...}}
        records = len(node) >= MIN_COLLECTION and all(
            isinstance(v, dict) and len(v) >= 2 for v in node.values()
        )
        return 0 if records else None
    if not node:
        return None
    if all(isinstance(v, dict) for v in node):
        return 0 if len(node) >= MIN_COLLECTION else 2
    if len(node) < MIN_COLLECTION:
        return None
    return 1 if all(isinstance(v, list) for v in node) else 3  # rows/points, then scalars


def _collections(value: Any) -> Iterator[tuple[int, str, list[Any] | dict[str, Any]]]:
    """Every collection with its tier and key, breadth-first (shallowest first)."""
    queue: deque[tuple[str, Any]] = deque([("response", value)])
    while queue:
        label, node = queue.popleft()
        if isinstance(node, (list, dict)):
            tier = _tier(node)
            if tier is not None:
                yield tier, label, node
        if isinstance(node, list):
            queue.extend((label, child) for child in node)
        elif isinstance(node, dict):
            queue.extend((str(k), v) for k, v in node.items())


def _best_collection(value: Any) -> tuple[str, list[Any] | dict[str, Any]] | None:
    """Best tier, then most items, then shallowest (strict comparison keeps the first)."""
    best: tuple[int, int, str, list[Any] | dict[str, Any]] | None = None
    for tier, label, node in _collections(value):
        if best is None or (tier, -len(node)) < (best[0], best[1]):
            best = (tier, -len(node), label, node)
    return None if best is None else (best[2], best[3])


def _identify(item: dict[str, Any]) -> tuple[str, str] | None:
    keys = [k for k in ID_KEYS if k in item]
    keys += [k for k in item if k.endswith(("_id", "Id")) and k not in keys]
    keys += [k for k in ("type", "kind") if k in item]
    for key in keys:
        text = _scalar_text(item.get(key))
        if text is not None:
            return key, text
    for key, val in item.items():  # no usual id key: first scalar field
        text = _scalar_text(val)
        if text is not None and len(text) >= 3:
            return key, text
    return None


def build_query(value: Any) -> Query:
    """A question about the middle item of the best collection in ``value``.

    Collections of objects come first (lists of objects, records keyed by id),
    then lists of rows or points (time series), then short lists of objects,
    then lists of scalars; among equals the longest, then the shallowest.
    """
    found = _best_collection(value)
    if found is None:
        return Query(GENERIC_QUESTION, None)
    label, node = found
    if isinstance(node, dict):  # records keyed by id or date
        keys = list(node)
        key = keys[len(keys) // 2]
        return Query(f"What does the {label} entry {key} say?", key)
    item = node[len(node) // 2]
    if isinstance(item, dict):
        ident = _identify(item)
        if ident is not None:
            key, text = ident
            return Query(f"What is the status of the {label} item with {key} {text}?", text, item)
    if isinstance(item, list) and item:  # time series point [timestamp, value]
        stamp = _scalar_text(item[0])
        if stamp is not None:
            return Query(f"What was the value at timestamp {stamp}?", stamp)
    scalar = _scalar_text(item)
    if scalar is not None:
        return Query(f"Is {scalar} in the {label} list, and what is around it?", scalar)
    return Query(GENERIC_QUESTION, None)


def _string_leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, dict):
        for child in value.values():
            yield from _string_leaves(child)
    elif isinstance(value, list):
        for child in value:
            yield from _string_leaves(child)


def _is_error_key(key: str) -> bool:
    return key in ("error", "errors", "errorMessages") or key.endswith("_error")


def error_strings(value: Any) -> list[str]:
    """Strings of every error body found anywhere in ``value`` (deduplicated, in order)."""
    found: list[str] = []
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("message"), str) and (
            "documentation_url" in node or "errors" in node
        ):
            found.append(node["message"])
        for key, child in node.items():
            if _is_error_key(str(key)):
                found.extend(_string_leaves(child))
            else:
                stack.append(child)
    return list(dict.fromkeys(found))

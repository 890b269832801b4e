"""Nodes <-> text: what a node shows the LLM, its copies, its cuts, near-duplicates.

Everything here reads nodes and builds new ones; no function changes the node it is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llama_index.core.schema import BaseNode, MetadataMode, Node, NodeWithScore, TextNode

__all__ = [
    "copy_node",
    "editable_text",
    "jaccard",
    "llm_text",
    "render_cut",
    "shingles",
]

_WORD = re.compile(r"\w+")
_SHINGLE = 3  # words per shingle for near-duplicate detection


def editable_text(node: BaseNode) -> str | None:
    """The text of ``node`` that can be compressed or cut: ``TextNode.text`` (also image and
    index nodes) or a ``Node``/``Document``'s text resource; None for a node without text."""
    if isinstance(node, TextNode):
        return node.text
    if isinstance(node, Node) and node.text_resource is not None:
        return node.text_resource.text
    return None


def llm_text(node: BaseNode) -> str:
    """What a response synthesizer shows the LLM for ``node`` (text and unexcluded metadata)."""
    return node.get_content(metadata_mode=MetadataMode.LLM)


def copy_node(
    item: NodeWithScore,
    *,
    text: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    score: float | None = None,
) -> NodeWithScore:
    """A copy of ``item``: same id, relationships, embedding and other fields, with its own
    metadata dict, exclusion lists and relationships mapping (values inside are shared, not
    copied). ``text`` replaces the node's text; ``metadata`` is added and its keys are kept
    out of the LLM and embedding views; ``score`` replaces the score when given."""
    node = item.node
    extra = dict(metadata or {})
    update: dict[str, Any] = {
        "metadata": {**node.metadata, **extra},
        "excluded_llm_metadata_keys": _with_keys(node.excluded_llm_metadata_keys, extra),
        "excluded_embed_metadata_keys": _with_keys(node.excluded_embed_metadata_keys, extra),
        "relationships": dict(node.relationships),
    }
    if text is not None:
        if isinstance(node, TextNode):
            update["text"] = text
        elif isinstance(node, Node) and node.text_resource is not None:
            update["text_resource"] = node.text_resource.model_copy(update={"text": text})
        else:  # editable_text() was None: nothing can have produced a new text
            raise TypeError(f"node {node.node_id!r} ({type(node).__name__}) has no text to set")
    copy = node.model_copy(update=update)
    return NodeWithScore(node=copy, score=item.score if score is None else score)


def _with_keys(keys: Sequence[str], extra: Mapping[str, Any]) -> list[str]:
    return [*keys, *(k for k in extra if k not in keys)]


# ---- cuts ------------------------------------------------------------------------------


def render_cut(text: str, spans: Sequence[tuple[int, int]], keep: Iterable[int]) -> str:
    """The kept spans of ``text`` in text order. Neighbouring spans keep the text between
    them; a gap where spans were left out becomes an ellipsis (on its own line when the gap
    held a line break)."""
    out: list[str] = []
    last: int | None = None
    for i in sorted(set(keep)):
        start, end = spans[i]
        if last is not None:
            between = text[spans[last][1] : start]
            if i == last + 1:
                out.append(between)
            else:
                out.append("\n\u2026\n" if "\n" in between else " \u2026 ")
        out.append(text[start:end])
        last = i
    return "".join(out)


# ---- near-duplicates -------------------------------------------------------------------


def shingles(text: str) -> frozenset[tuple[str, ...]]:
    """Overlapping runs of three lowercased words (all the words when there are fewer)."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < _SHINGLE:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1))


def jaccard(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    """|a & b| / |a | b|; 0.0 when both are empty (texts without words are never duplicates)."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)

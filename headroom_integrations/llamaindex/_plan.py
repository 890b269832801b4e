"""One node on its way through the postprocessor (:class:`Plan`), its metadata keys and the
markers a cut or a left-out node leaves in the text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llama_index.core.schema import NodeWithScore

from headroom_core.evidence import FillItem

from ._nodes import llm_text

RELEVANCE_KEY = "headroom_relevance"
REF_KEY = "headroom_ref"
COMPRESSOR_KEY = "headroom_compressor"
DUPLICATES_KEY = "headroom_duplicate_refs"
DROPPED_KEY = "headroom_dropped_ref"
LINKED_KEY = "headroom_linked_by"

# Sizes markers before the ref is known: a ref is 32 hex characters, and this one costs a
# token per character, the most any ref can (a random ref costs far fewer).
REF_PLACEHOLDER = "0a1b2c3d4e5f6a7b" * 2


@dataclass(slots=True)
class Plan:
    """One node on its way through: its original, its current text and its new metadata."""

    index: int
    item: NodeWithScore
    original: str | None
    text: str | None
    meta: dict[str, Any] = field(default_factory=dict)
    out: NodeWithScore | None = None
    tokens: int = 0
    score: float = 1.0  # evidence score (headroom_core.evidence), 1.0 without a query
    names: tuple[str, ...] = ()  # what it is about (headroom_core.evidence.passage_names)
    link_names: tuple[str, ...] = ()  # the names by which the question or a node linked it


@dataclass(frozen=True, slots=True)
class Cuttable:
    """A plan as the fill sees it (``item``), its sentence spans, the ref it had before the
    fit and its copy rendered whole then (restored when the fill keeps it whole or drops it)."""

    item: FillItem
    spans: list[tuple[int, int]]
    ref: str | None
    whole: NodeWithScore | None
    whole_tokens: int


def context(plans: list[Plan]) -> str:
    """The context a synthesizer builds from the plans' copies: LLM views, blank lines between."""
    return "\n\n".join(llm_text(p.out.node) for p in plans if p.out is not None)


def index_of(plan: Plan) -> int:
    return plan.index


def set_ref(plan: Plan, ref: str | None) -> None:
    if ref is None:
        plan.meta.pop(REF_KEY, None)
    else:
        plan.meta[REF_KEY] = ref


def node_meta(plan: Plan) -> dict[str, Any]:
    return {"node_id": plan.item.node_id}


def cut_marker(chars: int, ref: str) -> str:
    return f"[headroom: {chars} chars cut; ref={ref}]"


def dropped_marker(count: int, ref: str) -> str:
    noun = "node" if count == 1 else "nodes"
    return f"[headroom: {count} {noun} left out to fit the token budget; ref={ref}]"

"""The interface every tool-output compressor implements (JSON, logs, code, prose).

A compressor gets one tool text and returns a :class:`Compressed` (or None to leave it
alone). Lossy compressors store each original they cut in the reversible store
(``ctx.store``, see :mod:`headroom_core.ccr`) and leave a marker in the text naming the
ref, so nothing is dropped silently and everything is retrievable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import SmartCrusherConfig


EXACT_CHARS = 32_000  # texts up to this long are counted exactly by ContentContext.estimate


@dataclass(frozen=True, slots=True)
class Compressed:
    text: str
    lossy: bool
    refs: tuple[str, ...] = ()
    dropped: int = 0  # items / lines / sentences cut (0 for lossless)


@dataclass(slots=True)
class ContentContext:
    """What a compressor may use. ``count`` is the exact token counter of the request's model."""

    count: Callable[[str], int]
    config: SmartCrusherConfig
    store: OriginalStore
    query: str | None = None
    tool_name: str | None = None
    budget_tokens: int | None = None  # per-call cap for this text, when the caller sets one
    learned_fields: frozenset[str] = frozenset()  # fields the model fetched back before: spare them
    notes: list[str] = field(default_factory=list)
    # The tool's text byte for byte, when the compressor is handed a normalised form of it
    # (escape sequences removed): what a ref must give back.
    original: str | None = None

    def estimate(self, text: str) -> float:
        """Tokens of ``text``: exact up to :data:`EXACT_CHARS` characters, else from an exact
        count of three slices (a multi-MB text is not counted whole to be cut)."""
        if len(text) <= EXACT_CHARS:
            return float(self.count(text))
        k = EXACT_CHARS // 4
        mid = len(text) // 2
        sample = text[:k] + text[mid : mid + k] + text[-k:]
        return self.count(sample) / len(sample) * len(text)

    def keep(self, text: str, kind: str) -> str:
        """Store the original of ``text`` (``original`` when set) and return its ref. The
        fields this cut spared go with it (``meta["spared"]``, see :mod:`._first_sight`)."""
        return self.store.put(
            self.original if self.original is not None else text,
            tool=self.tool_name,
            kind=kind,
            meta=self.stored_meta(),
        )

    def stored_meta(self) -> dict[str, list[str]] | None:
        """What a lossy cut records with its original: the learned fields it spared."""
        return {"spared": sorted(self.learned_fields)} if self.learned_fields else None

    def planned_ref(self, text: str) -> str:
        """The ref :meth:`keep` will return for ``text`` with a content-addressed store."""
        from ..ccr import ref_for

        return ref_for(self.original if self.original is not None else text)


class ContentCompressor(Protocol):
    name: str

    def detect(self, text: str) -> bool:
        """Cheap check: is this text of my kind?"""
        ...

    def compress(self, text: str, ctx: ContentContext) -> Compressed | None: ...

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


class ContentCompressor(Protocol):
    name: str

    def detect(self, text: str) -> bool:
        """Cheap check: is this text of my kind?"""
        ...

    def compress(self, text: str, ctx: ContentContext) -> Compressed | None: ...

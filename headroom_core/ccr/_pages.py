"""Pages of a retrieved original: what ``retrieve`` answers when the whole does not fit.

An original is read as a list of *units*: the items of its JSON array (compact JSON, one
per item; see ``_retrieve._find_items``) or else its lines. A unit longer than a page is
split into parts, so every unit fits a page and paging reaches every character. A page
holds the units from ``offset`` on while they fit ``max_tokens`` (and at most ``limit``
of them); its header line names the range, the total and the ``offset`` of the next page,
under the same ref. Same original, same settings: same pages (a stable, cacheable answer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["HEADER_TOKENS", "Unit", "page", "split_units"]

#: Tokens kept free on every page for its header line.
HEADER_TOKENS = 80


@dataclass(frozen=True, slots=True)
class Unit:
    """One item or line (or a part of one) with its 1-based number in the original."""

    number: int
    text: str
    part: int = 0  # 0: whole; 1, 2, ...: a part of a unit too long for one page
    parts: int = 0

    @property
    def label(self) -> str:
        return (
            f"{self.number}" if not self.part else f"{self.number} (part {self.part}/{self.parts})"
        )


def split_units(
    numbered: Sequence[tuple[int, str]], count: Callable[[str], int], room: int | None
) -> list[Unit]:
    """``(number, text)`` pairs as units, each of at most ``room`` tokens (longer ones cut
    into parts); ``room`` None: no limit."""
    units: list[Unit] = []
    for number, text in numbered:
        if room is None or count(text) <= room:
            units.append(Unit(number, text))
            continue
        pieces = _pieces(text, count, room)
        units.extend(Unit(number, p, k, len(pieces)) for k, p in enumerate(pieces, 1))
    return units


def _pieces(text: str, count: Callable[[str], int], room: int) -> list[str]:
    """``text`` cut into consecutive pieces of at most ``room`` tokens (at least 1 char)."""
    out: list[str] = []
    start = 0
    # Characters per token for this text, measured once; each piece is then checked.
    ratio = max(1.0, len(text) / max(1, count(text)))
    while start < len(text):
        size = max(1, int(room * ratio * 0.9))
        piece = text[start : start + size]
        while len(piece) > 1 and count(piece) > room:
            piece = piece[: max(1, len(piece) * 3 // 4)]
        out.append(piece)
        start += len(piece)
    return out


@dataclass(frozen=True, slots=True)
class Page:
    """Units ``units[start:end]`` of the listing; ``end == total`` on the last page."""

    start: int
    end: int
    total: int
    body: tuple[Unit, ...]

    @property
    def complete(self) -> bool:
        return self.start == 0 and self.end == self.total


def page(
    units: Sequence[Unit],
    count: Callable[[str], int],
    *,
    offset: int,
    limit: int | None,
    room: int | None,
    render: Callable[[Unit], str],
) -> Page:
    """The units from ``offset`` that fit ``room`` tokens (at least one; None: no limit),
    at most ``limit`` of them not counting unit 0 (the document around the items)."""
    start = max(0, offset)
    end, used, taken = start, 0, 0  # taken: items or lines (the document around them is free)
    while end < len(units) and (limit is None or taken < limit or not units[end].number):
        if room is not None:
            cost = count(render(units[end])) + 1  # + the newline or comma between units
            if end > start and used + cost > room:
                break
            used += cost
        taken += 1 if units[end].number else 0
        end += 1
    return Page(start, end, len(units), tuple(units[start:end]))

"""What :meth:`SmartCrusher.crush <headroom_core.transforms.SmartCrusher.crush>` returns:
the compressed value, the text to send, and every cut, read back from the markers the cut
left (see :mod:`._crush` for their forms).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from . import json_codec
from ._content import Compressed
from ._crush import OMITTED, TRUNCATED

# The tail _crush.Crush.walk gives a long string it cut.
_CUT_STRING = re.compile(r"…\[headroom: (\d+) chars cut; ref=([^\]\s]+)\]\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

OmissionKind = Literal["items", "records", "fields", "chars"]


@dataclass(frozen=True, slots=True)
class Omission:
    """One cut, as its marker announces it.

    ``path``: where in ``CrushResult.data`` (``$``, ``$.results``, ``$.items[3].body``;
    positions are those of the compressed value). ``kind``: ``items`` (array items dropped),
    ``records`` (entries of an id-keyed object dropped), ``fields`` (API link fields dropped
    from the objects below ``path``), ``chars`` (the end of a long string). ``count``: how
    many; ``of``: the array's or object's size before the cut (None for fields and chars).
    ``detail``: the dropped item positions as ranges (``"3-250,252-990"``) or the field
    names. ``ref``: the stored original (``headroom_core.ccr.retrieve``)."""

    path: str
    kind: OmissionKind
    count: int
    of: int | None
    detail: str
    ref: str


@dataclass(frozen=True, slots=True)
class CrushResult:
    """``data``: the compressed value in the input's shape, cuts marked in place (equal to
    the input when nothing was cut). ``text``: what to send, the fewest-token of compact
    JSON and the table / repeat forms (``data`` when decoded). ``omitted``: every cut.
    ``lossy`` / ``refs`` / ``dropped`` (items, fields and strings cut): as the tool-output
    router records them. ``tokens_before``: compact JSON of the input; ``tokens_after``:
    ``text``."""

    data: Any
    text: str
    omitted: tuple[Omission, ...]
    lossy: bool
    refs: tuple[str, ...]
    dropped: int
    tokens_before: int
    tokens_after: int

    @property
    def was_modified(self) -> bool:
        """Anything cut, or a shorter lossless form chosen."""
        return self.lossy or self.tokens_after < self.tokens_before

    @property
    def tokens_saved(self) -> int:
        return max(0, self.tokens_before - self.tokens_after)


def crush_result(data: Any, done: Compressed | None, count: Callable[[str], int]) -> CrushResult:
    """The result for ``data`` given what SmartCrusher made of it (None: left as it is)."""
    if done is None:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        tokens = count(text)
        return CrushResult(data, text, (), False, (), 0, tokens, tokens)
    before = count(orjson.dumps(data).decode())
    out = json_codec.decode(orjson.loads(done.text))
    omitted = tuple(omissions(out)) if done.lossy else ()
    return CrushResult(
        out, done.text, omitted, done.lossy, done.refs, done.dropped, before, count(done.text)
    )


def omissions(value: Any, path: str = "$") -> list[Omission]:
    """Every cut marked in ``value`` (a decoded crush), in document order."""
    found: list[Omission] = []
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict) and TRUNCATED in item and "of" in item:
                found.append(
                    Omission(
                        path,
                        "items",
                        int(item[TRUNCATED]),
                        int(item["of"]),
                        str(item.get("omitted", "")),
                        str(item.get("ref", "")),
                    )
                )
            elif isinstance(item, dict) and set(item) == {OMITTED}:
                if isinstance(item[OMITTED], dict):
                    found.append(_fields(path, item[OMITTED]))
            else:
                found.extend(omissions(item, f"{path}[{i}]"))
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == TRUNCATED and isinstance(item, dict):
                found.append(
                    Omission(
                        path,
                        "records",
                        int(item.get("count", 0)),
                        int(item["of"]) if "of" in item else None,
                        "",
                        str(item.get("ref", "")),
                    )
                )
            elif key == OMITTED and isinstance(item, dict):
                found.append(_fields(path, item))
            else:
                step = f".{key}" if _NAME.match(key) else f"[{json.dumps(key)}]"
                found.extend(omissions(item, path + step))
    elif isinstance(value, str):
        match = _CUT_STRING.search(value)
        if match:
            found.append(Omission(path, "chars", int(match[1]), None, "", match[2]))
    return found


def _fields(path: str, marker: dict[str, Any]) -> Omission:
    names = [str(n) for n in marker.get("fields", [])]
    count = int(marker.get("count", len(names)))
    return Omission(path, "fields", count, None, ",".join(names), str(marker.get("ref", "")))


__all__ = ["CrushResult", "Omission", "OmissionKind", "crush_result", "omissions"]

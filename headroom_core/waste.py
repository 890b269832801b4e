"""Waste signals: where the tokens of a request go without carrying information.

Each signal is measured in tokens by real detection on the request, and the
signals do not overlap (JSON texts count toward ``json_bloat`` only):

- ``json_bloat_tokens``: tokens a JSON text loses when re-encoded compactly.
- ``html_noise_tokens``: tokens of HTML/XML tags, comments, scripts and styles.
- ``whitespace_tokens``: tokens lost by collapsing runs of spaces, trailing
  spaces and three or more newlines (non-JSON texts).
- ``dynamic_date_tokens``: tokens of dates, times, UUIDs and request ids in
  system prompts, which change per request and break prompt caching.
- ``repetition_tokens``: tokens of lines (>= 20 chars) that repeat a line
  seen earlier in the request, and of tool outputs that repeat an earlier one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ._json import compact_json
from .messages import content_text
from .tokens import Tokenizer

_HTML = re.compile(
    r"<script\b.*?</script>|<style\b.*?</style>|<!--.*?-->|</?[a-zA-Z][a-zA-Z0-9:-]*(?:\s[^<>]*)?/?>",
    re.DOTALL | re.IGNORECASE,
)
_WS_RUNS = re.compile(r"[ \t]{2,}|[ \t]+(?=\n)|\n{3,}")
DYNAMIC_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
    ),
    re.compile(
        r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+(?:\d{1,2}\s+)?"
        r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2}(?:,?\s+\d{4})?\b"
    ),
    re.compile(
        r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4}\b"
    ),
    re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp][Mm]|UTC|GMT|Z)?\b"),
    re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    re.compile(
        r"\b(?:req|request|trace|span|session|sess|run|msg)[-_](?=[A-Za-z_-]*\d)[A-Za-z0-9_-]{8,}\b",
        re.I,
    ),
)
_MIN_REPEAT_LINE = 20


@dataclass(frozen=True, slots=True)
class WasteSignals:
    json_bloat_tokens: int = 0
    html_noise_tokens: int = 0
    whitespace_tokens: int = 0
    dynamic_date_tokens: int = 0
    repetition_tokens: int = 0

    @property
    def total(self) -> int:
        return (
            self.json_bloat_tokens
            + self.html_noise_tokens
            + self.whitespace_tokens
            + self.dynamic_date_tokens
            + self.repetition_tokens
        )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def dynamic_spans(text: str) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) spans of dynamic values (dates, times, ids), in order."""
    spans: list[tuple[int, int]] = []
    for pattern in DYNAMIC_PATTERNS:
        spans.extend(m.span() for m in pattern.finditer(text))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def detect_waste(messages: Sequence[Mapping[str, Any]], tokenizer: Tokenizer) -> WasteSignals:
    count = tokenizer.count_text
    json_bloat = html = ws = dynamic = 0
    repeated: list[str] = []
    seen_lines: set[str] = set()
    seen_outputs: set[str] = set()
    for m in messages:
        text = content_text(m)
        if not text:
            continue
        role = m.get("role")
        if role in ("system", "developer"):
            found = [text[a:b] for a, b in dynamic_spans(text)]
            if found:
                dynamic += count(" ".join(found))
        if role == "tool":
            if text in seen_outputs:
                repeated.append(text)
                continue
            seen_outputs.add(text)
        compact = compact_json(text)
        if compact is not None:
            json_bloat += max(0, count(text) - count(compact))
            continue
        tags = _HTML.findall(text)
        if tags:
            html += count("".join(tags))
        if _WS_RUNS.search(text):
            ws += max(0, count(text) - count(_WS_RUNS.sub(_ws_replacement, text)))
        for line in text.splitlines():
            key = line.strip()
            if len(key) < _MIN_REPEAT_LINE:
                continue
            if key in seen_lines:
                repeated.append(line)
            else:
                seen_lines.add(key)
    repetition = count("\n".join(repeated)) if repeated else 0
    return WasteSignals(json_bloat, html, ws, dynamic, repetition)


def _ws_replacement(match: re.Match[str]) -> str:
    run = match.group(0)
    if run.startswith("\n"):
        return "\n\n"
    return "" if match.end() < len(match.string) and match.string[match.end()] == "\n" else " "


__all__ = [
    "DYNAMIC_PATTERNS",
    "WasteSignals",
    "detect_waste",
    "dynamic_spans",
]

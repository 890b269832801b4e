"""Cache alignment: keep the system prompt byte-identical across requests.

Providers reuse the longest prefix a request shares with an earlier one (OpenAI's automatic
prompt caching, Anthropic's ``cache_control``). A system prompt that states today's date,
the clock or a session id differs on every request, so nothing after that value is reused.
:class:`CacheAligner` moves such values to the end of their system message.

The rule, applied to each ``system`` or ``developer`` message (no other message is touched;
content that is neither a string nor a list of parts passes through unchanged):

1. Block. A message's existing dynamic block is set aside first: for string content,
   everything after the first occurrence of ``dynamic_tail_separator``; for a list of parts,
   a last ``{"type": "text"}`` part whose text starts with the separator. It is never
   changed. What remains is the *stable part*. In a list, every ``{"type": "text"}`` part
   is handled alone; other parts are left as they are.
2. Values (when ``extract_dates``). The spans :func:`headroom_core.waste.dynamic_spans`
   finds on a line (dates, times, UUIDs, request/session ids), a span with a time also
   covering the time-zone word right after it (``15:00:00 EST``, ``10:00 UTC+2``). Lines
   inside fenced code blocks (``` or ~~~) are never read: an example stays whole.
3. Sentences. A line is cut into sentences by :func:`headroom_core.text.sentence_spans`
   (the package's one splitter), never inside a value. Each sentence holding a value is
   removed from the stable part, whole; a line left with nothing is removed with its
   newline; the other sentences of the line keep their bytes.
4. Whitespace (when ``normalize_whitespace``). In the stable part, outside fenced code
   blocks: spaces and tabs at line ends are removed, except a markdown hard line break
   (two or more spaces after text), and a run of blank lines becomes one blank line.
   Inside a fence nothing changes.
5. Tail. The removed sentences, stripped, in text order, become the lines of ONE dynamic
   block at the end of the message, before the lines of any block set aside in step 1.
   String content: ``stable.rstrip() + separator + "\\n".join(lines)``. List content: one
   last part ``{"type": "text", "text": separator + "\\n".join(lines)}``; a text part
   the move leaves empty is dropped (APIs reject empty text parts).

Hence: two requests whose system prompts differ only in those values have byte-identical
stable parts; every moved value is still in the message, inside its own sentence; and
aligning aligned output changes nothing (its stable part has no value left, and the block
is never re-read). A value inside a sentence makes the whole sentence move: it keeps its
meaning, and the stable part needs no placeholder.

The *stable prefix* of a request is its leading run of system/developer messages, each cut
before its dynamic block, plus the tool definitions if given. If it has fewer than
``stable_prefix_min_tokens`` tokens after alignment, the messages are returned unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import CacheAlignerConfig
from ..errors import ConfigError
from ..text import sentence_spans
from ..tokens import Tokenizer, get_tokenizer
from ..waste import dynamic_spans
from ._base import Transform

if TYPE_CHECKING:
    from ..messages import Message
    from ._base import TransformContext

HASH_HEX_CHARS = 16  # 64 bits of sha256: plenty to tell prompts apart, short to log

_ROLES = frozenset({"system", "developer"})
_FENCE = re.compile(r"[ ]{0,3}(?:```|~~~)")
_TIME_ZONE = re.compile(
    r"(?:[ ]?(?:UTC|GMT|[A-Z]{2,4}T)\b)?(?:[+-]\d{1,2}(?::?\d{2})?\b)?"
)  # EST, CEST, UTC+2, +05:30 ... right after a time
_TRAILING_SPACE = re.compile(r"[ \t]+$")
_HARD_BREAK = re.compile(r"\S {2,}$")  # markdown: two or more spaces end a line with a break


@dataclass(frozen=True, slots=True)
class AlignResult:
    """What :meth:`CacheAligner.align` returns. ``messages`` is what to send.

    ``stable_prefix_hash`` is the first 16 hex digits of the sha256 of the canonical JSON
    (sorted keys, no spaces, UTF-8) of ``{"messages": <stable prefix>, "tools": <tools>}``;
    ``stable_prefix_tokens`` counts the same messages with chat framing (malformed content
    counts 0), plus the tools' canonical JSON text. Both describe the returned messages.
    """

    messages: list[Message]
    stable_prefix_hash: str
    stable_prefix_tokens: int
    moved: tuple[str, ...]
    changed: bool


class CacheAligner(Transform):
    """Moves dates, times and ids out of system prompts so their prefix caches (see module doc)."""

    name = "cache_aligner"

    def __init__(self, config: CacheAlignerConfig | None = None) -> None:
        self.config = config or CacheAlignerConfig()
        _check_config(self.config)
        # The one dynamic block per system message may cost a few tokens more than the
        # values did in place; the pipeline accepts that much growth from this transform.
        self.grow_allowance = get_tokenizer().count_text(self.config.dynamic_tail_separator) + 4

    def align(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        model: str = "gpt-4o",
    ) -> AlignResult:
        """Align ``messages`` (never mutated); ``tools`` only count toward the stable prefix."""
        return _align(messages, tools, self.config, get_tokenizer(model))

    def apply(self, messages: list[Message], ctx: TransformContext) -> list[Message]:
        """The pipeline step: aligns with ``ctx.config.cache_aligner`` and ``ctx.tokenizer``."""
        config = ctx.config.cache_aligner
        _check_config(config)
        result = _align(messages, None, config, ctx.tokenizer)
        if not result.changed:
            return messages
        ctx.record(f"{self.name}:{len(result.moved)}")
        return result.messages


def _check_config(config: CacheAlignerConfig) -> None:
    if not config.dynamic_tail_separator.strip():
        raise ConfigError(
            "CacheAlignerConfig.dynamic_tail_separator: must contain a visible character, "
            "or aligned output could not be recognised again "
            f"(got {config.dynamic_tail_separator!r})"
        )


def _align(
    messages: Sequence[Message],
    tools: Sequence[Mapping[str, Any]] | None,
    config: CacheAlignerConfig,
    tokenizer: Tokenizer,
) -> AlignResult:
    out = list(messages)
    moved: list[str] = []
    if config.enabled:
        for i, message in enumerate(messages):
            if isinstance(message, Mapping) and message.get("role") in _ROLES:
                aligned = _align_message(message, config)
                if aligned is not None:
                    out[i], values = aligned
                    moved.extend(values)
    changed = any(a is not b for a, b in zip(out, messages, strict=True))
    stable = _stable_prefix(out, config.dynamic_tail_separator)
    tokens = _count(stable, tools, tokenizer)
    if changed and tokens < config.stable_prefix_min_tokens:
        out, moved, changed = list(messages), [], False
        stable = _stable_prefix(out, config.dynamic_tail_separator)
        tokens = _count(stable, tools, tokenizer)
    digest = hashlib.sha256(
        _canonical({"messages": stable, "tools": list(tools or ())})
    ).hexdigest()
    return AlignResult(out, digest[:HASH_HEX_CHARS], tokens, tuple(moved), changed)


def _align_message(
    message: Mapping[str, Any], config: CacheAlignerConfig
) -> tuple[Message, list[str]] | None:
    content = message.get("content")
    if isinstance(content, str):
        new_content: Any
        new_content, values = _align_text(content, config)
    elif isinstance(content, list):
        new_content, values = _align_parts(content, config)
    else:
        return None
    if new_content == content:
        return None
    return {**message, "content": new_content}, values


def _align_text(text: str, config: CacheAlignerConfig) -> tuple[str, list[str]]:
    sep = config.dynamic_tail_separator
    stable, found, old_block = text.partition(sep)
    body, lines, values = _extract(stable, config)
    if not lines and not found:
        return body, values
    return body.rstrip() + sep + "\n".join(lines + ([old_block] if old_block else [])), values


def _align_parts(parts: list[Any], config: CacheAlignerConfig) -> tuple[list[Any], list[str]]:
    sep = config.dynamic_tail_separator
    block: Mapping[str, Any] | None = None
    if parts and _is_block_part(parts[-1], sep):
        block, parts = parts[-1], parts[:-1]
    out: list[Any] = []
    lines: list[str] = []
    values: list[str] = []
    for part in parts:
        if not _is_text_part(part):
            out.append(part)
            continue
        body, part_lines, part_values = _extract(part["text"], config)
        lines.extend(part_lines)
        values.extend(part_values)
        if part_lines and not body.strip():
            continue  # nothing but moved sentences: an empty text part is rejected by APIs
        out.append(part if body == part["text"] else {**part, "text": body})
    if lines:
        old = block["text"][len(sep) :] if block is not None else ""
        text = sep + "\n".join(lines + ([old] if old else []))
        out.append({**block, "text": text} if block is not None else {"type": "text", "text": text})
    elif block is not None:
        out.append(block)
    return out, values


def _is_block_part(part: Any, sep: str) -> bool:
    return _is_text_part(part) and bool(part["text"].startswith(sep))


def _is_text_part(part: Any) -> bool:
    return (
        isinstance(part, Mapping)
        and part.get("type") == "text"
        and isinstance(part.get("text"), str)
    )


def _extract(text: str, config: CacheAlignerConfig) -> tuple[str, list[str], list[str]]:
    """(stable text, moved sentences, moved values) for one text, rules 2-4."""
    sentences: list[str] = []
    values: list[str] = []
    if config.extract_dates and dynamic_spans(text):
        kept: list[str] = []
        in_code = False
        for line in text.split("\n"):
            if _FENCE.match(line):
                in_code = not in_code
            spans = [] if in_code or _FENCE.match(line) else _value_spans(line)
            if not spans:
                kept.append(line)
                continue
            rest, moved = _split_line(line, spans)
            sentences.extend(moved)
            values.extend(line[a:b] for a, b in spans)
            if rest:
                kept.append(rest)
        text = "\n".join(kept)
    if config.normalize_whitespace:
        text = _normalize_whitespace(text)
    return text, sentences, values


def _normalize_whitespace(text: str) -> str:
    """Rule 4: outside fenced code blocks, trailing spaces and tabs go (a markdown hard
    line break, two or more spaces after text, stays as it is) and runs of blank lines
    become one. Lines inside a fence keep every byte."""
    out: list[str] = []
    in_code = blank = False
    for line in text.split("\n"):
        fence = bool(_FENCE.match(line))
        if in_code or fence:
            out.append(line)
            blank = False
        else:
            if not _HARD_BREAK.search(line):
                line = _TRAILING_SPACE.sub("", line)
            if line or not blank:
                out.append(line)
            blank = not line
        if fence:
            in_code = not in_code
    return "\n".join(out)


def _value_spans(line: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for start, end in dynamic_spans(line):
        if ":" in line[start:end]:
            zone = _TIME_ZONE.match(line, end)
            if zone:
                end = zone.end()
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


def _split_line(line: str, spans: list[tuple[int, int]]) -> tuple[str, list[str]]:
    """(the line without its sentences that hold a value or "" if none is left, those sentences)."""
    indent = line[: len(line) - len(line.lstrip())]
    pieces: list[tuple[str, int, int]] = []  # (whitespace before, start, end)
    for a, b in sentence_spans(line, len(indent)):
        prev = pieces[-1][2] if pieces else 0
        if pieces and any(s < a and prev < e for s, e in spans):
            pieces[-1] = (pieces[-1][0], pieces[-1][1], b)  # never cut a value in two
        else:
            pieces.append((line[prev:a] if pieces else "", a, b))
    if not pieces:
        pieces.append(("", len(indent), len(line)))
    gap, a, _ = pieces[-1]
    pieces[-1] = (gap, a, len(line))  # the last sentence keeps the line's trailing bytes
    kept: list[str] = []
    moved: list[str] = []
    for before, a, b in pieces:
        if any(s < b and a < e for s, e in spans):
            moved.append(line[a:b].strip())
        else:
            kept.append((before if kept else indent) + line[a:b])
    return "".join(kept), moved


def _stable_prefix(messages: Sequence[Any], sep: str) -> list[Any]:
    """The leading system/developer messages, each without its dynamic block."""
    out: list[Any] = []
    for m in messages:
        if not (isinstance(m, Mapping) and m.get("role") in _ROLES):
            break
        content = m.get("content")
        if isinstance(content, str):
            content = content.partition(sep)[0]
        elif isinstance(content, list) and content and _is_block_part(content[-1], sep):
            content = content[:-1]
        out.append({**m, "content": content})
    return out


def _count(
    stable: list[Any], tools: Sequence[Mapping[str, Any]] | None, tokenizer: Tokenizer
) -> int:
    total = 0
    for m in stable:
        content = m.get("content")
        readable = content is None or isinstance(content, (str, list))
        total += tokenizer.count_message(m if readable else {**m, "content": None})
    if tools:
        total += tokenizer.count_text(_canonical(list(tools)).decode())
    return total


def _canonical(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8; a non-JSON value as its ``repr``."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
    ).encode()


def prefix_reuse(previous: Sequence[Message], current: Sequence[Message]) -> float:
    """The fraction of ``previous`` that ``current`` repeats byte for byte as a prefix.

    Each request is serialised as the concatenation, in order, of its messages' canonical
    JSON (``json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``,
    UTF-8; a non-JSON value as its ``repr``). The result is the length of the longest common
    prefix of the two byte strings divided by the length of the previous one: 1.0 when
    ``current`` starts with all of ``previous`` (or ``previous`` is empty), near 0.0 when
    their first messages already differ. This is what a provider's prefix cache can reuse,
    up to its own serialisation and block size.

    Cost: one serialisation of ``previous``, of ``current`` up to its first differing
    message, and a binary search of slice comparisons within that message.
    """
    prev = b"".join(_canonical(m) for m in previous)
    if not prev:
        return 1.0
    offset = 0
    for m in current:
        if offset >= len(prev):
            break
        chunk = _canonical(m)
        if prev[offset : offset + len(chunk)] != chunk:
            offset += _common_prefix(prev[offset : offset + len(chunk)], chunk)
            break
        offset += len(chunk)
    return min(offset, len(prev)) / len(prev)


def _common_prefix(a: bytes, b: bytes) -> int:
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while hi - lo > 1:  # a[:lo] == b[:lo], a[:hi] != b[:hi]; each step compares a[lo:mid]
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


__all__ = ["AlignResult", "CacheAligner", "prefix_reuse"]

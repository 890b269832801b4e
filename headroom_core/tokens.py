"""Exact, offline token counting.

OpenAI models are counted exactly with tiktoken (``o200k_base`` for gpt-4o,
gpt-4.1, o-series and gpt-5; ``cl100k_base`` for gpt-4 and gpt-3.5), built from
rank files shipped with the install (see :mod:`headroom_core._encodings`).

Chat overheads follow OpenAI's published counting recipe: every message costs
3 tokens plus the tokens of each of its string fields (role, content, name,
tool_call_id); a ``name`` costs 1 more; the reply is primed with 3. A tool call
costs its function name, its arguments and 3 tokens of framing. Content parts
count their text; an image part counts a flat 85 tokens (OpenAI's low-detail
price) since its pixels are not in the message.

Claude and unknown models: Anthropic's tokenizer is not public, so we count
``cl100k_base`` tokens and scale by 1.15, rounded up. It errs high on purpose
(a budget computed with it is safe) and is never 0 for non-empty text. Use
``AnthropicProvider(client=...)`` for the server's exact count.

Large texts are counted in pieces, so time and memory stay linear: a text over
``CHUNK_CHARS`` characters is cut where tiktoken's pre-tokenizer cuts too (after a run of
line breaks, else before a space between two words), so the count stays exact; a run with
no such place is cut every ``RUN_CHARS`` characters (BPE on one enormous word is
superlinear), which can shift the count by a token or so per cut. Counts of texts of 256
characters and more are memoised by length and hash (nothing is held alive), so the
pipeline counting the same 50 MB tool output before and after each transform costs one pass.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from . import _encodings

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
TOKENS_PER_TOOL_CALL = 3
IMAGE_PART_TOKENS = 85
APPROX_SCALE = 1.15

# Longest prefix wins. Anything else is counted by approximation.
_ENCODING_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada-002", "cl100k_base"),
)

_CACHE_MIN_CHARS = 256  # short strings are cheaper to re-encode than to hash-and-store
_CACHE_MAX_ENTRIES = 8192
#: Texts longer than this are counted in pieces of about this size (see the module doc).
CHUNK_CHARS = 100_000
#: A run with no line break or space is cut every this many characters.
RUN_CHARS = 8_192


def _boundary(text: str, low: int, end: int) -> int:
    """The last place in ``text[low:end]`` where tiktoken's pre-tokenizer cuts too: after
    the last line break of a run of them, else before a space that follows a non-space and
    precedes one (``word| word``); -1 when there is none."""
    cut = text.rfind("\n", low, end)
    while cut != -1:
        if text[cut + 1 : cut + 2] not in ("\n", "\r", ""):
            return cut + 1
        cut = text.rfind("\n", low, cut)
    cut = text.rfind(" ", low, end)
    while cut > low:
        if not text[cut - 1].isspace() and not text[cut + 1 : cut + 2].isspace():
            return cut
        cut = text.rfind(" ", low, cut)
    return -1


def _pieces(text: str) -> Iterable[str]:
    """``text`` cut for counting at pre-tokenizer boundaries (:func:`_boundary`), or every
    ``RUN_CHARS`` inside a run that has none."""
    n, pos = len(text), 0
    while n - pos > CHUNK_CHARS:
        end = pos + CHUNK_CHARS
        piece_end = _boundary(text, pos + 1, end)
        if piece_end <= pos:  # no boundary near the end: a long run, cut it short
            piece_end = pos + RUN_CHARS
        yield text[pos:piece_end]
        pos = piece_end
    yield text[pos:]


def encoding_for_model(model: str) -> str | None:
    """The tiktoken encoding for an OpenAI model, or None when it is not exact."""
    name = model.split("/", 1)[-1].lower()  # "openai/gpt-4o" -> "gpt-4o"
    best: tuple[int, str] | None = None
    for prefix, enc in _ENCODING_BY_PREFIX:
        if name.startswith(prefix) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), enc)
    return best[1] if best else None


class Tokenizer:
    """Counts tokens for one model. Exact for OpenAI models; see module doc otherwise.

    Counts of long strings are memoised (bounded LRU keyed by length and hash), so
    counting the same 1 MB tool output before and after a transform costs one tiktoken
    pass; large texts are counted in pieces (module doc).
    """

    def __init__(self, model: str = "gpt-4o") -> None:
        self.model = model
        exact = encoding_for_model(model)
        self.is_exact = exact is not None
        self.encoding_name = exact or "cl100k_base"
        self._cache: OrderedDict[tuple[int, int], int] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        kind = "exact" if self.is_exact else "approx"
        return f"Tokenizer(model={self.model!r}, encoding={self.encoding_name!r}, {kind})"

    def encode(self, text: str) -> list[int]:
        """Token ids (special-token text is encoded as ordinary text, as user data must be)."""
        return _encodings.get_encoding(self.encoding_name).encode_ordinary(text)

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        if len(text) < _CACHE_MIN_CHARS:
            return self._scale(len(self.encode(text)))
        key = (len(text), hash(text))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        if len(text) <= CHUNK_CHARS:
            n = self._scale(len(self.encode(text)))
        else:
            n = self._scale(sum(len(self.encode(piece)) for piece in _pieces(text)))
        with self._lock:
            self._cache[key] = n
            while len(self._cache) > _CACHE_MAX_ENTRIES:
                self._cache.popitem(last=False)
        return n

    def _scale(self, n: int) -> int:
        return n if self.is_exact else math.ceil(n * APPROX_SCALE)

    def count_message(self, message: Mapping[str, Any]) -> int:
        """Tokens of one message including its chat framing (not the reply priming)."""
        total = TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += self._count_content(value)
            elif key == "tool_calls":
                total += self._count_tool_calls(value or ())
            elif isinstance(value, str):
                total += self.count_text(value)
                if key == "name":
                    total += TOKENS_PER_NAME
        return total

    def count_messages(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """Tokens of a whole chat request, reply priming included."""
        return sum(self.count_message(m) for m in messages) + REPLY_PRIMING

    def _count_content(self, content: Any) -> int:
        if content is None:
            return 0
        if isinstance(content, str):
            return self.count_text(content)
        total = 0
        for part in content:
            if isinstance(part, str):
                total += self.count_text(part)
            elif isinstance(part, Mapping):
                total += self._count_part(part)
        return total

    def _count_part(self, part: Mapping[str, Any]) -> int:
        kind = part.get("type")
        if kind in ("image_url", "image", "input_image"):
            return IMAGE_PART_TOKENS
        if isinstance(part.get("text"), str):
            return self.count_text(part["text"])
        if kind in ("tool_result", "tool_use"):  # Anthropic blocks inside neutral content
            return self._count_content(part.get("content")) + self.count_text(
                str(part.get("input", ""))
            )
        if isinstance(part.get("thinking"), str):
            return self.count_text(part["thinking"])
        return 0

    def _count_tool_calls(self, tool_calls: Iterable[Mapping[str, Any]]) -> int:
        total = 0
        for call in tool_calls:
            fn = call.get("function") or {}
            total += TOKENS_PER_TOOL_CALL
            total += self.count_text(str(fn.get("name", "")))
            total += self.count_text(str(fn.get("arguments", "")))
        return total


_tokenizers: dict[str, Tokenizer] = {}


def get_tokenizer(model: str = "gpt-4o") -> Tokenizer:
    """A shared Tokenizer per model name (so its count cache is shared too)."""
    tok = _tokenizers.get(model)
    if tok is None:
        tok = _tokenizers.setdefault(model, Tokenizer(model))
    return tok


def count_tokens_text(text: str, *, model: str = "gpt-4o") -> int:
    """Tokens of ``text`` alone, for ``model``."""
    return get_tokenizer(model).count_text(text)


def count_tokens_messages(messages: Iterable[Mapping[str, Any]], *, model: str = "gpt-4o") -> int:
    """Tokens of a chat request in the neutral (OpenAI) format, framing included."""
    return get_tokenizer(model).count_messages(messages)


__all__ = [
    "APPROX_SCALE",
    "IMAGE_PART_TOKENS",
    "REPLY_PRIMING",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "TOKENS_PER_TOOL_CALL",
    "Tokenizer",
    "count_tokens_messages",
    "count_tokens_text",
    "encoding_for_model",
    "get_tokenizer",
]

"""Refs, the ``StoredOriginal`` record, the ``OriginalStore`` protocol and shared checks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson

from headroom_core.errors import ConfigError, InputError

__all__ = ["REF_LENGTH", "OriginalStore", "StoredOriginal", "is_ref", "ref_for"]

#: A ref is this many lowercase hex characters.
REF_LENGTH = 32  # 128 bits: a collision is out of reach (64 bits were found in minutes)
_REF = re.compile(rf"[0-9a-f]{{{REF_LENGTH}}}")


def encode_text(text: str) -> bytes:
    """UTF-8 bytes of ``text``; lone surrogates (valid in a ``str``) pass through unchanged.

    For every string without lone surrogates this is exactly ``text.encode("utf-8")``.
    """
    return text.encode("utf-8", "surrogatepass")


def decode_text(data: bytes) -> str:
    """Inverse of :func:`encode_text`."""
    return data.decode("utf-8", "surrogatepass")


def ref_for(text: str) -> str:
    """The ref of an original: the first 32 hex characters (128 bits) of the SHA-256 of its
    UTF-8 bytes.

    Stable across processes, runs and machines, so a ref written into a compressed message
    today finds the same original tomorrow.
    """
    if not isinstance(text, str):
        raise InputError(f"ref_for: expected a str, got {type(text).__name__}")
    return hashlib.sha256(encode_text(text)).hexdigest()[:REF_LENGTH]


def is_ref(value: object) -> bool:
    """True if ``value`` has the shape of a ref (32 lowercase hex characters)."""
    return isinstance(value, str) and _REF.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class StoredOriginal:
    """One original as the store gives it back.

    ``size`` is the length of ``text`` in characters; ``created_at`` is the epoch time of
    the first ``put``; ``meta`` is a fresh copy on every ``get``.
    """

    ref: str
    text: str
    tool: str | None
    kind: str
    created_at: float
    size: int
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class OriginalStore(Protocol):
    """Where lossy compressors keep what they cut, so the model can ask for it back."""

    def put(
        self,
        original: str,
        *,
        tool: str | None = None,
        kind: str = "json",
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Keep ``original`` and return its ref. Idempotent: the same text is stored once."""
        ...

    def get(self, ref: str) -> StoredOriginal | None:
        """The original stored under ``ref``, or None if unknown or evicted."""
        ...

    def __contains__(self, ref: object) -> bool: ...

    def __len__(self) -> int: ...

    def clear(self) -> None:
        """Forget every original."""
        ...


def check_put(
    original: object, tool: object, kind: object, meta: Mapping[str, Any] | None
) -> bytes:
    """Validate ``put``'s arguments; return ``meta`` as JSON bytes (InputError if not JSON)."""
    if not isinstance(original, str):
        raise InputError(f"put: original must be a str, got {type(original).__name__}")
    if tool is not None and not isinstance(tool, str):
        raise InputError(f"put: tool must be a str or None, got {type(tool).__name__}")
    if not isinstance(kind, str) or not kind:
        raise InputError(f"put: kind must be a non-empty str, got {kind!r}")
    if meta is None:
        return b"{}"
    if not isinstance(meta, Mapping):
        raise InputError(f"put: meta must be a mapping or None, got {type(meta).__name__}")
    try:
        return orjson.dumps(dict(meta))
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise InputError(f"put: meta must be JSON-serialisable: {exc}") from exc


def decode_meta(data: bytes | str) -> dict[str, Any]:
    meta = orjson.loads(data)
    if not isinstance(meta, dict):
        raise ValueError(f"meta is a {type(meta).__name__}, not an object")
    return meta


def check_bound(owner: str, name: str, value: object) -> int:
    """A positive int bound, else ConfigError naming ``owner.name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{owner}.{name}: expected an int >= 1, got {value!r}")
    return value

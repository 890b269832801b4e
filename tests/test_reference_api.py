"""Every Python call of the prior art's three public texts (``../shared/reference/``: its API
reference, README and OpenAI integration page) runs here as written, only the import line
changed (``headroom`` -> ``headroom_core``, and ``headroom_integrations`` for
``HeadroomClient``), and does what the text says it does.

Each test types in one snippet of those texts (the comment above it names where it is);
the ``[...]`` / ``...`` placeholders of the texts are filled with the data defined here, and
``messages``, ``items``, ``query``, ``tokenizer`` and ``long_conversation``, which the texts
use without defining, are defined here. The SDK clients (``OpenAI()``, ``Anthropic()``) are
the real ones, pointed by the environment at a local API server on 127.0.0.1
(``tests/integrations/provider_server.py``); every test that writes a store runs in its own
temporary working directory.

Not Python, so not here: the integration page's JavaScript ``withHeadroom()`` client, and
the README's before/after illustrations of the transforms (JSON and text with ``...`` in
them, not calls).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.provider_server import ProviderServer, count_input_tokens, reply_text

# -- data the texts use without defining it ------------------------------------------------

DATED_SYSTEM = "You are helpful. Current Date: 2024-01-15"
QUESTION = "Which requests were slow? Look at request 117 first."


def rows(n: int, *, start: int = 0, error_at: int | None = None) -> list[dict[str, Any]]:
    """API-like records; ``error_at``: the one record that failed."""
    out = []
    for i in range(start, start + n):
        out.append(
            {
                "id": i,
                "request": f"req-{i:05d}",
                "status": "error" if i == error_at else "ok",
                "region": "eu-west-1",
                "latency_ms": 40 + (i * 7) % 13,
                "message": "connection refused by upstream" if i == error_at else "served",
            }
        )
    return out


def call(k: int, name: str = "query_requests") -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": f"call_{k}", "type": "function", "function": {"name": name, "arguments": "{}"}}
        ],
    }


def result(k: int, payload: Any) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": f"call_{k}", "content": json.dumps(payload, indent=2)}


def agent_messages() -> list[dict[str, Any]]:
    """One agent request: a dated system prompt, a question, one large JSON tool output."""
    return [
        {"role": "system", "content": DATED_SYSTEM},
        {"role": "user", "content": QUESTION},
        call(1),
        result(1, rows(300, error_at=211)),
    ]


def long_history(units: int, rows_per_unit: int) -> list[dict[str, Any]]:
    """A long agent session: one tool call per turn, each answered, then a last question."""
    out: list[dict[str, Any]] = [{"role": "system", "content": DATED_SYSTEM}]
    for k in range(units):
        out.append({"role": "user", "content": f"Check batch {k} of the eu-west-1 requests."})
        out.append(call(k))
        out.append(result(k, rows(rows_per_unit, start=k * rows_per_unit)))
        out.append({"role": "assistant", "content": f"Batch {k} looks fine."})
    out.append({"role": "user", "content": QUESTION})
    return out


@pytest.fixture(scope="module")
def big_history() -> list[dict[str, Any]]:
    """About 165k gpt-4o tokens: over the 128k window and the 100k of the examples."""
    from headroom_core import count_tokens_messages

    history = long_history(12, 250)
    assert 150_000 < count_tokens_messages(history, model="gpt-4o") < 200_000
    return history


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderServer]:
    """A local API server the SDK clients reach through the environment; cwd is tmp_path."""
    pytest.importorskip("openai", reason="the openai SDK is needed: pip install -e '.[dev]'")
    pytest.importorskip("anthropic", reason="the anthropic SDK is needed: pip install -e '.[dev]'")
    with ProviderServer() as server:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        yield server


def decoded(text: str) -> Any:
    """A compressed JSON tool output in its original shape (table form expanded)."""
    from headroom_core.transforms import json_codec

    return json_codec.decode(json.loads(text))


def sent_messages(server: ProviderServer, k: int = -1) -> list[dict[str, Any]]:
    return list(server.requests[k].body["messages"])


def tokens(messages: list[dict[str, Any]]) -> int:
    from headroom_core import count_tokens_messages

    return count_tokens_messages(messages, model="gpt-4o")


# == API reference: HeadroomClient ==========================================================


def test_api_reference_headroom_client(
    env: ProviderServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from openai import OpenAI

    from headroom_integrations import HeadroomClient

    client = HeadroomClient(
        original_client=OpenAI(),
        default_mode="optimize",
    )

    messages = agent_messages()
    response = client.chat.completions.create(
        model="gpt-4o",
        messages=messages,
        headroom_mode="optimize",  # Override default mode
    )
    assert response.choices[0].message.content == reply_text({"messages": messages})
    sent = sent_messages(env)
    assert sent[1:3] == messages[1:3]  # user text and the tool call as given
    assert sent[0]["content"].endswith("\nCurrent Date: 2024-01-15")  # moved, cache-stable
    assert tokens(sent) < tokens(messages) / 3  # the tool output was compressed
    assert rows(300)[117] in decoded(sent[3]["content"])  # the record the question names

    # headroom_query: what relevance scoring ranks against
    client.chat.completions.create(
        model="gpt-4o",
        messages=messages,
        headroom_mode="optimize",
        headroom_query="request req-00042",
    )
    assert rows(300)[42] in decoded(sent_messages(env)[3]["content"])

    before = len(env.requests)
    plan = client.chat.completions.simulate(
        model="gpt-4o",
        messages=messages,
    )

    print(f"Tokens before: {plan.tokens_before}")
    print(f"Tokens after: {plan.tokens_after}")
    print(f"Savings: {plan.savings_percent:.1f}%")

    assert len(env.requests) == before  # no API call
    out = capsys.readouterr().out
    assert f"Tokens before: {tokens(messages)}\n" in out
    assert plan.tokens_after == tokens(plan.messages) < plan.tokens_before
    assert f"Savings: {100 * plan.tokens_saved / plan.tokens_before:.1f}%" in out
    # SimulationResult's fields, as the reference lists them
    assert plan.tokens_saved == plan.tokens_before - plan.tokens_after
    assert list(plan.transforms_applied) and isinstance(plan.transforms_applied[0], str)
    assert plan.waste_signals.json_bloat_tokens > 0  # indented JSON
    assert plan.waste_signals.dynamic_date_tokens > 0  # the date in the system prompt
    for name in ("html_noise_tokens", "whitespace_tokens", "repetition_tokens"):
        assert getattr(plan.waste_signals, name) >= 0

    # RequestMetrics, as the reference lists its fields
    metrics = client.get_metrics(limit=10)
    assert len(metrics) == 2  # the two calls; simulate records nothing in the store
    m = metrics[0]
    assert isinstance(m.request_id, str) and m.request_id
    assert isinstance(m.timestamp, datetime) and m.model == "gpt-4o"
    assert m.tokens_input_before == tokens(messages)
    assert m.tokens_input_after < m.tokens_input_before
    assert m.tokens_output == max(1, len(reply_text({"messages": messages})) // 4)
    assert m.cost_before is not None and m.cost_after is not None
    assert m.cost_after < m.cost_before and list(m.transforms_applied)


def test_api_reference_client_constructor_parameters(env: ProviderServer, tmp_path: Path) -> None:
    from openai import OpenAI

    from headroom_core import (
        CacheAlignerConfig,
        OpenAIProvider,
        RollingWindowConfig,
        SmartCrusherConfig,
    )
    from headroom_integrations import HeadroomClient

    crusher = SmartCrusherConfig(max_items_after_crush=5)
    aligner = CacheAlignerConfig(extract_dates=False)
    window = RollingWindowConfig(max_tokens=20_000, preserve_recent_turns=1)
    client = HeadroomClient(
        original_client=OpenAI(),
        provider=OpenAIProvider(),
        default_mode="audit",
        store_url="sqlite:///metrics.db",
        smart_crusher_config=crusher,
        cache_aligner_config=aligner,
        rolling_window_config=window,
    )
    assert client.provider == "openai" and client.default_mode == "audit"
    assert client.config.smart_crusher is crusher and client.config.cache_aligner is aligner
    assert client.config.rolling_window is window

    messages = agent_messages()
    client.chat.completions.create(model="gpt-4o", messages=messages)  # audit: as given
    assert sent_messages(env) == messages
    client.chat.completions.create(model="gpt-4o", messages=messages, headroom_mode="optimize")
    sent = sent_messages(env)
    assert sent[0]["content"] == DATED_SYSTEM  # extract_dates=False: the date stays
    kept = decoded(sent[3]["content"])
    assert len([r for r in kept if "__headroom_truncated" not in r]) <= 5 + 2  # + query, error
    assert (tmp_path / "metrics.db").is_file()
    assert [m.mode for m in client.get_metrics()] == ["optimize", "audit"]

    # "off": nothing done, nothing projected
    client.chat.completions.create(model="gpt-4o", messages=messages, headroom_mode="off")
    assert sent_messages(env) == messages


# == API reference: configuration classes ===================================================


def test_api_reference_smart_crusher_config() -> None:
    from headroom_core import SmartCrusherConfig

    config = SmartCrusherConfig(
        min_tokens_to_crush=200,
        max_items_after_crush=50,
        keep_first=3,
        keep_last=2,
        relevance_threshold=0.3,
        anomaly_std_threshold=2.0,
        preserve_errors=True,
    )

    from headroom_core import SmartCrusher

    data = rows(400, error_at=333)
    out = SmartCrusher(config).crush(data).data
    kept = [r["id"] for r in out if "__headroom_truncated" not in r]
    assert len(kept) <= 50 + 1  # the target, plus the error that preserve_errors keeps
    assert kept[:3] == [0, 1, 2] and kept[-2:] == [398, 399] and 333 in kept
    small = rows(3)  # under min_tokens_to_crush: never cut
    assert SmartCrusher(config).crush(small).data == small


def test_api_reference_cache_aligner_config() -> None:
    from headroom_core import CacheAlignerConfig

    config = CacheAlignerConfig(
        extract_dates=True,
        normalize_whitespace=True,
        stable_prefix_min_tokens=100,
    )

    from headroom_core import CacheAligner

    short = [{"role": "system", "content": DATED_SYSTEM}, {"role": "user", "content": "Hi"}]
    assert CacheAligner(config).align(short).messages == short  # prefix under 100 tokens
    rules = " ".join(f"Rule {i}: answer in plain English, cite the request id." for i in range(12))
    long = [{"role": "system", "content": f"{rules}\n\n\nCurrent Date: 2024-01-15"}]
    aligned = CacheAligner(config).align(long).messages[0]["content"]
    assert aligned.startswith(rules + "\n\n---") and aligned.endswith("Current Date: 2024-01-15")


def test_api_reference_rolling_window_config(big_history: list[dict[str, Any]]) -> None:
    from headroom_core import RollingWindowConfig

    config = RollingWindowConfig(
        max_tokens=100000,
        preserve_system=True,
        preserve_recent_turns=5,
        drop_oldest_first=True,
    )

    # preserve_system is our keep_system; max_tokens caps the window; oldest first is the rule
    assert config.keep_system is True and config.preserve_recent_turns == 5
    assert config.max_tokens == 100000 and config.drop_oldest_first is True

    from headroom_core import ConfigError, RollingWindow, compress
    from headroom_core.config import HeadroomConfig

    fitted = RollingWindow(config).apply(big_history)  # the config's max_tokens is the window
    assert tokens(fitted) <= 100_000 - config.output_buffer_tokens
    assert fitted[0] == big_history[0]  # the system prompt
    last_turns = [m for m in big_history if m["role"] == "user"][-5:]
    assert [m for m in fitted if m["role"] == "user"][-5:] == last_turns
    # in compress() too, under the model's 128k window
    result = compress(big_history, model="gpt-4o", config=HeadroomConfig(rolling_window=config))
    assert result.tokens_after <= 100_000 - config.output_buffer_tokens

    without = RollingWindowConfig(preserve_system=False, max_tokens=100000)
    assert without.keep_system is False
    with pytest.raises(ConfigError, match="always drops the oldest units first"):
        RollingWindowConfig(drop_oldest_first=False)


def test_api_reference_intelligent_context_config_and_scoring_weights() -> None:
    from headroom_core.config import IntelligentContextConfig, ScoringWeights

    weights = ScoringWeights(
        recency=0.20,
        semantic_similarity=0.20,
        toin_importance=0.25,
        error_indicator=0.15,
        forward_reference=0.15,
        token_density=0.05,
    )

    config = IntelligentContextConfig(
        enabled=True,
        keep_system=True,
        keep_last_turns=2,
        output_buffer_tokens=4000,
        use_importance_scoring=True,
        scoring_weights=weights,
        toin_integration=True,
        recency_decay_rate=0.1,
        compress_threshold=0.1,
    )

    assert config.scoring_weights == weights and config.toin_integration is True

    from headroom_core.config import HeadroomConfig
    from headroom_core.toin import get_toin
    from headroom_core.transforms import IntelligentContextManager, build_transforms

    def manager(cfg: IntelligentContextConfig) -> IntelligentContextManager:
        found = build_transforms(HeadroomConfig(intelligent_context=cfg))
        return next(t for t in found if isinstance(t, IntelligentContextManager))

    assert manager(config).scorer.toin is get_toin()  # the pipeline ranks by what TOIN learned
    off = IntelligentContextConfig(enabled=True, toin_integration=False)
    assert manager(off).scorer.toin is None
    from headroom_core import ConfigError

    with pytest.raises(ConfigError, match="toin_integration is False"):
        IntelligentContextManager(off, toin=get_toin())


def test_api_reference_scoring_weights_normalized() -> None:
    from headroom_core.config import ScoringWeights

    weights = ScoringWeights(
        recency=0.20,  # Exponential decay from end
        semantic_similarity=0.20,  # Embedding similarity to recent context
        toin_importance=0.25,  # TOIN retrieval_rate
        error_indicator=0.15,  # TOIN field_semantics error detection
        forward_reference=0.15,  # Messages referenced by later messages
        token_density=0.05,  # Unique/total token ratio
    )

    # Weights are auto-normalized to sum to 1.0
    normalized = weights.normalized()

    values = normalized.model_dump()
    assert math.isclose(sum(values.values()), 1.0)
    assert math.isclose(values["toin_importance"], 0.25 / 1.0)
    doubled = ScoringWeights(recency=0.4, semantic_similarity=0.4).normalized()
    assert math.isclose(doubled.recency, 0.4 / 1.4)


def test_api_reference_relevance_scorer_config() -> None:
    from headroom_core import RelevanceScorerConfig

    config = RelevanceScorerConfig(
        scorer_type="bm25",  # "bm25", "embedding", or "hybrid"
        embedding_model=None,  # Model name for embedding scorer
        hybrid_alpha=0.5,  # Weight for hybrid scoring
    )

    from headroom_core import BM25Scorer, create_scorer

    assert config.embedding_model == "all-MiniLM-L6-v2"  # None: the default model
    assert isinstance(create_scorer(config=config), BM25Scorer)


# == API reference: providers ===============================================================


def test_api_reference_openai_provider() -> None:
    from headroom_core import OpenAIProvider

    provider = OpenAIProvider()

    # Get token counter
    counter = provider.get_token_counter("gpt-4o")
    tokens = counter.count_text("Hello, world!")

    # Get context limit
    limit = provider.get_context_limit("gpt-4o")  # 128000

    # Estimate cost
    cost = provider.estimate_cost(
        input_tokens=1000,
        output_tokens=500,
        model="gpt-4o",
    )

    assert tokens == 4  # Hello , world ! in o200k_base
    assert limit == 128000
    assert cost is not None and math.isclose(cost, (1000 * 2.50 + 500 * 10.0) / 1_000_000)


def test_api_reference_anthropic_provider(env: ProviderServer) -> None:
    from anthropic import Anthropic

    from headroom_core import AnthropicProvider

    provider = AnthropicProvider(client=Anthropic())

    messages = agent_messages()
    counter = provider.get_token_counter("claude-3-5-sonnet-latest")
    tokens = counter.count_messages(messages)  # Accurate count via API

    assert env.requests[-1].path == "/v1/messages/count_tokens"
    assert tokens == count_input_tokens(env.last_body)  # the server's count, not ours
    assert env.last_body["system"] == DATED_SYSTEM  # sent in Anthropic's form
    assert env.last_body["messages"][1]["content"][0]["type"] == "tool_use"


# == API reference: relevance scoring =======================================================

ITEMS = [
    "Weekly report: all deployments in us-east-1 succeeded",
    "search query syntax: use quotes for exact phrases",
    "Cafeteria menu for Friday",
]


def test_api_reference_bm25_scorer() -> None:
    from headroom_core import BM25Scorer

    scorer = BM25Scorer()
    scores = scorer.score_items(
        items=ITEMS,
        query="search query",
    )

    assert len(scores) == 3 and max(scores) == scores[1] == 1.0
    assert scores[0] == scores[2] == 0.0


def _need_embeddings() -> None:
    from headroom_core import embedding_available

    if not embedding_available():
        pytest.skip('embeddings extra not installed: pip install "headroom-context[embeddings]"')


def test_api_reference_embedding_scorer() -> None:
    _need_embeddings()
    items, query = ITEMS, "how do I write a search?"

    from headroom_core import EmbeddingScorer, embedding_available

    if embedding_available():
        scorer = EmbeddingScorer(model="all-MiniLM-L6-v2")
        scores = scorer.score_items(items, query)

    assert len(scores) == 3 and scores.index(max(scores)) == 1
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_api_reference_hybrid_scorer_and_create_scorer() -> None:
    _need_embeddings()
    items, query = ITEMS, "search query"

    from headroom_core import BM25Scorer, EmbeddingScorer, HybridScorer

    scorer = HybridScorer(alpha=0.5)  # 50% BM25, 50% embedding
    scores = scorer.score_items(items, query)

    lexical = BM25Scorer().score_items(items, query)
    semantic = EmbeddingScorer().score_items(items, query)
    for s, lx, sm in zip(scores, lexical, semantic, strict=True):
        assert math.isclose(s, 0.5 * lx + 0.5 * sm, abs_tol=1e-6)

    from headroom_core import create_scorer

    # Auto-select best available scorer
    scorer = create_scorer()

    assert isinstance(scorer, HybridScorer)  # embeddings are installed here

    # Explicitly choose type
    scorer = create_scorer(scorer_type="hybrid", alpha=0.7)

    assert isinstance(scorer, HybridScorer) and scorer.alpha == 0.7


# == API reference: transforms, direct use ==================================================


def test_api_reference_smart_crusher() -> None:
    from headroom_core import SmartCrusher

    crusher = SmartCrusher()
    result = crusher.crush(
        data={"results": rows(300, error_at=211)},
        query="user query about req-00117",
    )

    kept = [r for r in result.data["results"] if "__headroom_truncated" not in r]
    ids = [r["id"] for r in kept]
    assert 117 in ids and 211 in ids  # the record the query names, and the error
    assert kept[ids.index(117)] == rows(300)[117]  # kept verbatim
    (cut,) = result.omitted
    assert cut.path == "$.results" and cut.kind == "items"
    assert cut.of == 300 and cut.count == 300 - len(kept)
    assert result.lossy and result.refs == (cut.ref,) and result.tokens_after < result.tokens_before

    from headroom_core.ccr import retrieve

    assert json.loads(retrieve(cut.ref)) == {"results": rows(300, error_at=211)}


def test_api_reference_cache_aligner() -> None:
    messages = [{"role": "system", "content": DATED_SYSTEM}, {"role": "user", "content": "Hi"}]
    tomorrow = [{"role": "system", "content": DATED_SYSTEM.replace("15", "16")}, messages[1]]

    from headroom_core import CacheAligner

    aligner = CacheAligner()
    result = aligner.align(messages)

    assert result.messages[0]["content"].startswith("You are helpful.\n\n---")
    assert result.messages[0]["content"].endswith("Current Date: 2024-01-15")
    assert result.stable_prefix_hash == CacheAligner().align(tomorrow).stable_prefix_hash
    assert result.messages[1] == messages[1] and result.moved == ("2024-01-15",)


def test_api_reference_rolling_window(big_history: list[dict[str, Any]]) -> None:
    from headroom_core import RollingWindowConfig

    config = RollingWindowConfig(
        max_tokens=100000,
        preserve_system=True,
        preserve_recent_turns=5,
        drop_oldest_first=True,
    )
    messages = big_history

    from headroom_core import RollingWindow

    window = RollingWindow(config)
    result = window.apply(messages, max_tokens=100000)

    assert tokens(result) <= 100_000 - config.output_buffer_tokens < tokens(messages)
    assert result[0] == messages[0] and result[-1] == messages[-1]
    assert result[1] == messages[1]  # the task is pinned like the system prompt
    # Tool outputs are cut before any turn is dropped: here into their lossless table form
    # (or, further, behind a ref); every question and answer is still there, unchanged.
    assert [m for m in result if m["role"] != "tool"] == [
        m for m in messages if m["role"] != "tool"
    ]
    originals = {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}
    for m in (m for m in result if m["role"] == "tool"):
        text = m["content"]
        assert decoded(text) == json.loads(originals[m["tool_call_id"]]) or re.search(
            r"ref\W+[0-9a-f]{32}", text
        )


def test_api_reference_intelligent_context_manager(
    big_history: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    messages = big_history

    from headroom_core import Tokenizer

    tokenizer = Tokenizer(model="gpt-4o")

    from headroom_core.config import IntelligentContextConfig
    from headroom_core.telemetry import get_toin
    from headroom_core.transforms import IntelligentContextManager

    # With TOIN integration for learned patterns
    toin = get_toin()
    config = IntelligentContextConfig(
        keep_system=True,
        keep_last_turns=2,
        use_importance_scoring=True,
    )

    manager = IntelligentContextManager(config, toin=toin)
    result = manager.apply(messages, tokenizer, model_limit=128000)

    # Access scoring details
    print(result.transforms_applied)  # ["intelligent_cap:3"]
    print(result.tokens_before, result.tokens_after)

    from headroom_core.toin import get_toin as toin_module_get_toin

    assert toin is toin_module_get_toin()  # headroom_core.telemetry is the toin module
    out = capsys.readouterr().out.splitlines()
    # outputs cut (intelligent_compress) before any unit is dropped (intelligent_cap)
    assert re.search(r"'intelligent_(?:cap|compress):[1-9]\d*'", out[0])
    assert out[1] == f"{tokens(messages)} {result.tokens_after}"
    assert result.tokens_after == tokens(result.messages) <= 128_000 - 4000


def test_api_reference_message_scorer() -> None:
    messages = [
        {"role": "system", "content": "You are an SRE assistant."},
        {"role": "user", "content": "Why did deploy dep-1027 fail?"},
        call(1, "search_logs"),
        result(1, {"deploy": "dep-1027", "error": "ImagePullBackOff on node-7"}),
        {"role": "assistant", "content": "dep-1027 failed: node-7 could not pull the image."},
        {"role": "user", "content": "Is node-7 healthy now?"},
    ]

    from headroom_core.config import ScoringWeights
    from headroom_core.transforms import MessageScore, MessageScorer

    scorer = MessageScorer(
        weights=ScoringWeights(),
        toin=None,  # Optional TOIN for learned patterns
        embedding_provider=None,  # Optional for semantic similarity
        recency_decay_rate=0.1,
    )

    # Score messages
    scores: list[MessageScore] = scorer.score_messages(
        messages=messages,
        protected_indices={0},  # System message
        tool_unit_indices={2, 3},  # Tool call + response
    )

    for score in scores:
        print(f"Message {score.message_index}: {score.total_score:.2f}")
        print(f"  Recency: {score.recency_score:.2f}")
        print(f"  TOIN: {score.toin_score:.2f}")
        print(f"  Protected: {score.is_protected}")

    assert [s.message_index for s in scores] == [0, 1, 2, 3, 4, 5]
    assert [s.is_protected for s in scores] == [True] + [False] * 5
    assert scores[2] == MessageScore(**{**_fields(scores[3]), "message_index": 2})  # one unit
    assert scores[2].unit_indices == (2, 3) and scores[2].error_score == 1.0
    # five units: recency exp(-0.1 * units after)
    assert [round(s.recency_score, 4) for s in scores] == [
        round(math.exp(-0.1 * age), 4) for age in (4, 3, 2, 2, 1, 0)
    ]
    assert all(s.toin_score == 0.0 for s in scores)  # no TOIN given
    assert all(0.0 <= s.total_score <= 1.0 for s in scores)
    assert scores[2].reference_score > 0  # node-7 / dep-1027 are mentioned later

    # a TOIN that saw this tool's cuts undone ranks its unit higher
    from headroom_core.toin import MemoryToin

    toin = MemoryToin()
    for _ in range(3):
        toin.record_compression("search_logs", "json")
        toin.record_retrieval("search_logs", "json", "error node", ["error"])
    learned = MessageScorer(weights=ScoringWeights(), toin=toin).score_messages(messages)
    assert learned[2].toin_score == learned[3].toin_score == toin.importance("search_logs") > 0
    assert learned[2].total_score > scores[2].total_score
    assert learned[1].toin_score == 0.0  # not a tool unit

    from headroom_core import ConfigError, InputError

    with pytest.raises(InputError, match=r"tool_unit_indices: messages \[1\]"):
        scorer.score_messages(messages, tool_unit_indices={1})

    class Axes:
        """Embeds a text as [mentions node-7, mentions anything else]: node-7 texts align."""

        def embed(self, texts: Any) -> list[list[float]]:
            return [[1.0, 0.0] if "node-7" in t else [0.0, 1.0] for t in texts]

    semantic = MessageScorer(embedding_provider=Axes()).score_messages(messages)
    assert [s.semantic_score for s in semantic] == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ConfigError, match="embedding_provider is another name for embedder"):
        MessageScorer(embedder=Axes(), embedding_provider=Axes())


def _fields(score: Any) -> dict[str, Any]:
    return {name: getattr(score, name) for name in score.__dataclass_fields__}


def test_message_scorer_ranks_as_the_context_manager_drops() -> None:
    """score_messages and the context manager share one scoring: where one of two same-size
    tool units must go, the manager drops the one score_messages ranks lower (here the
    newer one, since the older one reports an error). Outputs are cut before units are
    dropped; a floor as large as the outputs leaves only the drop."""
    from headroom_core import Tokenizer
    from headroom_core.config import CompactionConfig, IntelligentContextConfig, ScoringWeights
    from headroom_core.transforms import IntelligentContextManager, MessageScorer

    messages = [
        {"role": "system", "content": "You are an SRE assistant."},
        {"role": "user", "content": "Check the eu-west-1 batches."},
        call(1),
        result(1, rows(120, error_at=60)),
        call(2),
        result(2, rows(120, start=1000)),
        {"role": "user", "content": "Summarise."},
    ]
    scores = MessageScorer(weights=ScoringWeights()).score_messages(messages)
    assert scores[3].total_score > scores[5].total_score
    tok = Tokenizer(model="gpt-4o")
    unit = tok.count_message(messages[4]) + tok.count_message(messages[5])
    config = IntelligentContextConfig(keep_last_turns=1, keep_last_tool_units=0, cut_quantum=0.01)
    limit = tokens(messages) + config.output_buffer_tokens - unit // 2
    no_cuts = CompactionConfig(min_output_tokens=unit)
    fitted = IntelligentContextManager(config).fit(
        messages, tok, model_limit=limit, compaction=no_cuts
    )
    shown = [m for m in fitted.messages if m["role"] == "tool"]
    ids = [m["tool_call_id"] for m in shown if not m["content"].startswith("[headroom:")]
    assert ids == ["call_1"]  # call_2 went: its call stays, its result is the note


def test_api_reference_transform_pipeline() -> None:
    messages = agent_messages()

    from headroom_core import CacheAligner, RollingWindow, SmartCrusher, TransformPipeline

    pipeline = TransformPipeline(
        [
            SmartCrusher(),
            CacheAligner(),
            RollingWindow(),
        ]
    )

    result = pipeline.transform(messages)

    assert [t.split(":")[0] for t in result.transforms_applied] == [
        "smart_crusher",
        "cache_aligner",
    ]
    assert result.tokens_after == tokens(result.messages) < result.tokens_before / 3
    assert result.messages[1] == messages[1] and result.failures == ()


# == API reference: utilities ===============================================================


def test_api_reference_tokenizer() -> None:
    messages = agent_messages()

    from headroom_core import Tokenizer, count_tokens_messages, count_tokens_text

    # Quick counting
    tokens = count_tokens_text("Hello, world!", model="gpt-4o")

    assert tokens == 4

    # With tokenizer instance
    tokenizer = Tokenizer(model="gpt-4o")
    tokens = tokenizer.count_text("Hello")

    assert tokens == 1

    tokens = tokenizer.count_messages(messages)

    assert tokens == count_tokens_messages(messages, model="gpt-4o")
    framing = 3 * len(messages) + 3  # per message, and the reply's priming
    assert tokens > framing + sum(count_tokens_text(m["content"] or "") for m in messages)


def test_api_reference_generate_report(env: ProviderServer, tmp_path: Path) -> None:
    from headroom_core import generate_report

    report = generate_report(
        store_url="sqlite:///headroom.db",
        format="html",
        period="day",
    )

    # no store yet: an empty report that says so, and no file created
    assert report.lstrip().lower().startswith("<!doctype html>")
    assert "sqlite:///headroom.db (no such file yet: nothing recorded)" in report
    assert "There are no requests in this store." in report
    assert not (tmp_path / "headroom.db").exists()

    from openai import OpenAI

    from headroom_integrations import HeadroomClient

    client = HeadroomClient(OpenAI(), store_url="sqlite:///headroom.db")
    client.chat.completions.create(model="gpt-4o", messages=agent_messages())
    client.close()
    report = generate_report(
        store_url="sqlite:///headroom.db",
        format="html",
        period="day",
    )
    assert "There are no requests in this store." not in report
    assert re.search(r"<title>Headroom report: 1 request,", report)


# == README =================================================================================


def test_readme_quick_start_and_audit_mode(
    env: ProviderServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from openai import OpenAI

    from headroom_integrations import HeadroomClient

    # Wrap any OpenAI-compatible client
    base = OpenAI(api_key="...")
    client = HeadroomClient(
        original_client=base,
        store_url="sqlite:///headroom.db",
        default_mode="audit",  # Start in observation mode
    )

    # Use exactly like the original client
    response = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello!"},
        ],
    )
    print(response.choices[0].message.content)

    assert capsys.readouterr().out == "echo: 2 messages, last user: Hello!\n"

    client = HeadroomClient(
        original_client=base,
        default_mode="audit",
    )

    # Logs metrics to SQLite but doesn't modify requests
    messages = agent_messages()
    response = client.chat.completions.create(model="gpt-4o", messages=messages)

    assert sent_messages(env) == messages  # unchanged
    record = client.get_metrics(limit=1)[0]
    assert record.mode == "audit" and record.tokens_input_before == tokens(messages)
    assert record.waste_signals["json_bloat_tokens"] > 0
    assert (tmp_path / "headroom.db").is_file()  # the default store


def test_readme_optimize_and_simulate_modes(
    env: ProviderServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from openai import OpenAI

    from headroom_integrations import HeadroomClient

    base = OpenAI(api_key="...")
    client = HeadroomClient(original_client=base, store_url="sqlite:///headroom.db")
    messages = agent_messages()

    response = client.chat.completions.create(
        model="gpt-4o",
        messages=messages,
        headroom_mode="optimize",  # Enable optimization
    )

    assert response.choices[0].message.content.startswith("echo: 4 messages")
    assert tokens(sent_messages(env)) < tokens(messages) / 3

    plan = client.chat.completions.simulate(
        model="gpt-4o",
        messages=messages,
    )

    print(f"Tokens before: {plan.tokens_before}")
    print(f"Tokens after: {plan.tokens_after}")
    print(f"Tokens saved: {plan.tokens_saved}")
    print(f"Transforms: {plan.transforms}")
    print(f"Estimated savings: {plan.estimated_savings}")

    out = capsys.readouterr().out.splitlines()
    assert out[2] == f"Tokens saved: {plan.tokens_before - plan.tokens_after}"
    assert out[3] == f"Transforms: {plan.transforms_applied}"
    saving = plan.tokens_saved * 2.50 / 1_000_000  # gpt-4o's input price
    assert plan.estimated_cost_saving is not None
    assert math.isclose(plan.estimated_cost_saving, saving)
    assert out[4] == f"Estimated savings: ${saving:.4f} per request"


def test_readme_headroom_parameters(env: ProviderServer) -> None:
    from openai import OpenAI

    from headroom_integrations import HeadroomClient

    base = OpenAI(api_key="...")
    client = HeadroomClient(original_client=base, store_url="sqlite:///headroom.db")
    messages = [
        {"role": "user", "content": "Find the slow requests."},
        call(1, "search"),
        result(1, rows(300)),
    ]

    response = client.chat.completions.create(
        model="gpt-4o",
        messages=messages,
        # Headroom-specific parameters
        headroom_mode="optimize",  # "audit" | "optimize"
        headroom_output_buffer_tokens=4000,  # Reserve for output
        headroom_keep_turns=2,  # Never drop last N turns
        headroom_tool_profiles={  # Per-tool compression
            "search": {"max_array_items": 5},
        },
        # All other OpenAI parameters work normally
        temperature=0.7,
        max_tokens=1000,
    )

    assert response.choices[0].message.content.startswith("echo: 3 messages")
    body = env.last_body
    assert body["temperature"] == 0.7 and body["max_tokens"] == 1000
    assert not [k for k in body if k.startswith("headroom")]
    kept = decoded(body["messages"][2]["content"])
    assert len([r for r in kept if "__headroom_truncated" not in r]) <= 5

    from headroom_core import ConfigError

    with pytest.raises(ConfigError, match="headroom_keep_turn"):
        client.chat.completions.create(model="gpt-4o", messages=messages, headroom_keep_turn=2)


def test_readme_model_context_limits(env: ProviderServer) -> None:
    from openai import OpenAI

    from headroom_integrations import HeadroomClient

    base = OpenAI(api_key="...")
    client = HeadroomClient(
        original_client=base,
        model_context_limits={
            "gpt-4o": 128000,
            "my-custom-model": 32000,
        },
    )

    history = long_history(6, 120)
    assert tokens(history) > 32000
    client.chat.completions.create(model="my-custom-model", messages=history)
    client.chat.completions.create(
        model="my-custom-model", messages=history, headroom_mode="optimize"
    )
    # the window is 32000 (less the 4000 reserved for the reply), counted conservatively
    from headroom_core import count_tokens_messages

    assert count_tokens_messages(sent_messages(env), model="my-custom-model") <= 28000


def test_readme_streaming(env: ProviderServer, capsys: pytest.CaptureFixture[str]) -> None:
    from openai import OpenAI

    from headroom_integrations import HeadroomClient

    client = HeadroomClient(original_client=OpenAI(api_key="..."))
    messages = agent_messages()

    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=messages,
        stream=True,
        headroom_mode="optimize",
    )

    for chunk in stream:
        print(chunk.choices[0].delta.content, end="")

    # the last chunk carries the finish reason and no content: Python prints None for it
    expected = reply_text({"messages": messages})
    assert capsys.readouterr().out == expected + "None"
    assert env.last_body["stream"] is True
    assert tokens(sent_messages(env)) < tokens(messages) / 3
    (record,) = client.get_metrics()
    assert record.stream and record.mode == "optimize"


def test_readme_storage_options(env: ProviderServer, tmp_path: Path) -> None:
    from openai import OpenAI

    from headroom_integrations import HeadroomClient

    base = OpenAI(api_key="...")

    client = HeadroomClient(
        original_client=base,
        store_url="sqlite:///headroom.db",
    )

    client.chat.completions.create(model="gpt-4o", messages=agent_messages())
    assert (tmp_path / "headroom.db").is_file() and len(client.get_metrics()) == 1

    client = HeadroomClient(
        original_client=base,
        store_url="jsonl:///var/log/headroom.jsonl",
    )

    client.chat.completions.create(model="gpt-4o", messages=agent_messages())
    # Store URLs count slashes as SQLAlchemy does: three, a path relative to the working
    # directory (here the test's); an absolute path takes four (jsonl:////var/log/...).
    lines = (tmp_path / "var/log/headroom.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["model"] == "gpt-4o"


def test_readme_metrics(env: ProviderServer, capsys: pytest.CaptureFixture[str]) -> None:
    from openai import OpenAI

    from headroom_integrations import HeadroomClient

    client = HeadroomClient(original_client=OpenAI(api_key="..."), default_mode="optimize")
    messages = agent_messages()
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o", messages=messages)

    # Get recent metrics
    metrics = client.get_metrics(limit=100)

    # Get summary stats
    summary = client.get_summary()
    print(f"Total tokens saved: {summary['total_tokens_saved']}")

    saved = sum(m.tokens_input_before - m.tokens_input_after for m in metrics)
    assert len(metrics) == 3 and saved > 0
    assert capsys.readouterr().out == f"Total tokens saved: {saved}\n"
    assert summary["requests"] == 3 and dict(summary)["total_tokens_saved"] == saved


def test_readme_reporting(env: ProviderServer, tmp_path: Path) -> None:
    from headroom_core import generate_report

    generate_report(
        store_url="sqlite:///headroom.db",
        output_path="report.html",
    )

    first = (tmp_path / "report.html").read_text("utf-8")
    assert "There are no requests in this store." in first  # nothing recorded yet

    from openai import OpenAI

    from headroom_integrations import HeadroomClient

    client = HeadroomClient(original_client=OpenAI(api_key="..."))
    client.chat.completions.create(model="gpt-4o", messages=agent_messages())
    client.close()

    generate_report(
        store_url="sqlite:///headroom.db",
        output_path="report.html",
    )

    report = (tmp_path / "report.html").read_text("utf-8")
    assert re.search(r"<title>Headroom report: 1 request,", report)
    # the README's promises: waste by category, the top requests, cache alignment, advice
    for section in ("Waste by category", "high-waste requests", "Cache alignment", "Recommend"):
        assert section in report, section


# == OpenAI integration page ================================================================


def test_openai_page_headroom_client(env: ProviderServer) -> None:
    long_conversation = long_history(3, 200)

    from openai import OpenAI

    from headroom_core import OpenAIProvider
    from headroom_integrations import HeadroomClient

    client = HeadroomClient(OpenAI(), provider=OpenAIProvider())

    # Messages are compressed automatically before sending
    response = client.chat.completions.create(
        model="gpt-4o",
        messages=long_conversation,
    )

    # The page says "compressed automatically"; the API reference and README make audit the
    # default mode, which we follow: the request goes out as given, and the record holds
    # what optimize would have sent. default_mode="optimize" sends it compressed.
    assert response.choices[0].message.content.startswith("echo: 14 messages")
    assert sent_messages(env) == long_conversation
    (record,) = client.get_metrics()
    assert record.mode == "audit" and record.tokens_input_before == tokens(long_conversation)
    assert record.extra["projected_tokens_after"] < tokens(long_conversation) / 3

    client = HeadroomClient(OpenAI(), provider=OpenAIProvider(), default_mode="optimize")
    client.chat.completions.create(model="gpt-4o", messages=long_conversation)
    assert tokens(sent_messages(env)) < tokens(long_conversation) / 3


def test_openai_page_compress(env: ProviderServer, capsys: pytest.CaptureFixture[str]) -> None:
    large_tool_output = json.dumps(rows(300), indent=2)

    from openai import OpenAI

    from headroom_core import compress

    openai_client = OpenAI()

    messages = [{"role": "user", "content": large_tool_output}]
    compressed = compress(messages, model="gpt-4o")

    response = openai_client.chat.completions.create(
        model="gpt-4o",
        messages=compressed.messages,
    )

    print(f"Saved {compressed.tokens_saved} tokens")

    # User text is never changed (the README's first safety guarantee), so this one, pasted
    # as a user message, goes out as it is; the same output as a tool result is compressed.
    assert capsys.readouterr().out == "Saved 0 tokens\n"
    assert sent_messages(env) == messages and response.choices[0].message.content
    as_tool = compress(
        [{"role": "user", "content": "Which requests were slow?"}, call(1), result(1, rows(300))],
        model="gpt-4o",
    )
    assert as_tool.tokens_saved > as_tool.tokens_before * 2 / 3

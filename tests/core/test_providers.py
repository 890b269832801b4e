from __future__ import annotations

import pytest

from headroom_core import AnthropicProvider, ConfigError, OpenAIProvider, Tokenizer
from headroom_core.providers import DEFAULT_CONTEXT_LIMIT, lookup_model, provider_for_model


def test_context_limits_from_table_and_overrides() -> None:
    p = OpenAIProvider()
    assert p.get_context_limit("gpt-4o") == 128_000
    assert p.get_context_limit("gpt-4o-2024-08-06") == 128_000
    assert p.get_context_limit("gpt-4o-mini") == 128_000
    assert p.get_context_limit("gpt-4.1-mini") == 1_047_576
    assert p.get_context_limit("gpt-4") == 8192
    assert p.get_context_limit("never-heard-of-it") == DEFAULT_CONTEXT_LIMIT
    assert (
        OpenAIProvider(model_context_limits={"gpt-4o": 50_000}).get_context_limit("gpt-4o")
        == 50_000
    )
    assert AnthropicProvider().get_context_limit("claude-sonnet-4-5-20250929") == 200_000


def test_longest_prefix_wins() -> None:
    assert lookup_model("openai", "gpt-4o-mini-2024-07-18").name == "gpt-4o-mini"
    assert lookup_model("openai", "gpt-4-turbo-preview").name == "gpt-4-turbo"
    assert lookup_model("anthropic", "claude-opus-4-1-20250805").name == "claude-opus-4-1"
    assert lookup_model("openai", "claude-3-haiku") is None


def test_estimate_cost_uses_list_prices() -> None:
    p = OpenAIProvider()
    assert p.estimate_cost(
        input_tokens=1_000_000, output_tokens=0, model="gpt-4o"
    ) == pytest.approx(2.50)
    assert p.estimate_cost(
        input_tokens=2000, output_tokens=1000, model="gpt-4o-mini"
    ) == pytest.approx((2000 * 0.15 + 1000 * 0.60) / 1e6)
    # cached prompt tokens are billed at the cached price
    assert p.estimate_cost(input_tokens=1000, model="gpt-4o", cached_tokens=400) == pytest.approx(
        (600 * 2.50 + 400 * 1.25) / 1e6
    )
    assert AnthropicProvider().estimate_cost(
        input_tokens=1000, output_tokens=100, model="claude-haiku-4-5"
    ) == pytest.approx((1000 * 1.0 + 100 * 5.0) / 1e6)
    assert p.estimate_cost(input_tokens=10, model="mystery") is None


def test_token_counters() -> None:
    assert OpenAIProvider().get_token_counter("gpt-4o").is_exact
    counter = AnthropicProvider().get_token_counter("claude-haiku-4-5")
    assert isinstance(counter, Tokenizer) and not counter.is_exact
    msgs = [{"role": "user", "content": "hello there"}]
    assert OpenAIProvider().count_messages(msgs, model="gpt-4o") == Tokenizer(
        "gpt-4o"
    ).count_messages(msgs)


def test_provider_for_model_and_bad_limits() -> None:
    assert isinstance(provider_for_model("claude-3-opus"), AnthropicProvider)
    assert isinstance(provider_for_model("gpt-5"), OpenAIProvider)
    with pytest.raises(ConfigError, match=r"model_context_limits\['gpt-4o'\]"):
        OpenAIProvider(model_context_limits={"gpt-4o": 0})

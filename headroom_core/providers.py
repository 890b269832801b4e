"""Per-provider facts: token counters, context windows and prices.

The model table ships with the package (``data/models.json``); a model is found
by the longest table key that prefixes its name (``gpt-4o-2024-08-06`` ->
``gpt-4o``). ``model_context_limits`` overrides windows per exact name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .errors import ConfigError
from .messages import to_anthropic
from .tokens import Tokenizer, get_tokenizer

DEFAULT_CONTEXT_LIMIT = 128_000


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    context: int
    input_per_million: float | None
    output_per_million: float | None
    cached_input_per_million: float | None


@cache
def _table() -> dict[str, dict[str, dict[str, Any]]]:
    raw = resources.files("headroom_core").joinpath("data/models.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(raw)
    return {k: v for k, v in data.items() if not k.startswith("_")}


def lookup_model(provider: str, model: str) -> ModelInfo | None:
    """Table entry for ``model`` (longest-prefix match), or None when unknown."""
    entries = _table().get(provider, {})
    name = model.split("/", 1)[-1].lower()
    keys = [k for k in entries if name.startswith(k)]
    if not keys:
        return None
    key = max(keys, key=len)
    e = entries[key]
    return ModelInfo(key, int(e["context"]), e.get("input"), e.get("output"), e.get("cached_input"))


class _Provider:
    name = ""
    #: What writing a token to the prompt cache costs, as a multiple of the input price.
    cache_write_multiplier = 1.0

    def __init__(self, *, model_context_limits: Mapping[str, int] | None = None) -> None:
        limits = dict(model_context_limits or {})
        for model, limit in limits.items():
            if not isinstance(limit, int) or limit <= 0:
                raise ConfigError(f"model_context_limits[{model!r}] must be a positive int")
        self.model_context_limits = limits

    def get_token_counter(self, model: str) -> Tokenizer:
        return get_tokenizer(model)

    def get_context_limit(self, model: str) -> int:
        if model in self.model_context_limits:
            return self.model_context_limits[model]
        info = lookup_model(self.name, model)
        return info.context if info else DEFAULT_CONTEXT_LIMIT

    def estimate_cost(
        self, *, input_tokens: int, output_tokens: int = 0, model: str, cached_tokens: int = 0
    ) -> float | None:
        """USD at list price, or None for a model the table does not know."""
        info = lookup_model(self.name, model)
        if info is None or info.input_per_million is None:
            return None
        cached = min(max(cached_tokens, 0), input_tokens)
        cached_price = info.cached_input_per_million
        if cached_price is None:
            cached_price = info.input_per_million
        cost = (input_tokens - cached) * info.input_per_million + cached * cached_price
        cost += output_tokens * (info.output_per_million or 0.0)
        return cost / 1_000_000

    def count_messages(self, messages: Sequence[Mapping[str, Any]], *, model: str) -> int:
        return self.get_token_counter(model).count_messages(messages)


class OpenAIProvider(_Provider):
    """OpenAI models: exact tiktoken counts."""

    name = "openai"


class AnthropicProvider(_Provider):
    """Claude models. Local counts are an approximation (see :mod:`headroom_core.tokens`);
    with ``client=anthropic.Anthropic(...)``, :meth:`count_messages` and the
    ``count_messages`` of :meth:`get_token_counter`'s counter ask the API's token-counting
    endpoint instead."""

    name = "anthropic"
    # Anthropic bills 5-minute cache writes at 1.25x the input price (its pricing page).
    cache_write_multiplier = 1.25

    def __init__(
        self, client: Any = None, *, model_context_limits: Mapping[str, int] | None = None
    ) -> None:
        super().__init__(model_context_limits=model_context_limits)
        self.client = client

    def get_token_counter(self, model: str) -> Tokenizer:
        """The local counter; with a client, one whose ``count_messages`` asks the API."""
        if self.client is None:
            return super().get_token_counter(model)
        return APITokenCounter(self, model)

    def count_messages(self, messages: Sequence[Mapping[str, Any]], *, model: str) -> int:
        if self.client is None:
            return super().count_messages(messages, model=model)
        body = to_anthropic(messages)
        kwargs: dict[str, Any] = {"model": model, "messages": body["messages"]}
        if "system" in body:
            kwargs["system"] = body["system"]
        result = self.client.messages.count_tokens(**kwargs)
        return int(result.input_tokens)


class APITokenCounter(Tokenizer):
    """A :class:`~headroom_core.tokens.Tokenizer` for a Claude model whose
    ``count_messages`` is the API's exact count (one ``messages.count_tokens`` call, SDK
    errors raised as the SDK raises them); ``count_text`` / ``count_message`` stay the local
    approximation, since the API counts whole requests only."""

    def __init__(self, provider: AnthropicProvider, model: str) -> None:
        super().__init__(model)
        self.provider = provider

    def count_messages(self, messages: Iterable[Mapping[str, Any]]) -> int:
        return self.provider.count_messages(list(messages), model=self.model)


_PROVIDERS: dict[str, type[_Provider]] = {"openai": OpenAIProvider, "anthropic": AnthropicProvider}


def provider_for_model(model: str) -> _Provider:
    """The provider a model name belongs to (Claude -> Anthropic, else OpenAI)."""
    name = "anthropic" if "claude" in model.lower() else "openai"
    return _PROVIDERS[name]()


def estimate_cost(*, input_tokens: int, output_tokens: int = 0, model: str) -> float | None:
    return provider_for_model(model).estimate_cost(
        input_tokens=input_tokens, output_tokens=output_tokens, model=model
    )


__all__ = [
    "APITokenCounter",
    "AnthropicProvider",
    "ModelInfo",
    "OpenAIProvider",
    "estimate_cost",
    "lookup_model",
    "provider_for_model",
]

"""Reading the optional keys of ``RequestMetrics.extra`` and the model table, defensively.

Records from the provider-client wrapper carry ``prefix_hash``, ``preview``, ``failures``
and the like in ``extra``; records from other sources lack them. Every reader here returns
None (or an empty value) for a missing key or a value of the wrong type, never raises.
"""

from __future__ import annotations

from functools import lru_cache

from headroom_core.metrics import RequestMetrics
from headroom_core.metrics._fields import (
    WASTE_CATEGORIES,
    extra_int,
    extra_str,
    extra_strs,
    projected_saved,
    sent_tokens,
    waste_tokens,
)
from headroom_core.providers import ModelInfo, lookup_model, provider_for_model

__all__ = [
    "WASTE_CATEGORIES",
    "extra_int",
    "extra_str",
    "extra_strs",
    "input_price",
    "model_info",
    "price_for",
    "projected_saved",
    "sent_tokens",
    "waste_tokens",
    "window_for",
]


@lru_cache(maxsize=256)
def _lookup(provider: str, model: str) -> ModelInfo | None:
    name = provider if provider in ("openai", "anthropic") else provider_for_model(model).name
    return lookup_model(name, model)


def model_info(m: RequestMetrics) -> ModelInfo | None:
    """The model table's entry for the record's model (provider guessed when not recorded)."""
    return _lookup(m.provider, m.model)


def input_price(m: RequestMetrics) -> float | None:
    """List price in USD per input token for the record's model, or None when unknown."""
    info = model_info(m)
    if info is None or info.input_per_million is None:
        return None
    return info.input_per_million / 1_000_000


def window_for(provider: str, model: str) -> int | None:
    """The model's context window in tokens, or None when unknown."""
    info = _lookup(provider, model)
    return None if info is None else info.context


def price_for(provider: str, model: str) -> float | None:
    """List price in USD per input token of (provider, model), or None when unknown."""
    info = _lookup(provider, model)
    if info is None or info.input_per_million is None:
        return None
    return info.input_per_million / 1_000_000

"""The input bill of a series of requests under prompt caching.

A provider keeps the prompt prefix of each request in its cache; the next request pays the
cached rate for the leading part it repeats byte for byte and the write rate for the rest.
Rates are multipliers of the model's uncached input price:

* Anthropic: a cached prefix is read at 0.1x; everything else is written to the cache at
  1.25x (5-minute cache writes).
* OpenAI: a cached prefix is read at 0.5x (gpt-4o; the model table has each model's
  rate); everything else costs 1.0x.

Both cache a prefix only from 1,024 tokens on. Here the cached prefix of a request is the
run of leading messages equal to the previous request's (whole messages: a provider's
cache is read up to a cache point, and a changed message moves every later token out of
it), counted with the request's own counter; below ``min_prefix_tokens`` nothing is
cached. This is what :mod:`headroom_core.transforms` compaction decisions are priced with,
and what ``tests/benchmarks/bench_sessions.py`` reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .providers import lookup_model, provider_for_model
from .tokens import REPLY_PRIMING, Tokenizer, get_tokenizer

MIN_CACHED_PREFIX = 1024


@dataclass(frozen=True, slots=True)
class CacheRates:
    """Input-price multipliers under prompt caching (1.0 = the uncached input price)."""

    name: str
    cached: float  # a token of the cached prefix
    write: float  # every other input token
    min_prefix_tokens: int = MIN_CACHED_PREFIX


ANTHROPIC_RATES = CacheRates("anthropic", cached=0.1, write=1.25)
OPENAI_RATES = CacheRates("openai", cached=0.5, write=1.0)


def rates_for_model(model: str) -> CacheRates:
    """The model table's cached / uncached price ratio and the provider's write multiplier
    (Anthropic 1.25, OpenAI 1.0). A model without a cached price caches nothing (1.0)."""
    provider = provider_for_model(model)
    info = lookup_model(provider.name, model)
    write = provider.cache_write_multiplier
    if info is None or not info.input_per_million:
        base = ANTHROPIC_RATES if provider.name == "anthropic" else OPENAI_RATES
        return CacheRates(provider.name, base.cached, write)
    cached = info.cached_input_per_million
    ratio = 1.0 if cached is None else cached / info.input_per_million
    return CacheRates(provider.name, ratio, write)


def cached_prefix_tokens(
    previous: Sequence[Mapping[str, Any]] | None,
    current: Sequence[Mapping[str, Any]],
    tokenizer: Tokenizer,
    min_prefix_tokens: int = MIN_CACHED_PREFIX,
) -> int:
    """Tokens of the leading messages of ``current`` equal to ``previous``'s (0 below
    ``min_prefix_tokens``, or with no previous request)."""
    if not previous:
        return 0
    tokens = 0
    for old, new in zip(previous, current, strict=False):
        if old != new:
            break
        tokens += tokenizer.count_message(new)
    return tokens if tokens >= min_prefix_tokens else 0


@dataclass(frozen=True, slots=True)
class RequestBill:
    tokens: int  # the whole request, reply priming included
    cached: int  # of which read from the cache

    def cost(self, rates: CacheRates) -> float:
        """In units of one uncached input token."""
        return self.cached * rates.cached + (self.tokens - self.cached) * rates.write


@dataclass(frozen=True, slots=True)
class SessionBill:
    """One series of requests: what was sent, what the cache held, what it costs."""

    requests: tuple[RequestBill, ...]

    @property
    def tokens_sent(self) -> int:
        return sum(r.tokens for r in self.requests)

    @property
    def last_tokens(self) -> int:
        return self.requests[-1].tokens if self.requests else 0

    def cost(self, rates: CacheRates) -> float:
        return sum(r.cost(rates) for r in self.requests)


def session_bill(
    requests: Sequence[Sequence[Mapping[str, Any]]],
    *,
    model: str = "gpt-4o",
    tokenizer: Tokenizer | None = None,
    min_prefix_tokens: int = MIN_CACHED_PREFIX,
) -> SessionBill:
    """The bill of ``requests`` sent in order, each reading the previous one's cache."""
    tok = tokenizer or get_tokenizer(model)
    out: list[RequestBill] = []
    previous: Sequence[Mapping[str, Any]] | None = None
    for request in requests:
        tokens = sum(tok.count_message(m) for m in request) + REPLY_PRIMING
        cached = cached_prefix_tokens(previous, request, tok, min_prefix_tokens)
        out.append(RequestBill(tokens, cached))
        previous = request
    return SessionBill(tuple(out))


__all__ = [
    "ANTHROPIC_RATES",
    "OPENAI_RATES",
    "CacheRates",
    "RequestBill",
    "SessionBill",
    "cached_prefix_tokens",
    "rates_for_model",
    "session_bill",
]

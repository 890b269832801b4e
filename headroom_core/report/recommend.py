"""Recommendations drawn from the report's numbers; each states the numbers behind it.

A rule fires only when the data supports it; when none fires the report says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from headroom_core.metrics._aggregates import AuditRow

from ._format import count, num, pct, share, usd

if TYPE_CHECKING:
    from .cache import CacheAnalysis

from ._model import NearLimit, Overview, Recommendation, WasteHistogram

__all__ = ["Recommendation", "recommend"]

#: The dominant waste category is worth a recommendation from this share of input tokens.
MIN_WASTE_PERCENT = 2.0
#: Provider caching is "low" below this share of input tokens served from cache.
LOW_CACHE_SHARE = 0.5
#: Providers cache prompts from about this many prefix tokens (OpenAI: 1,024).
MIN_CACHEABLE_PREFIX = 1024
#: A prefix is "stable" when at most this share of consecutive requests changed it.
STABLE_CHANGE_RATE = 0.2

_WASTE_HANDLERS = {
    "json_bloat_tokens": (
        "mode='optimize' runs JSONCompactor (lossless compact JSON) and SmartCrusher "
        "(reversible cuts of long arrays) on JSON tool outputs."
    ),
    "html_noise_tokens": (
        "no Headroom transform strips HTML: convert pages to text in the tool that fetches "
        "them, before the result reaches the model."
    ),
    "whitespace_tokens": (
        "CacheAligner normalises whitespace in system prompts (mode='optimize'); trim "
        "padded or column-aligned text in tool outputs at the source."
    ),
    "dynamic_date_tokens": (
        "CacheAligner (mode='optimize') moves dates, times and ids out of the stable prefix, "
        "so they stop breaking the provider's prompt cache."
    ),
    "repetition_tokens": (
        "mode='optimize' collapses repeated log lines (log compressor); avoid re-calling a "
        "tool whose output is already in the history."
    ),
}


def _switch_to_optimize(audit: AuditRow) -> Recommendation | None:
    if not audit.requests:
        return None
    saved, before, priced = audit.projected_saved, audit.tokens_before, audit.priced_saving
    money = f"about {usd(priced)} of input at list price" if priced is not None else "price unknown"
    return Recommendation(
        "switch_to_optimize",
        "Switch audit traffic to mode='optimize'",
        f"{count(audit.requests, 'audit request')} would have sent {num(saved)} fewer input tokens "
        f"({pct(100.0 * saved / before if before else 0.0)} of {num(before)}) with "
        f"mode='optimize': {money}.",
    )


def _enable_aligner(cache: CacheAnalysis) -> Recommendation | None:
    removable = cache.removable_changes
    if removable <= 0:
        return None
    return Recommendation(
        "enable_cache_aligner",
        "Enable CacheAligner (mode='optimize') to keep prompt prefixes stable",
        f"{num(removable)} of {count(cache.raw_changes, 'prefix change')} across "
        f"{count(cache.requests, 'request')} came from dynamic values ({num(cache.dynamic_values)} "
        f"dates/ids found); aligned, {num(cache.aligned_changes)} remain and about "
        f"{num(cache.avoidable_tokens)} prefix tokens would stay cacheable.",
    )


def _dominant_waste(waste: WasteHistogram) -> Recommendation | None:
    bar = max(waste.bars, key=lambda b: b.tokens, default=None)
    if bar is None or bar.tokens <= 0 or bar.percent < MIN_WASTE_PERCENT:
        return None
    handler = _WASTE_HANDLERS.get(bar.category, "look at where these tokens come from.")
    return Recommendation(
        f"waste_{bar.category.removesuffix('_tokens')}",
        f"Biggest waste: {bar.label}",
        f"{num(bar.tokens)} tokens ({pct(bar.percent)} of input tokens in "
        f"{count(waste.measured_requests, 'measured request')}); {handler}",
    )


def _provider_caching(cache: CacheAnalysis) -> Recommendation | None:
    hits = [
        g
        for g in cache.groups
        if g.requests >= 3
        and g.raw_changes <= STABLE_CHANGE_RATE * (g.requests - 1)
        and g.cached_share is not None
        and g.cached_share < LOW_CACHE_SHARE
        and (g.prefix_tokens_mean or 0) >= MIN_CACHEABLE_PREFIX
    ]
    if not hits:
        return None
    names = "; ".join(
        f"{g.model} via {g.source or 'unknown'}: prefix changed {count(g.raw_changes, 'time')} in "
        f"{count(g.requests, 'request')}, {share(g.cached_share)} of input cached"
        for g in hits[:3]
    )
    return Recommendation(
        "provider_prompt_caching",
        "Use the provider's prompt caching",
        f"Stable prefixes (~{num(max(g.prefix_tokens_mean or 0 for g in hits))} tokens) but "
        f"little cached input ({names}). OpenAI: pass a prompt_cache_key per conversation; "
        "Anthropic: add cache_control breakpoints after the stable prefix.",
    )


def _context_limit(near: NearLimit) -> Recommendation | None:
    if near.requests <= 0:
        return None
    models = ", ".join(f"{name} ({num(n)}, window {num(ctx)})" for name, n, ctx in near.models)
    return Recommendation(
        "context_limit",
        "Requests near their context limit",
        f"{count(near.requests, 'request')} used at least {share(near.threshold, 0)} of their "
        f"model's context window (input as sent plus output; up to {pct(near.max_percent)}): "
        f"{models}. Keep an output buffer (RollingWindowConfig.output_buffer_tokens) and let "
        "RollingWindow or IntelligentContext drop old turns in mode='optimize'.",
    )


def _listed(kind: str, items: Sequence[tuple[str, int]]) -> str:
    shown = "; ".join(f"{text} (x{num(n)})" for text, n in items[:5])
    more = f"; and {num(len(items) - 5)} more {kind}" if len(items) > 5 else ""
    return shown + more


def recommend(
    audit: AuditRow,
    overview: Overview,
    waste: WasteHistogram,
    cache: CacheAnalysis,
    near: NearLimit,
    failures: Sequence[tuple[str, int]],
    errors: Sequence[tuple[str, int]],
) -> tuple[tuple[Recommendation, ...], str]:
    """The recommendations that the data supports, and the reason when there are none."""
    found = [
        _switch_to_optimize(audit),
        _enable_aligner(cache),
        _dominant_waste(waste),
        _provider_caching(cache),
        _context_limit(near),
    ]
    if failures:
        total = sum(n for _, n in failures)
        found.append(
            Recommendation(
                "transform_failures",
                "Headroom transforms failed (requests passed through unchanged)",
                f"{count(total, 'failure')}: {_listed('kinds', failures)}.",
            )
        )
    if errors:
        found.append(
            Recommendation(
                "provider_errors",
                "Provider errors",
                f"{num(overview.errors)} of {count(overview.requests, 'request')} returned a "
                f"provider error: {_listed('messages', errors)}.",
            )
        )
    recs = tuple(r for r in found if r is not None)
    if recs:
        return recs, ""
    if overview.requests == 0:
        return recs, "No recommendations: there are no requests to draw them from."
    return recs, (
        f"No recommendations: {count(overview.requests, 'request')} with no projected audit "
        "savings, no prefix changes that alignment would remove, no waste category above "
        f"{pct(MIN_WASTE_PERCENT)} of input tokens, no context pressure, no transform "
        "failures and no provider errors."
    )

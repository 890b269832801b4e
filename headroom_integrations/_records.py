"""One ``RequestMetrics`` for one model call, priced the same way by every adapter.

Cost is the list price, cache-aware: the provider-reported cached tokens are billed at the
cached-input rate, before and after compression alike, so the saving is what compression
removed. Shared by the LangChain callback, the LlamaIndex event handler and the client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from headroom_core.metrics import RequestMetrics
from headroom_core.metrics.records import MODES
from headroom_core.providers import provider_for_model

ERROR_CHARS = 500


class _Pricing(Protocol):
    name: str

    def estimate_cost(
        self, *, input_tokens: int, output_tokens: int = 0, model: str, cached_tokens: int = 0
    ) -> float | None: ...


def priced_record(
    provider: _Pricing,
    *,
    model: str,
    mode: str,
    tokens_before: int,
    tokens_after: int,
    tokens_output: int | None,
    cached_tokens: int | None,
    source: str,
    transforms: tuple[str, ...] = (),
    waste: Mapping[str, int] | None = None,
    stream: bool = False,
    error: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> RequestMetrics:
    """A fresh record (new id, now) with cost before and after at ``provider``'s prices."""

    def cost(tokens: int) -> float | None:
        return provider.estimate_cost(
            input_tokens=tokens,
            output_tokens=tokens_output or 0,
            model=model,
            cached_tokens=cached_tokens or 0,
        )

    return RequestMetrics.new(
        model=model,
        mode=mode,
        tokens_input_before=tokens_before,
        tokens_input_after=tokens_after,
        tokens_output=tokens_output,
        cached_tokens=cached_tokens,
        cost_before=cost(tokens_before),
        cost_after=cost(tokens_after),
        transforms_applied=transforms,
        waste_signals=waste,
        stream=stream,
        provider=provider.name,
        source=source,
        error=None if error is None else error[:ERROR_CHARS],
        extra=extra,
    )


@dataclass(frozen=True, slots=True)
class SeenCompression:
    """What an adapter's ``headroom_compression`` event said about the call it preceded."""

    tokens_saved: int
    transforms: tuple[str, ...]
    mode: str
    failures: tuple[str, ...]
    details: Mapping[str, Any]  # recorded as extra["event"]


@dataclass(frozen=True, slots=True)
class ReportedUsage:
    """Tokens the provider reported for a call, each None when absent."""

    output: int | None = None
    cached: int | None = None
    input: int | None = None


def observed_record(
    *,
    source: str,
    model: str,
    tokens_sent: int,
    handler_mode: str,
    event: SeenCompression | None,
    usage: ReportedUsage | None,
    count_output: Callable[[], int] | None,
    waste: Mapping[str, int] | None,
    stream: bool,
    error: str | None,
    extra: Mapping[str, Any],
) -> RequestMetrics:
    """The record a metrics observer (LangChain callback, LlamaIndex event handler) writes
    for one finished model call. ``tokens_sent``: what the model received, counted exactly;
    the compression event's saving carries over (the model may receive more than the
    adapter compressed, a system prompt added later), not its totals. ``count_output``
    counts the reply when the provider reported no output tokens (None: leave it unknown)."""
    before, mode = tokens_sent, handler_mode
    transforms: tuple[str, ...] = ()
    extra = dict(extra)
    if event is not None:
        before = tokens_sent + max(0, event.tokens_saved)
        transforms = event.transforms
        mode = event.mode if event.mode in MODES else mode
        extra["event"] = dict(event.details)
        if event.failures:
            extra["failures"] = list(event.failures)
    output = cached = None
    if usage is not None:
        output, cached = usage.output, usage.cached
        if usage.input is not None:
            extra["usage_input_tokens"] = usage.input
        if output is not None:
            extra["tokens_output_source"] = "usage"
        elif count_output is not None:
            extra["tokens_output_source"] = "counted"
            output = count_output()
    return priced_record(
        provider_for_model(model),
        model=model,
        mode=mode,
        tokens_before=before,
        tokens_after=tokens_sent,
        tokens_output=output,
        cached_tokens=cached,
        source=source,
        transforms=transforms,
        waste=waste,
        stream=stream,
        error=error,
        extra=extra,
    )

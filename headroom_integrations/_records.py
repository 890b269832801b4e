"""One ``RequestMetrics`` for one model call, priced the same way by every adapter.

Cost is the list price, cache-aware: the provider-reported cached tokens are billed at the
cached-input rate, before and after compression alike, so the saving is what compression
removed. Shared by the LangChain callback, the LlamaIndex event handler and the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from headroom_core.metrics import RequestMetrics

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

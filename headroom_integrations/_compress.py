"""The compression step every message adapter runs (LangChain Runnable and chat-model
wrapper, LlamaIndex LLM wrapper): the framework's messages to the core's format,
``headroom_core.compress``, and back, inside the fail-open boundary.

Any failure leaves the framework's messages as they came (``messages is None``) and is
reported in ``failures``; a :class:`~headroom_core.errors.BudgetError` propagates (a hard
budget was asked for and cannot be met).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from headroom_core.boundary import fail_open
from headroom_core.config import HeadroomConfig, Mode
from headroom_core.messages import Message
from headroom_core.pipeline import compress

__all__ = ["AdapterCompression", "compress_framework_messages"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AdapterCompression(Generic[T]):
    """``messages``: the framework messages to send, or None to send the caller's own."""

    messages: T | None
    tokens_before: int
    tokens_after: int
    transforms_applied: tuple[str, ...]
    mode: str
    failures: tuple[str, ...]

    def report(self, model: str) -> dict[str, Any]:
        """The ``headroom_compression`` event data the adapters dispatch."""
        return {
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "tokens_saved": max(0, self.tokens_before - self.tokens_after),
            "transforms_applied": list(self.transforms_applied),
            "model": model,
            "mode": self.mode,
            "failures": list(self.failures),
        }


def compress_framework_messages(
    to_neutral: Callable[[], Sequence[Message]],
    from_neutral: Callable[[list[Message]], T],
    *,
    model: str,
    query: str | None,
    config: HeadroomConfig | None,
    mode: Mode,
    max_tokens: int | None,
) -> AdapterCompression[T]:
    """Compress what ``to_neutral()`` gives; ``from_neutral`` builds the messages to send
    (called only in optimize mode). Never raises but BudgetError."""
    failures: list[str] = []
    with fail_open("compression", failures) as outcome:
        result = compress(
            to_neutral(), model=model, query=query, config=config, mode=mode, max_tokens=max_tokens
        )
        out = from_neutral(result.messages) if result.mode == "optimize" else None
    if outcome.failed:
        return AdapterCompression(None, 0, 0, (), mode, tuple(failures))
    return AdapterCompression(
        out,
        result.tokens_before,
        result.tokens_after,
        result.transforms_applied,
        result.mode,
        result.failures,
    )

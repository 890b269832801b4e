"""The transform contract: what a transform is, what it may read, what a run returns.

A :class:`Transform` does one job on a message list and returns a new list (never mutating
its input; returning the input itself means "nothing to do"). The pipeline
(:class:`~headroom_core.pipeline.TransformPipeline`) runs transforms in order through the
fail-open boundary and undoes any that fails, grows the request beyond its declared
``grow_allowance`` or breaks tool pairing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import ConfigError
from ..tokens import get_tokenizer
from ._toolmsg import preceding_user_text

if TYPE_CHECKING:
    from ..config import HeadroomConfig
    from ..messages import Message
    from ..tokens import Tokenizer

__all__ = ["Transform", "TransformContext", "TransformResult", "direct_context"]


@dataclass(slots=True)
class TransformContext:
    """What a transform may read, and where it records what it did.

    ``max_tokens``: the window to fit (fitters subtract their output buffer); None: no
    fitting. ``failures``: per-item failures recorded through the fail-open boundary
    (one tool output that could not be handled), which end up in the result."""

    tokenizer: Tokenizer
    config: HeadroomConfig
    query: str | None = None
    model_limit: int | None = None
    applied: list[str] = field(default_factory=list)
    explicit_query: bool = False
    max_tokens: int | None = None
    failures: list[str] = field(default_factory=list)
    #: Messages before the ones transformed, sent unchanged (``compress(frozen_message_count=)``):
    #: read for relevance queries only, never rewritten.
    prefix: tuple[Message, ...] = ()
    #: The messages as the caller gave them (same length and order as the pipeline's input):
    #: what a fitter stores under the ref of an output it collapses or cuts.
    original: Sequence[Message] | None = None

    def record(self, label: str) -> None:
        self.applied.append(label)

    def query_for(self, messages: Sequence[Message], index: int) -> str | None:
        """The relevance query for the tool output at ``index``: the caller's explicit query,
        else the user turn that the tool call served (stable as the history grows)."""
        if self.explicit_query:
            return self.query
        found = preceding_user_text(list(messages), index)
        if found is None and self.prefix:
            found = preceding_user_text(list(self.prefix), len(self.prefix))
        return found


@runtime_checkable
class Transform(Protocol):
    """One job on a message list. Must not mutate its input; returns a new list.

    ``grow_allowance``: tokens the output may exceed the input by (the CacheAligner's
    dynamic block costs a few and buys a cache-stable prefix); 0 for every other transform.
    Subclass this protocol to inherit the default."""

    name: str
    grow_allowance: int = 0

    def apply(self, messages: list[Message], ctx: TransformContext) -> list[Message]: ...


@dataclass(frozen=True, slots=True)
class TransformResult:
    messages: list[Message]
    tokens_before: int
    tokens_after: int
    transforms_applied: tuple[str, ...]
    failures: tuple[str, ...] = ()

    @property
    def tokens_saved(self) -> int:
        return max(0, self.tokens_before - self.tokens_after)


def direct_context(
    who: str,
    *,
    max_tokens: int | None,
    tokenizer: Tokenizer | None = None,
    query: str | None = None,
) -> TransformContext:
    """The context for a transform called directly (outside a pipeline), as the reference
    API does: ``RollingWindow(config).apply(messages, max_tokens=100000)``."""
    from ..config import HeadroomConfig

    if max_tokens is None:
        raise ConfigError(f"{who}.apply: pass a TransformContext or max_tokens=<window>")
    return TransformContext(
        tokenizer=tokenizer or get_tokenizer(),
        config=HeadroomConfig(),
        query=query,
        model_limit=max_tokens,
        explicit_query=query is not None,
        max_tokens=max_tokens,
    )

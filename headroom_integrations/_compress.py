"""The compression step every message adapter runs (LangChain Runnable, chat-model wrapper
and agent middleware, LlamaIndex LLM wrapper): the framework's messages to the core's
format, ``headroom_core.compress``, and back, inside the fail-open boundary.

What every adapter gets from here, decided once:

- **Tool schemas count.** The definitions the model is bound with are part of every
  request: their tokens (canonical JSON, as the provider-client wrapper counts them) come
  off the window before fitting, and are in the event's ``tokens_before`` /
  ``tokens_after`` (``tools_tokens`` says how many).
- **The store of originals.** ``store`` (a store object) is where this call's lossy cuts
  keep their originals (:func:`headroom_core.ccr.use_store`), so the adapter's retrieve
  tool reads them back from the same place, across restarts when it is a file.
- **Never a turn lost for our reasons** (``on_budget="fit"``, the adapters' default). When
  the request cannot fit its window the core raises :class:`~headroom_core.errors.BudgetError`
  (the turns it protects, with the newest tool output, are over the window). The adapter
  then compresses without fitting, cuts every tool output over a quarter of the budget
  to its first lines with a note naming the ref of the whole output (:mod:`._cap`; the
  retrieve tool pages it back), and fits that: with the config's own settings, else with
  the hardest cut (the last user turn only, every tool unit droppable behind the
  fitter's note and its ref). If even that does not fit (the system prompt and the last
  user turn alone are over the window) it sends the compressed request unfitted, logs a
  warning and reports the failure; the provider, which owns the window, answers.
  ``on_budget="raise"`` lets BudgetError propagate instead (a chain that prefers to stop).
- Any other failure leaves the framework's messages as they came (``messages is None``)
  and is reported in ``failures``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from headroom_core.boundary import fail_open, failure_text
from headroom_core.ccr import RETRIEVE_MAX_TOKENS, RETRIEVE_TOOL_NAME, OriginalStore, use_store
from headroom_core.config import HeadroomConfig, Mode
from headroom_core.errors import BudgetError
from headroom_core.messages import Message
from headroom_core.pipeline import CompressResult, compress
from headroom_core.providers import provider_for_model
from headroom_core.tokens import count_tokens_messages, get_tokenizer

from ._cap import cap_tool_outputs
from ._client_core import tools_text

__all__ = [
    "BUDGET_POLICIES",
    "AdapterCompression",
    "BudgetPolicy",
    "compress_framework_messages",
    "compressors_only",
    "count_tools",
    "hardest_cut",
    "retrieve_cap",
    "window_for",
]

logger = logging.getLogger("headroom_integrations")

T = TypeVar("T")
BudgetPolicy = Literal["fit", "raise"]
BUDGET_POLICIES: tuple[BudgetPolicy, ...] = ("fit", "raise")

#: The retrieve tool's answers: a quarter of what the window leaves after the output
#: buffer, at most the core's default page (8,000), at least 500 tokens.
_RETRIEVE_SHARE = 4
_RETRIEVE_MIN = 500


@dataclass(frozen=True, slots=True)
class AdapterCompression(Generic[T]):
    """``messages``: the framework messages to send, or None to send the caller's own.

    ``fallback``: None; ``"capped"`` (fitted once oversize tool outputs were capped);
    ``"hardest_cut"`` (capped, then fitted only with the hardest cut); ``"over_budget"``
    (sent unfitted: nothing we may cut makes it fit)."""

    messages: T | None
    tokens_before: int
    tokens_after: int
    transforms_applied: tuple[str, ...]
    mode: str
    failures: tuple[str, ...]
    tools_tokens: int = 0
    fallback: str | None = None

    def report(self, model: str) -> dict[str, Any]:
        """The ``headroom_compression`` event data the adapters dispatch; token counts
        include the tool definitions (``tools_tokens`` of them)."""
        return {
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "tokens_saved": max(0, self.tokens_before - self.tokens_after),
            "transforms_applied": list(self.transforms_applied),
            "model": model,
            "mode": self.mode,
            "failures": list(self.failures),
            "tools_tokens": self.tools_tokens,
            "fallback": self.fallback,
        }


def count_tools(tools: Sequence[Any] | None, model: str) -> int:
    """Tokens the tool definitions add to a request (their canonical JSON, exact for the
    model's encoding); 0 for none. Dicts as the provider takes them (``{"type":
    "function", ...}``), or anything with ``model_dump()``."""
    if not tools:
        return 0
    plain = [t.model_dump() if hasattr(t, "model_dump") else t for t in tools]
    return get_tokenizer(model).count_text(tools_text(plain))


def window_for(model: str, config: HeadroomConfig | None, max_tokens: int | None) -> int:
    """The window a request is fitted to: ``max_tokens``, else the model's context limit
    (``config.model_context_limits`` first); ``RollingWindowConfig.max_tokens`` caps it when
    that fitter is in force, as in ``compress``."""
    config = config or HeadroomConfig()
    window = max_tokens
    if window is None:
        provider = provider_for_model(model).__class__(
            model_context_limits=config.model_context_limits
        )
        window = provider.get_context_limit(model)
    cap = config.rolling_window.max_tokens if config.fitter == "rolling_window" else None
    return window if cap is None else min(window, cap)


def _buffer(config: HeadroomConfig) -> int:
    if config.fitter == "intelligent_context":
        return config.intelligent_context.output_buffer_tokens
    if config.fitter == "rolling_window":
        return config.rolling_window.output_buffer_tokens
    return 0


def retrieve_cap(model: str, config: HeadroomConfig | None, max_tokens: int | None) -> int:
    """The most tokens one ``headroom_retrieve`` answer may take in this adapter's window."""
    config = config or HeadroomConfig()
    room = window_for(model, config, max_tokens) - _buffer(config)
    return max(_RETRIEVE_MIN, min(RETRIEVE_MAX_TOKENS, room // _RETRIEVE_SHARE))


def hardest_cut(config: HeadroomConfig) -> HeadroomConfig:
    """``config`` with the fitter keeping only what it must: the last user turn, and no
    tool unit protected (each may be dropped behind the note's ref)."""
    rolling = config.rolling_window.model_copy(
        update={"preserve_recent_turns": 1, "preserve_recent_tool_units": 0}
    )
    intelligent = config.intelligent_context.model_copy(
        update={"keep_last_turns": 1, "keep_last_tool_units": 0}
    )
    return config.model_copy(update={"rolling_window": rolling, "intelligent_context": intelligent})


def compressors_only(config: HeadroomConfig) -> HeadroomConfig:
    """``config`` with the compressors only: no alignment, no fitting (a tool result alone,
    compressed once as it arrives, e.g. into an agent's state or memory)."""
    off = {"enabled": False}
    return config.model_copy(
        update={
            "fitter": "none",
            "cache_aligner": config.cache_aligner.model_copy(update=off),
            "rolling_window": config.rolling_window.model_copy(update=off),
            "intelligent_context": config.intelligent_context.model_copy(update=off),
        }
    )


def _unfitted(config: HeadroomConfig) -> HeadroomConfig:
    return config.model_copy(update={"fitter": "none"})


def _fit_only(config: HeadroomConfig) -> HeadroomConfig:
    """``config`` with only its fitter on (the messages are compressed and aligned already)."""
    return config.model_copy(
        update={
            "cache_aligner": config.cache_aligner.model_copy(update={"enabled": False}),
            "smart_crusher": config.smart_crusher.model_copy(update={"enabled": False}),
        }
    )


def compress_framework_messages(
    to_neutral: Callable[[], Sequence[Message]],
    from_neutral: Callable[[list[Message]], T],
    *,
    model: str,
    query: str | None,
    config: HeadroomConfig | None,
    mode: Mode,
    max_tokens: int | None,
    tools_tokens: int = 0,
    store: OriginalStore | None = None,
    on_budget: BudgetPolicy = "fit",
) -> AdapterCompression[T]:
    """Compress what ``to_neutral()`` gives; ``from_neutral`` builds the messages to send
    (called only in optimize mode). ``tools_tokens`` come off the window. Never raises,
    but BudgetError with ``on_budget="raise"``."""
    failures: list[str] = []
    fallback: str | None = None
    job = _Job(model, query, config or HeadroomConfig(), mode, max_tokens, tools_tokens)
    scope: AbstractContextManager[Any] = use_store(store) if store is not None else nullcontext()
    with scope, fail_open("compression", failures) as outcome:
        messages = to_neutral()
        # Optimize: one compress() with the whole config (compaction points see the original
        # outputs, so their pointers' refs retrieve them); only when that cannot fit, the
        # request compressed unfitted is capped and fitted (the fallback).
        if mode != "optimize":
            result = job.run(messages, job.config)
        else:
            try:
                result = job.run(messages, job.config, fit=True)
            except BudgetError as error:
                if on_budget == "raise":
                    raise
                pre = job.run(messages, _unfitted(job.config))
                result, fallback = _fit_anyway(job, pre, job.budget_error(error), failures)
        out = from_neutral(result.messages) if result.mode == "optimize" else None
    if outcome.failed:
        return AdapterCompression(None, 0, 0, (), mode, tuple(failures), tools_tokens)
    return AdapterCompression(
        out,
        result.tokens_before + tools_tokens,
        result.tokens_after + tools_tokens,
        result.transforms_applied,
        result.mode,
        (*result.failures, *failures),
        tools_tokens,
        fallback,
    )


@dataclass(frozen=True, slots=True)
class _Job:
    """One adapter call's settings: how to run the core on its messages."""

    model: str
    query: str | None
    config: HeadroomConfig
    mode: Mode
    max_tokens: int | None
    tools_tokens: int

    @property
    def window(self) -> int:
        """What the messages may take: the window minus the tool definitions."""
        return max(0, window_for(self.model, self.config, self.max_tokens) - self.tools_tokens)

    def run(
        self, messages: Sequence[Message], settings: HeadroomConfig, *, fit: bool = False
    ) -> CompressResult:
        """``compress`` with ``settings``; ``fit``: into :attr:`window` when the caller set a
        window or tools take part of it (else the core's own default, the model's limit);
        not ``fit``: no window, so an unfitted pass never raises for one."""
        explicit = self.max_tokens is not None or self.tools_tokens > 0
        return compress(
            messages,
            model=self.model,
            query=self.query,
            config=settings,
            mode=self.mode,
            max_tokens=self.window if fit and explicit else None,
        )

    def budget_error(self, error: BudgetError) -> BudgetError:
        """``error``, or the plain reason when the tool definitions alone fill the window."""
        buffer = _buffer(self.config)
        if self.window > buffer:
            return error
        full = window_for(self.model, self.config, self.max_tokens)
        return BudgetError(
            f"the tool definitions ({self.tools_tokens} tokens) leave no room in the "
            f"{full}-token window ({buffer} output buffer)",
            protected_tokens=self.tools_tokens,
            budget_tokens=full - buffer,
        )


def _fit_anyway(
    job: _Job, pre: CompressResult, first: BudgetError, failures: list[str]
) -> tuple[CompressResult, str]:
    """What to send when the fitter raised on ``pre`` (the request compressed, unfitted):
    tool outputs capped, then fitted with the config's settings or the hardest cut; else
    compressed and capped, unfitted."""
    config = job.config
    cap = max(_RETRIEVE_MIN, (job.window - _buffer(config)) // _RETRIEVE_SHARE)
    keep = frozenset(config.smart_crusher.never_compress_tools) - {RETRIEVE_TOOL_NAME}
    count = get_tokenizer(job.model).count_text
    capped, cut = cap_tool_outputs(pre.messages, cap, count, skip_tools=keep)
    label = (f"tool_output_cap:{cut}",) if cut else ()
    for settings, fallback in ((config, "capped"), (hardest_cut(config), "hardest_cut")):
        try:
            fitted = job.run(capped, _fit_only(settings), fit=True)
        except BudgetError:
            continue
        return _joined(pre, fitted, label), fallback
    failures.append(failure_text("budget", first) + "; sent without fitting")
    logger.warning(
        "headroom: the request cannot fit its window even with the hardest cut (%s); "
        "sending it compressed but unfitted, the provider decides",
        first,
    )
    tokens = count_tokens_messages(capped, model=job.model)
    over = CompressResult(capped, pre.tokens_before, tokens, (), pre.mode)
    return _joined(pre, over, label), "over_budget"


def _joined(pre: CompressResult, then: CompressResult, label: tuple[str, ...]) -> CompressResult:
    """``pre`` (compression) followed by ``then`` (fitting of its capped output) as one."""
    return CompressResult(
        then.messages,
        pre.tokens_before,
        then.tokens_after,
        (*pre.transforms_applied, *label, *then.transforms_applied),
        pre.mode,
        failures=(*pre.failures, *then.failures),
    )

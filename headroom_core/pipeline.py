"""Transforms, the pipeline that runs them, and the two entry points.

``TransformPipeline.transform`` is the ONE fail-open boundary of the package:
a transform that raises leaves the messages exactly as they were before it,
and the failure is recorded in ``TransformResult.failures``. A transform whose
output has more tokens than its input, or that breaks tool pairing, is undone
the same way (a transform may declare a ``grow_allowance`` in tokens: the CacheAligner's
dynamic block costs a few and buys a cache-stable prefix). Only
:class:`~headroom_core.errors.BudgetError` goes through: a request that cannot fit its
budget is the caller's decision, never silent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .boundary import fail_open
from .config import HeadroomConfig, IntelligentContextConfig, Mode, RollingWindowConfig
from .errors import BudgetError, ConfigError
from .messages import Message, check_messages, content_text, pairing_is_valid
from .providers import estimate_cost, provider_for_model
from .tokens import Tokenizer, get_tokenizer
from .transforms import build_transforms
from .transforms._base import Transform, TransformContext, TransformResult
from .transforms._notes import join_fitting_note
from .transforms._react import is_observation
from .waste import WasteSignals, detect_waste


class TransformPipeline:
    """Runs transforms in order, undoing any that fails, grows the request or breaks pairing."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        for k, t in enumerate(transforms):
            if not isinstance(t, Transform):
                raise ConfigError(
                    f"TransformPipeline: transform {k} ({type(t).__name__}) is not a Transform "
                    "(needs name, grow_allowance and apply(messages, ctx)); subclass "
                    "headroom_core.Transform to inherit grow_allowance=0"
                )
        self.transforms = tuple(transforms)

    def transform(
        self,
        messages: Sequence[Message],
        *,
        tokenizer: Tokenizer | None = None,
        config: HeadroomConfig | None = None,
        query: str | None = None,
        model_limit: int | None = None,
        max_tokens: int | None = None,
        prefix: Sequence[Message] = (),
    ) -> TransformResult:
        """Run the transforms. ``query`` given: every relevance decision uses it; None: each
        tool output is ranked against the user turn it served. ``max_tokens``: the window
        the request must fit, output buffer included (fitting transforms act only above it).
        ``prefix``: messages that come before ``messages`` and are sent unchanged; read for
        relevance queries, never transformed (``max_tokens`` must already leave room for it)."""
        current = check_messages(messages)
        ctx = TransformContext(
            tokenizer=tokenizer or get_tokenizer(),
            config=config or HeadroomConfig(),
            query=query if query is not None else default_query([*prefix, *current]),
            model_limit=model_limit,
            explicit_query=query is not None,
            max_tokens=max_tokens,
            prefix=tuple(prefix),
            original=current,
        )
        tokens_before = ctx.tokenizer.count_messages(current)
        tokens = tokens_before
        # Pairing may only be checked as strictly as the input allows (a request may end
        # on an assistant tool call still waiting for its results).
        paired = _pairing_level(current)
        failures = ctx.failures
        for t in self.transforms:
            mark = len(ctx.applied)
            candidate = current
            with fail_open(t.name, failures) as outcome:
                candidate = t.apply(current, ctx)
            if outcome.failed:
                del ctx.applied[mark:]
                continue
            if candidate is current:
                continue
            new_tokens = ctx.tokenizer.count_messages(candidate)
            problem = _reject_reason(candidate, new_tokens, tokens + t.grow_allowance, paired)
            if problem:
                failures.append(f"{t.name}: undone, {problem}")
                del ctx.applied[mark:]
                continue
            current, tokens = candidate, new_tokens
        return TransformResult(current, tokens_before, tokens, tuple(ctx.applied), tuple(failures))


def _pairing_level(messages: list[Message]) -> str | None:
    if pairing_is_valid(messages):
        return "strict"
    return "pending" if pairing_is_valid(messages, allow_pending=True) else None


def _reject_reason(
    candidate: list[Message], tokens: int, before: int, paired: str | None
) -> str | None:
    if tokens > before:
        return f"output grew from {before} to {tokens} tokens"
    if paired and not pairing_is_valid(candidate, allow_pending=paired == "pending"):
        return "output broke tool-call pairing"
    return None


def default_query(messages: Sequence[Message]) -> str | None:
    """The text of the last user message (a ReAct observation is tool output, not a user
    message): what relevance scoring ranks against."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if m.get("role") == "user" and not is_observation(messages, i):
            text = content_text(m).strip()
            if text:
                return text
    return None


def build_pipeline(config: HeadroomConfig) -> TransformPipeline:
    """The default pipeline for a config, from the transform registry."""
    return TransformPipeline(build_transforms(config))


# --- entry points ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompressResult:
    """What :func:`compress` returns. ``messages`` is what to send."""

    messages: list[Message]
    tokens_before: int
    tokens_after: int
    transforms_applied: tuple[str, ...]
    mode: str
    waste_signals: WasteSignals | None = None
    failures: tuple[str, ...] = ()

    @property
    def tokens_saved(self) -> int:
        return max(0, self.tokens_before - self.tokens_after)

    @property
    def savings_percent(self) -> float:
        return 100.0 * self.tokens_saved / self.tokens_before if self.tokens_before else 0.0


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """What :func:`simulate` returns: the plan, with nothing changed or sent.

    ``request``: set by the provider-client wrapper, the request body that would be sent
    (``model``, ``messages``, and ``system``/``tools`` where the API has them)."""

    tokens_before: int
    tokens_after: int
    tokens_saved: int
    savings_percent: float
    transforms_applied: tuple[str, ...]
    waste_signals: WasteSignals
    estimated_cost_saving: float | None
    messages: list[Message]
    failures: tuple[str, ...] = ()
    request: dict[str, Any] | None = None

    @property
    def transforms(self) -> tuple[str, ...]:
        """``transforms_applied`` (the reference README's name)."""
        return self.transforms_applied

    @property
    def estimated_savings(self) -> str:
        """``estimated_cost_saving`` for people: ``"$0.0123 per request"``, or ``"N/A"`` when
        the model has no list price."""
        cost = self.estimated_cost_saving
        return "N/A" if cost is None else f"${cost:.4f} per request"


def compress(
    messages: Sequence[Message],
    *,
    model: str = "gpt-4o",
    query: str | None = None,
    config: HeadroomConfig | None = None,
    mode: Mode | None = None,
    max_tokens: int | None = None,
    frozen_message_count: int = 0,
) -> CompressResult:
    """Compress a chat request (neutral/OpenAI format) for ``model``.

    ``mode`` overrides ``config.mode``: ``optimize`` returns compressed messages;
    ``audit`` returns the input unchanged with the waste it found; ``off`` returns
    the input unchanged. The input list and its dicts are never mutated.

    ``max_tokens`` is the window to fit (default: the model's context limit; with the
    rolling-window fitter, ``RollingWindowConfig.max_tokens`` caps either); the request
    is made to fit it minus the fitter's ``output_buffer_tokens``, or
    :class:`~headroom_core.errors.BudgetError` is raised. Never a silently oversize request.

    ``frozen_message_count``: the first N messages come back as the same objects (so
    byte-identical), e.g. the part of a conversation the provider already holds in its
    prompt cache. They count in the window and their user turns still serve as relevance
    queries; only the messages after them are transformed. A tool call in the frozen part
    whose results follow it freezes those results too (a unit is never split).
    """
    config = config or HeadroomConfig()
    mode = mode or config.mode
    tokenizer = get_tokenizer(model)
    messages = check_messages(messages)
    frozen = frozen_length(messages, frozen_message_count)
    if mode != "optimize":
        tokens = tokenizer.count_messages(messages)
        waste = detect_waste(messages, tokenizer) if mode == "audit" else None
        return CompressResult(list(messages), tokens, tokens, (), mode, waste)
    limit = _model_limit(model, config)
    window = _window(config, max_tokens if max_tokens is not None else limit)
    prefix, rest = messages[:frozen], messages[frozen:]
    prefix_tokens = sum(tokenizer.count_message(m) for m in prefix)
    try:
        result = build_pipeline(config).transform(
            rest,
            tokenizer=tokenizer,
            config=config,
            query=query,
            model_limit=limit,
            max_tokens=window - prefix_tokens,
            prefix=prefix,
        )
        _check_fits(result, config, window - prefix_tokens, explicit=max_tokens is not None)
    except BudgetError as exc:
        if not prefix:
            raise
        raise _frozen_budget_error(exc, config, window, frozen, prefix_tokens) from exc
    out, after = [*prefix, *result.messages], prefix_tokens + result.tokens_after
    joined = join_fitting_note(out, len(prefix))
    if len(joined) < len(out):  # the note joined the system message beside it
        after = prefix_tokens + tokenizer.count_messages(joined[len(prefix) :])
        out = joined
    return CompressResult(
        out,
        prefix_tokens + result.tokens_before,
        after,
        result.transforms_applied,
        mode,
        failures=result.failures,
    )


def frozen_length(messages: Sequence[Message], count: int) -> int:
    """How many leading messages a ``frozen_message_count`` of ``count`` freezes: ``count``
    (at most the list's length), extended over the results of a frozen tool call, so a tool
    unit is never split between the frozen prefix and the transformed rest. Works on OpenAI
    ``tool`` messages and on Anthropic ``tool_result`` blocks in user messages."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigError(f"frozen_message_count: expected an int >= 0, got {count!r}")
    end = min(count, len(messages))
    if end == 0:
        return 0
    open_ids = _called_ids(messages[end - 1])
    while end < len(messages) and open_ids and _answers(messages[end], open_ids):
        end += 1
    return end


def _called_ids(message: Message) -> set[str]:
    """Tool call ids a message makes (OpenAI ``tool_calls``, Anthropic ``tool_use`` blocks);
    a run of tool results belongs to the call before it, so the last call is what counts."""
    if message.get("role") == "tool":
        return {"*"}  # inside a run of results: the rest of the run follows
    if message.get("role") != "assistant":
        return set()
    ids = {str(c.get("id")) for c in message.get("tool_calls") or () if isinstance(c, dict)}
    content = message.get("content")
    if isinstance(content, list):
        ids |= {
            str(b.get("id")) for b in content if isinstance(b, dict) and b.get("type") == "tool_use"
        }
    return ids


def _answers(message: Message, open_ids: set[str]) -> bool:
    if message.get("role") == "tool":
        return "*" in open_ids or str(message.get("tool_call_id")) in open_ids
    content = message.get("content")
    return (
        message.get("role") == "user"
        and "*" not in open_ids
        and isinstance(content, list)
        and any(
            isinstance(b, dict)
            and b.get("type") == "tool_result"
            and str(b.get("tool_use_id")) in open_ids
            for b in content
        )
    )


def simulate(
    messages: Sequence[Message],
    *,
    model: str = "gpt-4o",
    query: str | None = None,
    config: HeadroomConfig | None = None,
) -> SimulationResult:
    """What :func:`compress` would do in optimize mode, with the waste found and the saving
    priced at the model's list input price. Changes nothing."""
    result = compress(messages, model=model, query=query, config=config, mode="optimize")
    waste = detect_waste(messages, get_tokenizer(model))
    saved = result.tokens_saved
    cost = estimate_cost(input_tokens=saved, model=model)
    return SimulationResult(
        result.tokens_before,
        result.tokens_after,
        saved,
        result.savings_percent,
        result.transforms_applied,
        waste,
        cost,
        result.messages,
        result.failures,
    )


def _check_fits(
    result: TransformResult, config: HeadroomConfig, window: int, *, explicit: bool = False
) -> None:
    """An oversize result is an error, never sent silently: with a fitter, over the window
    minus its output buffer; without one, over a window the caller set (``max_tokens``)."""
    fitter = fitter_config(config)
    if fitter is None:
        if explicit and result.tokens_after > window:
            raise BudgetError(
                f"request is {result.tokens_after} tokens after compression, over "
                f"max_tokens={window}, and no fitter may cut it (HeadroomConfig.fitter is "
                "'none'); choose 'rolling_window' or 'intelligent_context', or raise max_tokens",
                protected_tokens=result.tokens_after,
                budget_tokens=window,
            )
        return
    budget = window - fitter.output_buffer_tokens
    if result.tokens_after > budget:
        raise BudgetError(
            f"request is {result.tokens_after} tokens after compression, over the budget of "
            f"{budget} ({window} window - {fitter.output_buffer_tokens} output buffer)"
            + (f"; failures: {'; '.join(result.failures)}" if result.failures else ""),
            protected_tokens=result.tokens_after,
            budget_tokens=budget,
        )


def _frozen_budget_error(
    exc: BudgetError, config: HeadroomConfig, window: int, frozen: int, prefix_tokens: int
) -> BudgetError:
    """``exc`` (raised for the part after a frozen prefix) in the whole request's numbers."""
    fitter = fitter_config(config)
    buffer = fitter.output_buffer_tokens if fitter is not None else 0
    need = exc.protected_tokens + prefix_tokens
    return BudgetError(
        f"the frozen prefix ({frozen} messages, {prefix_tokens} tokens) and what may not be "
        f"cut after it need {need} tokens, over the budget of {window - buffer} ({window} "
        f"window - {buffer} output buffer); freeze fewer messages or raise the window",
        protected_tokens=need,
        budget_tokens=window - buffer,
    )


def fitter_config(config: HeadroomConfig) -> RollingWindowConfig | IntelligentContextConfig | None:
    """The settings of the context fitter in force (``config.fitter``), or None."""
    if config.fitter == "intelligent_context":
        return config.intelligent_context
    if config.fitter == "rolling_window":
        return config.rolling_window
    return None


def _window(config: HeadroomConfig, window: int) -> int:
    """``window``, capped by ``RollingWindowConfig.max_tokens`` when that fitter is in force."""
    cap = config.rolling_window.max_tokens if config.fitter == "rolling_window" else None
    return window if cap is None else min(window, cap)


def _model_limit(model: str, config: HeadroomConfig) -> int:
    return (
        provider_for_model(model)
        .__class__(model_context_limits=config.model_context_limits)
        .get_context_limit(model)
    )


__all__ = [
    "CompressResult",
    "SimulationResult",
    "Transform",
    "TransformContext",
    "TransformPipeline",
    "TransformResult",
    "compress",
    "default_query",
    "frozen_length",
    "simulate",
]

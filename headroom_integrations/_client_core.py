"""What ``HeadroomClient`` does around one provider call, with no SDK imported.

``ClientEngine.prepare`` reads a request in the neutral (OpenAI chat) format and decides
what to send: in ``optimize`` mode the compressed messages, in ``audit`` mode the request
unchanged (with the waste found and what optimize would have sent, ``projected_tokens_after``),
in ``off`` mode nothing is computed. ``ClientEngine.finish`` turns the plan, the provider's
usage and any provider error into one :class:`~headroom_core.metrics.RequestMetrics`.

Failure policy (the client is a drop-in, so it never blocks a call):

- anything our side raises while preparing leaves the request exactly as the caller built
  it, is logged, and is recorded in ``extra["failures"]``;
- a :class:`~headroom_core.errors.BudgetError` (the protected part of the request does not
  fit the model's window minus the output buffer) is handled the same way: the request goes
  out unchanged and the provider, which owns the window, answers; the record says why;
- the provider's own errors are never caught here: the surfaces record them and re-raise
  them exactly as the SDK raised them;
- the metrics store failing is logged once and never raised (``MetricsSink``).

``extra`` keys of a client record: ``prefix_hash`` (stable prefix as sent, see
:class:`~headroom_core.transforms.cache_aligner.AlignResult`), ``prefix_hash_aligned``
(after CacheAligner), ``prefix_tokens``, ``dynamic_values``, ``preview`` (the last user
text, cut), ``projected_tokens_after`` (audit), ``failures``, ``usage_input_tokens``,
``latency_ms``, ``api`` (which SDK method).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from headroom_core.boundary import fail_open
from headroom_core.ccr import OriginalStore, use_store
from headroom_core.config import (
    MODES,
    CacheAlignerConfig,
    HeadroomConfig,
    Mode,
    RollingWindowConfig,
    SmartCrusherConfig,
)
from headroom_core.errors import ConfigError
from headroom_core.messages import Message, check_messages
from headroom_core.metrics import RequestMetrics
from headroom_core.pipeline import CompressResult, SimulationResult, compress, default_query
from headroom_core.providers import AnthropicProvider, OpenAIProvider
from headroom_core.tokens import get_tokenizer
from headroom_core.transforms.cache_aligner import CacheAligner
from headroom_core.waste import detect_waste

from ._records import priced_record
from ._sink import MetricsSink

logger = logging.getLogger("headroom_integrations")

CLIENT_MODES = MODES
_UNCHANGED = "the request goes out unchanged"
#: The per-call parameters the wrapped ``create`` accepts and strips before forwarding.
HEADROOM_PARAMS = (
    "headroom_mode",
    "headroom_query",
    "headroom_output_buffer_tokens",
    "headroom_keep_turns",
    "headroom_tool_profiles",
)
PREVIEW_CHARS = 200


@dataclass(frozen=True, slots=True)
class CallOptions:
    """The ``headroom_*`` parameters of one call, validated."""

    mode: str
    query: str | None = None
    output_buffer_tokens: int | None = None
    keep_turns: int | None = None
    tool_profiles: dict[str, dict[str, int]] | None = None


def pop_options(kwargs: dict[str, Any], default_mode: str) -> CallOptions:
    """Remove the ``headroom_*`` parameters from ``kwargs`` (in place) and validate them.

    A misspelt ``headroom_*`` name or a bad value raises ConfigError naming it: such a call
    is a programming error, and forwarding it would make the SDK raise a TypeError anyway.
    """
    ours = {k: kwargs.pop(k) for k in [k for k in kwargs if k.startswith("headroom_")]}
    unknown = sorted(set(ours) - set(HEADROOM_PARAMS))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(HEADROOM_PARAMS)}"
        )
    mode = ours.get("headroom_mode")
    if mode is None:  # not given, or None as the SDKs' "not given"
        mode = default_mode
    if mode not in CLIENT_MODES:
        raise ConfigError(f"headroom_mode: expected one of {list(CLIENT_MODES)}, got {mode!r}")
    for name in ("headroom_output_buffer_tokens", "headroom_keep_turns"):
        value = ours.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{name}: expected an int, got {value!r}")
        if value is not None and value < 0:
            raise ConfigError(f"{name}: expected an int >= 0, got {value!r}")
    query = ours.get("headroom_query")
    if query is not None and not isinstance(query, str):
        raise ConfigError(f"headroom_query: expected a str, got {query!r}")
    profiles = ours.get("headroom_tool_profiles")
    if profiles is not None:
        if not isinstance(profiles, Mapping):
            raise ConfigError(f"headroom_tool_profiles: expected a dict, got {profiles!r}")
        SmartCrusherConfig(tool_profiles=dict(profiles))  # ConfigError names what is wrong
    return CallOptions(
        mode=mode,
        query=query,
        output_buffer_tokens=ours.get("headroom_output_buffer_tokens"),
        keep_turns=ours.get("headroom_keep_turns"),
        tool_profiles=dict(profiles) if profiles is not None else None,
    )


def plain(value: Any) -> Any:
    """``value`` with SDK objects (pydantic models, e.g. the message of a previous response
    appended to ``messages``) turned into the JSON the SDK would send for them; the same
    object when there is none, so an untouched request is forwarded as it came."""
    if isinstance(value, list):
        items = [plain(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        fields = {k: plain(v) for k, v in value.items()}
        return value if all(fields[k] is value[k] for k in value) else fields
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(exclude_unset=True, mode="json")
    return value


def readable_messages(messages: Any) -> bool:
    """Whether ``messages`` is a sequence we can plan (a str or a dict is not: forwarded)."""
    return not isinstance(messages, (str, bytes, Mapping))


@dataclass(frozen=True, slots=True)
class Usage:
    """What the provider reported for a call; None where it did not say."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None


@dataclass(slots=True)
class Plan:
    """One call in flight: what to send (``messages`` None: the request as the caller built
    it) and what to record when the call ends."""

    model: str
    mode: str
    api: str
    messages: list[Message] | None = None
    tokens_before: int = 0
    tokens_after: int = 0
    transforms: tuple[str, ...] = ()
    waste: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    unchanged_prefix: tuple[str, int] | None = None
    finished: bool = False


def tools_text(tools: Any) -> str:
    """Canonical JSON of the tool definitions (what they add to the prompt), '' when none."""
    if not tools:
        return ""
    return json.dumps(
        tools, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
    )


class ClientEngine:
    """Prepares and records provider calls for one ``HeadroomClient``."""

    def __init__(
        self,
        config: HeadroomConfig,
        provider: str,
        sink: MetricsSink,
        source: str = "client",
        originals: OriginalStore | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.originals = originals  # None: the core's default store of originals
        cls = AnthropicProvider if provider == "anthropic" else OpenAIProvider
        self.provider = cls(model_context_limits=config.model_context_limits)
        self.sink = sink

    # -- before the call ------------------------------------------------------------------

    def prepare(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        tools: Any,
        options: CallOptions,
        reply_tokens: int | None,
        api: str,
    ) -> Plan:
        """The plan for one call. Never raises: our failures leave the request unchanged."""
        plan = Plan(model=model, mode=options.mode, api=api)
        if options.mode == "off":
            return plan
        failures: list[str] = []
        # The client's fail-open boundary, BudgetError included: the provider owns the window.
        with fail_open("client", failures, let_through=(), log=logger, action=_UNCHANGED):
            tools_tokens = get_tokenizer(model).count_text(tools_text(tools))  # once per call
            self._measure(plan, messages, tools, tools_tokens)
            result = self._compress(messages, model, tools_tokens, options, reply_tokens)
            after = result.tokens_after + tools_tokens
            if options.mode == "optimize":
                plan.transforms = result.transforms_applied
                if result.transforms_applied:
                    plan.messages, plan.tokens_after = result.messages, after
                    self._prefix(plan, result.messages, tools, sent=True)
            else:
                plan.extra["projected_tokens_after"] = after
            if result.failures:
                plan.extra.setdefault("failures", []).extend(result.failures)
        if failures:
            self.fail(plan, failures)
        return plan

    def _measure(
        self, plan: Plan, messages: Sequence[Message], tools: Any, tools_tokens: int
    ) -> None:
        tokenizer = get_tokenizer(plan.model)
        checked = check_messages(messages)
        plan.tokens_before = plan.tokens_after = tokenizer.count_messages(checked) + tools_tokens
        plan.waste = detect_waste(checked, tokenizer).to_dict()
        query = default_query(checked)
        if query:
            plan.extra["preview"] = query[:PREVIEW_CHARS]
        self._prefix(plan, checked, tools, sent=False)

    def _prefix(self, plan: Plan, messages: Sequence[Message], tools: Any, sent: bool) -> None:
        """Stable-prefix hashes: as sent, and as CacheAligner would make it."""
        as_is = _unaligned().align(messages, tools=tools or None, model=plan.model)
        plan.extra["prefix_hash"] = as_is.stable_prefix_hash
        plan.extra["prefix_tokens"] = as_is.stable_prefix_tokens
        if sent:
            return
        plan.unchanged_prefix = (as_is.stable_prefix_hash, as_is.stable_prefix_tokens)
        aligned = CacheAligner(self.config.cache_aligner).align(
            messages, tools=tools or None, model=plan.model
        )
        plan.extra["prefix_hash_aligned"] = aligned.stable_prefix_hash
        plan.extra["dynamic_values"] = len(aligned.moved)

    def _compress(
        self,
        messages: Sequence[Message],
        model: str,
        tools_tokens: int,
        options: CallOptions,
        reply_tokens: int | None,
    ) -> CompressResult:
        """Optimize-mode compression; the tool definitions' tokens come off the window."""
        config = self.call_config(options, reply_tokens)
        window = self.provider.get_context_limit(model)
        scope = use_store(self.originals) if self.originals is not None else nullcontext()
        with scope:
            return compress(
                messages,
                model=model,
                query=options.query,
                config=config,
                mode="optimize",
                max_tokens=max(window - tools_tokens, 0),
            )

    def call_config(self, options: CallOptions, reply_tokens: int | None) -> HeadroomConfig:
        """The client's config with this call's overrides. The output buffer is, in order:
        ``headroom_output_buffer_tokens``, the request's own max output tokens, the config's."""
        config = self.config
        buffer = options.output_buffer_tokens
        if buffer is None:
            buffer = reply_tokens
        window: dict[str, Any] = {}
        if buffer is not None:
            window["output_buffer_tokens"] = buffer
        if options.keep_turns is not None:
            window["preserve_recent_turns"] = options.keep_turns
        update: dict[str, Any] = {}
        if window:
            update["rolling_window"] = RollingWindowConfig(
                **{**config.rolling_window.model_dump(), **window}
            )
            if buffer is not None:
                update["intelligent_context"] = type(config.intelligent_context)(
                    **{**config.intelligent_context.model_dump(), "output_buffer_tokens": buffer}
                )
        if options.tool_profiles:
            crusher = config.smart_crusher.model_dump()
            crusher["tool_profiles"] = {**crusher["tool_profiles"], **options.tool_profiles}
            update["smart_crusher"] = SmartCrusherConfig(**crusher)
        return config.model_copy(update=update) if update else config

    def fail(self, plan: Plan, failures: Sequence[str]) -> None:
        """The request goes out as the caller built it; ``failures`` (recorded by
        :func:`~headroom_core.boundary.fail_open`, which logged them) go in the record."""
        plan.messages, plan.transforms = None, ()
        plan.tokens_after = plan.tokens_before
        if plan.unchanged_prefix is not None:  # what goes out is the request as given
            plan.extra["prefix_hash"], plan.extra["prefix_tokens"] = plan.unchanged_prefix
        plan.extra.setdefault("failures", []).extend(failures)

    # -- simulate -------------------------------------------------------------------------

    def simulate(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        tools: Any,
        options: CallOptions,
        reply_tokens: int | None,
    ) -> tuple[SimulationResult, CompressResult]:
        """What optimize would send; BudgetError propagates (that is what a preview is for)."""
        checked = check_messages(messages)
        tokenizer = get_tokenizer(model)
        extra = tokenizer.count_text(tools_text(tools))
        result = self._compress(checked, model, extra, options, reply_tokens)
        before, after = result.tokens_before + extra, result.tokens_after + extra
        saved = max(0, before - after)
        sim = SimulationResult(
            tokens_before=before,
            tokens_after=after,
            tokens_saved=saved,
            savings_percent=100.0 * saved / before if before else 0.0,
            transforms_applied=result.transforms_applied,
            waste_signals=detect_waste(checked, tokenizer),
            estimated_cost_saving=self.provider.estimate_cost(input_tokens=saved, model=model),
            messages=result.messages,
            failures=result.failures,
        )
        return sim, result

    # -- after the call -------------------------------------------------------------------

    def finish(
        self,
        plan: Plan,
        usage: Usage | None,
        error: BaseException | None = None,
        *,
        stream: bool = False,
    ) -> None:
        """Record the call once (a stream may end several ways); off mode records nothing."""
        if plan.finished or plan.mode == "off":
            return
        plan.finished = True
        try:
            self.sink.write(self._metrics(plan, usage or Usage(), error, stream))
        # Observer boundary: a record that cannot be built never reaches the caller.
        except Exception as exc:
            self.sink.warn(exc, "cannot build the metrics record")

    def _metrics(
        self, plan: Plan, usage: Usage, error: BaseException | None, stream: bool
    ) -> RequestMetrics:
        extra = dict(plan.extra, api=plan.api)
        extra["latency_ms"] = round(1000 * (time.perf_counter() - plan.started), 3)
        if usage.input_tokens is not None:
            extra["usage_input_tokens"] = usage.input_tokens
        return priced_record(
            self.provider,
            model=plan.model,
            mode=plan.mode,
            tokens_before=plan.tokens_before,
            tokens_after=plan.tokens_after,
            tokens_output=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            source=self.source,
            transforms=plan.transforms,
            waste=plan.waste,
            stream=stream,
            error=None if error is None else f"{type(error).__name__}: {error}",
            extra=extra,
        )


@cache
def _unaligned() -> CacheAligner:
    """A CacheAligner that moves nothing: it hashes the stable prefix as it is."""
    return CacheAligner(CacheAlignerConfig(enabled=False))


class SurfaceOwner(Protocol):
    """What the SDK surfaces (``openai.Chat``, ``anthropic.Messages``) need of the client
    that built them (a ``HeadroomClient``)."""

    default_mode: Mode
    engine: ClientEngine


__all__ = [
    "SurfaceOwner",
    "CLIENT_MODES",
    "HEADROOM_PARAMS",
    "CallOptions",
    "ClientEngine",
    "Plan",
    "Usage",
    "plain",
    "pop_options",
    "readable_messages",
    "tools_text",
]

"""The context fitters compared by ``bench_context.py``, run in this process.

Each method maps (request, budget) to what it would send, timed with
``time.perf_counter`` around the method alone. ``budget=None`` means no budget: the
model's whole window, :data:`NO_BUDGET` (gpt-4o's 128,000 tokens), for every method.

* ``none``: the request as given (the reference row).
* ``ours RollingWindow`` / ``ours IntelligentContext``: :func:`headroom_core.compress` with
  ``max_tokens=budget`` and the fitter's ``output_buffer_tokens=0`` (budget == window).
  A :class:`~headroom_core.BudgetError` is the method's answer, counted, never an output.
* ``LangChain trim_messages``: ``strategy="last"``, ``include_system=True``,
  ``start_on="human"`` (its documented recipe), ``allow_partial=False``.
* ``LangChain ClearToolUsesEdit``: the edit that ``ContextEditingMiddleware`` applies on each
  model call (a deep copy of the messages, then ``edit.apply(messages, count_tokens=...)``),
  with ``trigger=budget`` and the other fields at their defaults (keep=3,
  clear_at_least=0, placeholder "[cleared]").

Both LangChain methods get an exact token counter: our ``count_tokens_messages`` (gpt-4o)
over the messages mapped back to our dicts. Messages cross into LangChain with
``convert_to_messages`` and each gets ``id = "m<index>"``; results are mapped back by that id
to the input dicts, with a changed ``content`` carried over. So what is measured is the
method's decision (which messages are kept, which contents replaced), not LangChain's
re-serialisation (``convert_to_openai_messages`` turns ``content: None`` into ``""`` and
re-dumps tool-call arguments with other spacing, which alone would change bytes and tokens).
The conversion is outside the timer: a LangChain user holds LangChain messages already.
"""

from __future__ import annotations

import copy
import importlib.util
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Messages = list[dict[str, Any]]
MODEL = "gpt-4o"
NO_BUDGET = 128_000  # gpt-4o's context window: "no budget" for every method


@dataclass(frozen=True, slots=True)
class Outcome:
    """One method's answer to one request: what it would send, or why nothing."""

    messages: Messages | None  # None: BudgetError (ours) or a failure
    ms: float
    budget_error: bool = False
    error: str | None = None


class LocalFitter:
    """A named function ``(messages, window) -> messages``, timed by the function itself."""

    def __init__(self, name: str, func: Callable[[Messages, int], tuple[Messages, float]]) -> None:
        self.name = name
        self._func = func

    def fit(self, messages: Messages, budget: int | None) -> Outcome:
        from headroom_core import BudgetError

        work = copy.deepcopy(messages)  # a method that mutates must not leak into the next
        start = time.perf_counter()
        try:
            out, ms = self._func(work, budget if budget is not None else NO_BUDGET)
        except BudgetError:
            return Outcome(None, (time.perf_counter() - start) * 1000, budget_error=True)
        except Exception as exc:  # a benchmark reports failures, it does not stop on them
            ms = (time.perf_counter() - start) * 1000
            return Outcome(None, ms, error=f"{type(exc).__name__}: {exc}")
        return Outcome(out, ms)


def _timed(func: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = func()
    return value, (time.perf_counter() - start) * 1000


# --- ours -----------------------------------------------------------------------------------


def _ours(intelligent: bool) -> Callable[[Messages, int], tuple[Messages, float]]:
    from headroom_core import HeadroomConfig, RollingWindowConfig, compress
    from headroom_core.config import IntelligentContextConfig

    if intelligent:
        config = HeadroomConfig(
            intelligent_context=IntelligentContextConfig(enabled=True, output_buffer_tokens=0)
        )
    else:
        config = HeadroomConfig(rolling_window=RollingWindowConfig(output_buffer_tokens=0))

    def run(messages: Messages, window: int) -> tuple[Messages, float]:
        result, ms = _timed(
            lambda: compress(messages, model=MODEL, max_tokens=window, config=config)
        )
        return [dict(m) for m in result.messages], ms

    return run


# --- LangChain ------------------------------------------------------------------------------


class _Bridge:
    """Our dicts as LangChain messages (id = "m<index>"), and LangChain messages back."""

    def __init__(self, messages: Messages) -> None:
        from langchain_core.messages.utils import convert_to_messages

        self.lc = convert_to_messages(messages)
        self._orig: dict[str, tuple[dict[str, Any], Any]] = {}
        for i, (lc, d) in enumerate(zip(self.lc, messages, strict=True)):
            lc.id = f"m{i}"
            self._orig[lc.id] = (d, lc.content)

    def back(self, lc_messages: Sequence[Any]) -> Messages:
        out: Messages = []
        for m in lc_messages:
            original, content = self._orig[m.id]
            out.append(original if m.content == content else {**original, "content": m.content})
        return out

    def counter(self) -> Callable[[Sequence[Any]], int]:
        from headroom_core.tokens import count_tokens_messages

        def count(messages: Sequence[Any]) -> int:
            return count_tokens_messages(self.back(messages), model=MODEL)

        return count


def _trim(messages: Messages, window: int) -> tuple[Messages, float]:
    from langchain_core.messages import trim_messages

    bridge = _Bridge(messages)
    kept, ms = _timed(
        lambda: trim_messages(
            bridge.lc,
            max_tokens=window,
            token_counter=bridge.counter(),
            strategy="last",
            include_system=True,
            start_on="human",
            allow_partial=False,
        )
    )
    return bridge.back(kept), ms


def _clear_tool_uses(messages: Messages, window: int) -> tuple[Messages, float]:
    from langchain.agents.middleware import ClearToolUsesEdit

    bridge = _Bridge(messages)
    edit = ClearToolUsesEdit(trigger=window)
    count = bridge.counter()

    def apply() -> list[Any]:
        edited = copy.deepcopy(list(bridge.lc))  # as ContextEditingMiddleware.wrap_model_call
        edit.apply(edited, count_tokens=count)
        return edited

    edited, ms = _timed(apply)
    return bridge.back(edited), ms


def _none(messages: Messages, _window: int) -> tuple[Messages, float]:
    return messages, 0.0


NONE = "none (no fitting)"
OURS_RW = "ours RollingWindow"
OURS_IC = "ours IntelligentContext"
LC_TRIM = "LangChain trim_messages"
LC_CLEAR = "LangChain ClearToolUsesEdit"
HRAI = "headroom-ai compress()"
HRAI_FROZEN = "headroom-ai compress(frozen_message_count)"
OURS = frozenset({OURS_RW, OURS_IC})


def local_fitters() -> tuple[list[LocalFitter], list[str]]:
    """The local methods, and a note for each one skipped because its library is missing."""
    fitters = [
        LocalFitter(NONE, _none),
        LocalFitter(OURS_RW, _ours(intelligent=False)),
        LocalFitter(OURS_IC, _ours(intelligent=True)),
    ]
    notes: list[str] = []
    for name, func, module in (
        (LC_TRIM, _trim, "langchain_core"),
        (LC_CLEAR, _clear_tool_uses, "langchain"),
    ):
        if importlib.util.find_spec(module) is None:
            notes.append(f"{name} skipped: {module} is not installed (see README.md)")
        else:
            fitters.append(LocalFitter(name, func))
    return fitters, notes

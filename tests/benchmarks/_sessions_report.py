"""Checks, bills and tables for ``bench_sessions.py``.

Every request a method returns is counted with ``headroom_core.tokens`` (gpt-4o,
``o200k_base``, exact), billed with :mod:`headroom_core.billing` (the previous request of
the same method is what the cache holds) and checked: tool pairing valid, no user or
assistant message altered (kept ones equal an input message, in order), the task (the first
user message) present.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from _context_methods import MODEL, Messages, Outcome
from _context_report import Section
from _sessions_cases import CODING, Session, short_name

from headroom_core.billing import ANTHROPIC_RATES, OPENAI_RATES, CacheRates, session_bill
from headroom_core.messages import pairing_is_valid
from headroom_core.tokens import get_tokenizer
from headroom_core.transforms.cache_aligner import prefix_reuse

RATES: tuple[CacheRates, ...] = (ANTHROPIC_RATES, OPENAI_RATES)


def _said(m: dict[str, Any]) -> str:
    """What a user or assistant message says: content and tool calls, canonical JSON."""
    return json.dumps([m.get("content"), m.get("tool_calls")], sort_keys=True)


def text_kept(before: Messages, after: Messages) -> bool:
    """Every user / assistant message of ``after`` equals the next unused one of ``before``
    (messages may be left out, none may change or move)."""
    said = [_said(m) for m in before if m.get("role") in ("user", "assistant")]
    pos = 0
    for m in after:
        if m.get("role") not in ("user", "assistant"):
            continue
        mine = _said(m)
        while pos < len(said) and said[pos] != mine:
            pos += 1
        if pos == len(said):
            return False
        pos += 1
    return True


def task_present(task: str | None, after: Messages) -> bool:
    if task is None:
        return True
    return any(
        m.get("role") == "user" and json.dumps(m.get("content"), sort_keys=True) == task
        for m in after
    )


@dataclass(slots=True)
class Run:
    """One method over one session."""

    method: str
    session: Session
    sent: list[Messages] = field(default_factory=list)  # what went out (input when it failed)
    ms: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # errors, BudgetError included
    bad_pairing: int = 0
    bad_text: int = 0
    no_task: int = 0
    reuse: list[float] = field(default_factory=list)
    costs: dict[str, float] = field(default_factory=dict)
    tokens_sent: int = 0
    last_tokens: int = 0

    def add(self, request: Messages, outcome: Outcome) -> None:
        self.ms.append(outcome.ms)
        out = outcome.messages
        if out is None:
            reason = "BudgetError" if outcome.budget_error else (outcome.error or "no output")
            self.failed.append(reason)
            out = request  # fail open: the request goes as built
        self.bad_pairing += not pairing_is_valid(out, allow_pending=True)
        self.bad_text += not text_kept(request, out)
        self.no_task += not task_present(self.session.task, out)
        if self.sent:
            self.reuse.append(prefix_reuse(self.sent[-1], out))
        self.sent.append(out)

    def finish(self) -> None:
        bill = session_bill(self.sent, tokenizer=get_tokenizer(MODEL))
        self.tokens_sent, self.last_tokens = bill.tokens_sent, bill.last_tokens
        self.costs = {r.name: bill.cost(r) for r in RATES}
        self.sent = []  # keep memory flat over many sessions


@dataclass(slots=True)
class Totals:
    """Runs of one method pooled over a set of sessions."""

    runs: list[Run]

    def _sum(self, attr: str) -> int:
        return sum(int(getattr(r, attr)) for r in self.runs)

    @property
    def requests(self) -> int:
        return sum(len(r.ms) for r in self.runs)

    def cost(self, rates: str) -> float:
        return sum(r.costs[rates] for r in self.runs)

    def reuse(self) -> float | None:
        values = [v for r in self.runs for v in r.reuse]
        return statistics.fmean(values) if values else None

    def ms(self) -> tuple[float, float]:
        values = [v for r in self.runs for v in r.ms]
        return (statistics.fmean(values), max(values)) if values else (0.0, 0.0)

    def checks(self) -> str:
        bad = [self._sum("bad_pairing"), self._sum("bad_text"), self._sum("no_task")]
        failed = sum(len(r.failed) for r in self.runs)
        text = "ok" if not any(bad) else f"pairing {bad[0]}, text {bad[1]}, task {bad[2]}"
        return text if not failed else f"{text}; {failed} failed"


def _row(label: str, method: str, mine: Totals, ref: Totals, *, first: bool) -> list[str]:
    reuse = mine.reuse()
    mean_ms, max_ms = mine.ms()
    cells = [
        label if first else "",
        method,
        f"{mine._sum('tokens_sent'):,}",
        f"{mine._sum('last_tokens'):,}",
        "n/a" if reuse is None else f"{reuse:.3f}",
    ]
    for rates in RATES:
        base = ref.cost(rates.name)
        cells.append(f"{mine.cost(rates.name) / base:.3f}" if base else "n/a")
    cells += [f"{mean_ms:.1f} / {max_ms:.0f}", mine.checks()]
    return cells


HEADERS = (
    "sessions",
    "method",
    "tokens sent",
    "last request",
    "prefix reuse",
    "bill, Anthropic rates",
    "bill, OpenAI rates",
    "ms per turn mean / max",
    "checks",
)


def bill_section(
    title: str, groups: Sequence[tuple[str, dict[str, Totals]]], reference: str
) -> Section:
    """One block of rows per group of sessions, one row per method; bills as a multiple of
    ``reference``'s (the uncompressed requests)."""
    rows: list[list[str]] = []
    size = 0
    for label, by_method in groups:
        ref = by_method[reference]
        for k, (method, totals) in enumerate(by_method.items()):
            rows.append(_row(label, method, totals, ref, first=k == 0))
        size = len(by_method)
    return Section(title, HEADERS, rows, group=size)


def group_runs(
    runs: dict[str, list[Run]], sessions: Sequence[Session]
) -> tuple[list[tuple[str, dict[str, Totals]]], list[tuple[str, dict[str, Totals]]]]:
    """(per coding session + coding total, per public source + public total + all total)."""

    def pick(keep: Sequence[str]) -> dict[str, Totals]:
        wanted = set(keep)
        return {m: Totals([r for r in rs if r.session.name in wanted]) for m, rs in runs.items()}

    coding = [s.name for s in sessions if s.group == CODING]
    public = [s for s in sessions if s.group != CODING]
    first: list[tuple[str, dict[str, Totals]]] = [(short_name(n), pick([n])) for n in coding]
    if coding:
        first.append((f"all {len(coding)} coding-agent sessions", pick(coding)))
    second: list[tuple[str, dict[str, Totals]]] = []
    for source in sorted({s.group for s in public}):
        names = [s.name for s in public if s.group == source]
        second.append((f"{source} ({len(names)})", pick(names)))
    if public:
        second.append((f"all {len(public)} public conversations", pick([s.name for s in public])))
    if public and coding:
        second.append((f"all {len(sessions)} sessions", pick([s.name for s in sessions])))
    return first, second

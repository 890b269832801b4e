"""Checks, aggregation and tables (rich or Markdown) for ``bench_context.py``.

Every output is counted with ``headroom_core.tokens.count_tokens_messages`` (gpt-4o, exact),
checked with ``headroom_core.messages.pairing_is_valid(..., allow_pending=True)``, and
compared with the next request by ``headroom_core.transforms.cache_aligner.prefix_reuse``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from _context_cases import Conversation
from _context_methods import MODEL, Messages, Outcome
from _report import _md_table
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from headroom_core.messages import content_text, pairing_is_valid, tool_call_ids
from headroom_core.tokens import count_tokens_messages
from headroom_core.transforms._fit import MARKER_PREFIX
from headroom_core.transforms.cache_aligner import prefix_reuse

BUST = 0.5  # a pair whose reuse is below this counts as a cache bust


@dataclass(slots=True)
class Section:
    """One printed table with its notes."""

    title: str
    headers: tuple[str, ...]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    group: int = 0  # rich: a rule after every ``group`` rows


def _pct(part: int, whole: int) -> str:
    return "n/a" if whole == 0 else f"{100.0 * part / whole:.1f}"


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "n/a"


def user_check(before: Messages, after: Messages) -> tuple[bool, bool]:
    """(every kept user message's text equals an input user message's text, the output holds
    our fitter's inserted marker). The marker is inserted, not kept, so it is not checked."""
    texts = {content_text(m) for m in before if m.get("role") == "user"}
    # the note joins the system message next to it (or stands alone when there is none)
    marker = any(m.get("role") == "system" and MARKER_PREFIX in content_text(m) for m in after)
    for m in after:
        if m.get("role") != "user":
            continue
        text = content_text(m)
        if text in texts:
            continue
        if text.startswith(MARKER_PREFIX):
            marker = True
            continue
        return False, marker
    return True, marker


def same_turn(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """``a`` stands for ``b``: same role and call ids, same text unless it is a tool result
    (whose content a compressor may rewrite)."""
    if a.get("role") != b.get("role") or a.get("tool_call_id") != b.get("tool_call_id"):
        return False
    if tool_call_ids(a) != tool_call_ids(b):
        return False
    return a.get("role") == "tool" or content_text(a) == content_text(b)


# --- budgets --------------------------------------------------------------------------------


@dataclass(slots=True)
class BudgetStats:
    method: str
    fraction: float
    requests: int = 0
    fits: int = 0
    budget_errors: int = 0
    oversize: int = 0
    failures: list[str] = field(default_factory=list)
    returned: int = 0
    pairing_ok: int = 0
    user_ok: int = 0
    last_kept: int = 0
    marker: int = 0
    system_only: int = 0  # outputs left with nothing but system messages
    tokens_after: int = 0
    budget_of_returned: int = 0
    ms: list[float] = field(default_factory=list)

    def add(self, conv: Conversation, budget: int, out: Outcome) -> bool:
        """Record one outcome; True when it fits the budget."""
        self.requests += 1
        self.ms.append(out.ms)
        if out.messages is None:
            if out.budget_error:
                self.budget_errors += 1
            else:
                self.failures.append(f"{conv.name}: {out.error}")
            return False
        tokens = count_tokens_messages(out.messages, model=MODEL)
        fits = tokens <= budget
        self.returned += 1
        self.fits += fits
        self.oversize += not fits
        self.tokens_after += tokens
        self.budget_of_returned += budget
        self.pairing_ok += pairing_is_valid(out.messages, allow_pending=True)
        user_ok, marker = user_check(conv.messages, out.messages)
        self.user_ok += user_ok
        self.marker += marker
        self.last_kept += bool(out.messages) and same_turn(out.messages[-1], conv.messages[-1])
        self.system_only += all(m.get("role") in ("system", "developer") for m in out.messages)
        return fits

    def row(self) -> list[str]:
        return [
            self.method,
            f"{self.fraction:.0%}",
            str(self.requests),
            _pct(self.fits, self.requests),
            str(self.budget_errors),
            str(self.oversize),
            _pct(self.pairing_ok, self.returned),
            _pct(self.user_ok, self.returned),
            _pct(self.last_kept, self.returned),
            _pct(self.marker, self.returned),
            f"{self.tokens_after:,}",
            _pct(self.tokens_after, self.budget_of_returned),
            _median(self.ms),
        ]


BUDGET_HEADERS = (
    "method",
    "budget",
    "requests",
    "fits %",
    "BudgetError",
    "oversize sent",
    "pairing valid %",
    "user text unchanged %",
    "last msg kept %",
    "marker %",
    "tokens after",
    "% of budget",
    "median ms",
)


def budget_section(
    stats: Sequence[BudgetStats], convs: Sequence[Conversation], fractions: Sequence[float]
) -> Section:
    rows = [s.row() for s in sorted(stats, key=lambda s: s.fraction)]  # stable: method order
    total = sum(c.tokens for c in convs)
    shares = "/".join(f"{100 * f:.0f}" for f in fractions)
    title = (
        f"Budgets: {len(convs)} conversations ({total:,} tokens in all) x budgets of "
        f"{shares}% of each history's size"
    )
    notes = [
        f"{s.method} at {s.fraction:.0%}: {s.system_only} of {s.returned} outputs are the "
        "system prompt alone (the task and every turn dropped)"
        for s in stats
        if s.system_only
    ]
    return Section(title, BUDGET_HEADERS, rows, notes, group=len({s.method for s in stats}))


def fits_by_source(
    convs: Sequence[Conversation],
    fits: dict[tuple[str, str, float], bool],
    methods: Sequence[str],
    fractions: Sequence[float],
) -> Section:
    """fits % per source and method, one cell "25% / 50% / 75%"."""
    sources = list(dict.fromkeys(c.source for c in convs))
    rows = []
    for source in sources:
        names = [c.name for c in convs if c.source == source]
        row = [source, str(len(names))]
        for method in methods:
            cells = []
            for f in fractions:
                ok = sum(fits.get((method, name, f), False) for name in names)
                cells.append(f"{100 * ok / len(names):.0f}")
            row.append(" / ".join(cells))
        rows.append(row)
    headers = ("source", "convs", *methods)
    title = "Budgets: fits % per source (" + " / ".join(f"{f:.0%}" for f in fractions) + ")"
    return Section(title, headers, rows)


# --- cache-prefix replay --------------------------------------------------------------------


@dataclass(slots=True)
class ReplayStats:
    method: str
    setting: str  # "none" or "50%"
    requests: int = 0
    budget_errors: int = 0
    oversize: int = 0
    failures: list[str] = field(default_factory=list)
    reuse: list[float] = field(default_factory=list)
    reuse_by_source: dict[str, list[float]] = field(default_factory=dict)
    reuse_over: list[float] = field(default_factory=list)  # pairs whose request is over budget
    tokens_sent: int = 0
    ms: list[float] = field(default_factory=list)

    def add_conversation(
        self,
        conv: Conversation,
        budget: int | None,
        requests: Sequence[Messages],
        outcomes: Sequence[Outcome],
    ) -> None:
        previous: Messages | None = None
        for k, (request, out) in enumerate(zip(requests, outcomes, strict=True)):
            self.requests += 1
            self.ms.append(out.ms)
            if out.messages is None:
                if out.budget_error:
                    self.budget_errors += 1
                else:
                    self.failures.append(f"{conv.name} request {k}: {out.error}")
                previous = None  # nothing was sent: the next pair is not scored
                continue
            tokens = count_tokens_messages(out.messages, model=MODEL)
            self.tokens_sent += tokens
            self.oversize += budget is not None and tokens > budget
            if previous is not None:
                value = prefix_reuse(previous, out.messages)
                self.reuse.append(value)
                self.reuse_by_source.setdefault(conv.source, []).append(value)
                if budget is not None and count_tokens_messages(request, model=MODEL) > budget:
                    self.reuse_over.append(value)
            previous = out.messages

    def row(self) -> list[str]:
        r = self.reuse
        return [
            self.method,
            self.setting,
            str(self.requests),
            str(self.budget_errors),
            str(self.oversize),
            str(len(r)),
            f"{statistics.fmean(r):.4f}" if r else "n/a",
            f"{min(r):.3f}" if r else "n/a",
            _pct(sum(v == 1.0 for v in r), len(r)),
            str(sum(v < BUST for v in r)),
            str(len(self.reuse_over)) if self.setting != "none" else "-",
            f"{statistics.fmean(self.reuse_over):.4f}" if self.reuse_over else "n/a",
            f"{self.tokens_sent:,}",
            _median(self.ms),
        ]


REPLAY_HEADERS = (
    "method",
    "budget",
    "requests",
    "BudgetError",
    "oversize sent",
    "pairs scored",
    "mean prefix reuse",
    "min reuse",
    "full reuse %",
    f"busts (<{BUST})",
    "pairs over budget",
    "mean reuse over budget",
    "tokens sent",
    "median ms",
)


def replay_section(stats: Sequence[ReplayStats], n_convs: int) -> Section:
    rows = [s.row() for s in sorted(stats, key=lambda s: s.setting != "none")]
    requests = max((s.requests for s in stats), default=0)
    title = (
        f"Cache-prefix replay: {requests} requests in {n_convs} conversations, "
        "prefix_reuse(previous output, current output)"
    )
    return Section(title, REPLAY_HEADERS, rows, group=len({s.method for s in stats}))


def reuse_by_source(convs: Sequence[Conversation], stats: Sequence[ReplayStats]) -> Section:
    """Mean reuse per source and method, one cell "no budget / 50%"."""
    sources = list(dict.fromkeys(c.source for c in convs))
    methods = list(dict.fromkeys(s.method for s in stats))
    by_key = {(s.method, s.setting): s for s in stats}
    settings = list(
        dict.fromkeys(s.setting for s in sorted(stats, key=lambda s: s.setting != "none"))
    )
    rows = []
    for source in sources:
        row = [source]
        for method in methods:
            cells = []
            for setting in settings:
                s = by_key.get((method, setting))
                values = s.reuse_by_source.get(source, []) if s else []
                cells.append(f"{statistics.fmean(values):.3f}" if values else "n/a")
            row.append(" / ".join(cells))
        rows.append(row)
    label = " / ".join("no budget" if s == "none" else f"budget {s}" for s in settings)
    return Section(
        f"Cache-prefix replay: mean reuse per source ({label})", ("source", *methods), rows
    )


# --- rendering ------------------------------------------------------------------------------


def render_rich(section: Section, console: Console) -> None:
    table = Table(title=section.title, title_justify="left")
    for i, header in enumerate(section.headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for i, row in enumerate(section.rows, 1):
        table.add_row(*row, end_section=bool(section.group) and i % section.group == 0)
    console.print(table)
    for note in section.notes:
        console.print(f"[dim]- {escape(note)}[/dim]", highlight=False)
    console.print()


def render_markdown(section: Section) -> str:
    parts = [f"### {section.title}", "", _md_table(section.headers, section.rows)]
    if section.notes:
        parts += ["", *(f"- {n}" for n in section.notes)]
    return "\n".join(parts) + "\n"


def print_sections(sections: Sequence[Section], *, markdown: bool, width: int) -> None:
    """Markdown on stdout, or rich tables at least ``width`` wide (readable in a pipe)."""
    out = Console(width=max(Console().width, width))
    for section in sections:
        if markdown:
            print(render_markdown(section))
        else:
            render_rich(section, out)

"""Token counts, savings, retention and time per method, as rich or Markdown tables.

Every method's output is counted with the same exact counter,
``headroom_core.tokens.count_tokens_messages`` (gpt-4o, o200k_base), over the
whole request, so the rows are comparable.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from _baselines import Output
from _datasets import Case
from _retention import Count, retention
from rich.console import Console
from rich.table import Table

from headroom_core.tokens import count_tokens_messages

MODEL = "gpt-4o"
# family -> (column title, retention key), in display order
RETENTION_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "json": (
        ("valid JSON %", "valid"),
        ("lossless %", "lossless"),
        ("errors kept %", "errors"),
        ("query item %", "query"),
        ("query item verbatim %", "verbatim"),
    ),
    "tables": (
        ("answer cell %", "answer"),
        ("lossless %", "lossless"),
        ("agg. cut: rows kept", "agg_rows"),
    ),
    "logs": (("warn+ lines %", "important"), ("rare lines %", "rare")),
    "build_logs": (("error lines %", "errors"), ("no escapes %", "plain")),
    "conversations": (("pairing ok %", "pairing"), ("text unchanged %", "text")),
}
COUNT_KEYS = frozenset({"agg_rows"})  # shown as kept/total, not a percentage
HEADERS = ("method", "cases", "tokens before", "tokens after", "saving % total", "saving % median")
TIME_HEADERS = ("median ms", "max ms")


@dataclass(slots=True)
class MethodStats:
    name: str
    before: list[int] = field(default_factory=list)
    after: list[int] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    kept: dict[str, Count] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    bigger: list[str] = field(default_factory=list)  # cases the method made larger

    def add_retention(self, counts: Mapping[str, Count]) -> None:
        for key, (k, t) in counts.items():
            old_k, old_t = self.kept.get(key, (0, 0))
            self.kept[key] = (old_k + k, old_t + t)


@dataclass(slots=True)
class FamilyReport:
    family: str
    title: str
    headers: tuple[str, ...]
    rows: list[list[str]]
    group_headers: tuple[str, ...]
    group_rows: list[list[str]]
    notes: list[str]


def _pct(part: float, whole: float) -> str:
    return "n/a" if whole == 0 else f"{100.0 * part / whole:.1f}"


def _saving(before: int, after: int) -> float:
    return 100.0 * (before - after) / before if before else 0.0


def measure(name: str, cases: Sequence[Case], outputs: Sequence[Output]) -> MethodStats:
    stats = MethodStats(name)
    for case, out in zip(cases, outputs, strict=True):
        before = count_tokens_messages(case.messages, model=MODEL)
        after = count_tokens_messages(out.messages, model=MODEL)
        stats.before.append(before)
        stats.after.append(after)
        stats.ms.append(out.ms)
        stats.add_retention(retention(case, out.messages, out.decoded).counts)
        if out.error:
            stats.errors.append(f"{case.name}: {out.error}")
        if after > before:
            stats.bigger.append(f"{case.name} (+{after - before})")
    return stats


def _row(stats: MethodStats, family: str) -> list[str]:
    before, after = sum(stats.before), sum(stats.after)
    savings = [_saving(b, a) for b, a in zip(stats.before, stats.after, strict=True)]
    row = [
        stats.name,
        str(len(stats.before)),
        f"{before:,}",
        f"{after:,}",
        f"{_saving(before, after):.1f}",
        f"{statistics.median(savings):.1f}" if savings else "n/a",
    ]
    for _title, key in RETENTION_COLUMNS[family]:
        kept, total = stats.kept.get(key, (0, 0))
        row.append(f"{kept}/{total}" if key in COUNT_KEYS else _pct(kept, total))
    ms = stats.ms or [0.0]
    row += [f"{statistics.median(ms):.2f}", f"{max(ms):.2f}"]
    return row


def _group_label(cases: Sequence[Case], group: str) -> str:
    synthetic = any(c.synthetic for c in cases if c.group == group)
    return f"{group} (SYNTHETIC)" if synthetic else group


def _group_table(
    cases: Sequence[Case], all_stats: Sequence[MethodStats]
) -> tuple[tuple[str, ...], list[list[str]]]:
    groups = list(dict.fromkeys(c.group for c in cases))
    headers = ("data set", "cases", *(s.name for s in all_stats))
    rows: list[list[str]] = []
    for group in groups:
        idx = [i for i, c in enumerate(cases) if c.group == group]
        row = [_group_label(cases, group), str(len(idx))]
        for s in all_stats:
            before, after = sum(s.before[i] for i in idx), sum(s.after[i] for i in idx)
            row.append(f"{_saving(before, after):.1f}")
        rows.append(row)
    return headers, rows


def family_report(
    family: str, cases: Sequence[Case], all_stats: Sequence[MethodStats], notes: Sequence[str]
) -> FamilyReport:
    synthetic = sum(c.synthetic for c in cases)
    title = f"{family}: {len(cases)} cases"
    if synthetic:
        title += f" ({synthetic} of them SYNTHETIC: db_tau_bench generated mock data)"
    headers = HEADERS + tuple(t for t, _ in RETENTION_COLUMNS[family]) + TIME_HEADERS
    rows = [_row(s, family) for s in all_stats]
    group_headers, group_rows = _group_table(cases, all_stats)
    all_notes = list(notes)
    for s in all_stats:
        if s.bigger:
            shown = ", ".join(s.bigger[:6]) + (" ..." if len(s.bigger) > 6 else "")
            all_notes.append(f"{s.name} made {len(s.bigger)} case(s) bigger: {shown}")
        if s.errors:
            all_notes.append(f"{s.name} failed on {len(s.errors)} case(s): {s.errors[0]}")
    return FamilyReport(family, title, headers, rows, group_headers, group_rows, all_notes)


def render_rich(report: FamilyReport, console: Console) -> None:
    table = Table(title=report.title, title_justify="left")
    for i, header in enumerate(report.headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in report.rows:
        table.add_row(*row)
    console.print(table)
    groups = Table(title=f"{report.family}: saving % total per data set", title_justify="left")
    for i, header in enumerate(report.group_headers):
        groups.add_column(header, justify="left" if i == 0 else "right")
    for row in report.group_rows:
        groups.add_row(*row)
    console.print(groups)
    for note in report.notes:
        console.print(f"[dim]- {note}[/dim]", highlight=False)
    console.print()


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---"] + ["---:"] * (len(headers) - 1)
    return "\n".join([line(headers), "| " + " | ".join(align) + " |", *map(line, rows)])


def render_markdown(report: FamilyReport) -> str:
    parts = [
        f"### {report.title}",
        "",
        _md_table(report.headers, report.rows),
        "",
        f"Saving % total per data set ({report.family}):",
        "",
        _md_table(report.group_headers, report.group_rows),
    ]
    if report.notes:
        parts += ["", *(f"- {n}" for n in report.notes)]
    return "\n".join(parts) + "\n"

"""LogCompressor: template dedup with markers, what is never cut, detection, speed.

Real data: the Loghub 2k samples in ../shared/data/logs_loghub (research use only; cite
Zhu et al., ISSRE 2023, https://github.com/logpai/loghub). Read in place, never copied.
Run this file as a script to print the per-system table.
"""

from __future__ import annotations

import csv
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_core.ccr import MemoryOriginalStore, retrieve
from headroom_core.config import SmartCrusherConfig
from headroom_core.tokens import count_tokens_text
from headroom_core.transforms._content import Compressed, ContentContext
from headroom_core.transforms._templates import template_of
from headroom_core.transforms.log_compressor import HEAD, TAIL, LogCompressor

LOG = LogCompressor()
CONTEXT = 2  # lines kept on each side of an error (the module's CONTEXT, pinned here)
MARKER = re.compile(
    r"^\[\.\.\. (\d+) more lines like line (\d+) omitted, from lines (\d+)-(\d+) "
    r'\(template "[^\n]*"\); ref=([0-9a-f]{32})\]$'
)
SEVERE_LEVELS = frozenset(
    {"W", "E", "F", "A", "WARN", "WARNING", "ERROR", "ERR", "FATAL", "CRITICAL", "SEVERE"}
)


def _ctx(
    store: MemoryOriginalStore | None = None,
    *,
    min_tokens: int = 200,
    count: Callable[[str], int] = count_tokens_text,
) -> ContentContext:
    return ContentContext(
        count=count,
        config=SmartCrusherConfig(min_tokens_to_crush=min_tokens),
        store=store if store is not None else MemoryOriginalStore(),
        tool_name="shell",
    )


def _info(i: int) -> str:
    return f"2024-05-01 12:{i // 60 % 60:02d}:{i % 60:02d},{i:03d} INFO [worker-{i % 4}] served request {i * 7919} in {i % 97} ms"


def _beat(i: int) -> str:
    return f"2024-05-01 12:{i // 60 % 60:02d}:{i % 60:02d},{i:03d} DEBUG heartbeat: node-{i % 9} seq={i} lag 0x{i * 2654435761 % 2**32:08x}"


def _kept_indices(original: list[str], out: list[str]) -> list[int]:
    """Indices of the original lines that the output keeps, aligned in order. A marker
    stands where its first cut line was, so kept lines after it come after that line
    (which pins identical lines, e.g. Spark's, to the right copy)."""
    kept: list[int] = []
    pos = 0
    for line in out:
        m = MARKER.match(line)
        if m:
            pos = max(pos, int(m[3]))  # 1-based first cut line == 0-based line after it
            continue
        while original[pos] != line:
            pos += 1  # IndexError here = an output line that is not an original line
        kept.append(pos)
        pos += 1
    return kept


def _check_recoverable(text: str, result: Compressed, store: MemoryOriginalStore) -> None:
    """Every cut line is named by exactly one marker: its ref gives the original, and the
    marker's span + example line pick out exactly the cut lines (by template)."""
    (ref,) = result.refs
    stored = store.get(ref)
    assert stored is not None and stored.text == text
    original = text.splitlines()
    out = result.text.splitlines()
    kept = set(_kept_indices(original, out))
    cut: set[int] = set()
    for line in out:
        m = MARKER.match(line)
        if not m:
            continue
        count, example, first, last, marker_ref = m.groups()
        assert marker_ref == ref
        template = template_of(original[int(example) - 1])
        named = {
            i
            for i in range(int(first) - 1, int(last))
            if i not in kept and template_of(original[i]) == template
        }
        assert len(named) == int(count)
        assert sum(len(original[i]) + 1 for i in named) > len(line)  # a marker saves space
        assert {int(first) - 1, int(last) - 1} <= named
        assert not named & cut
        cut |= named
    assert kept | cut == set(range(len(original)))
    assert len(cut) == result.dropped


# ---------------------------------------------------------------- collapsing repeats


def test_one_template_collapses_to_head_marker_tail() -> None:
    lines = [_info(i) for i in range(200)]
    text = "\n".join(lines) + "\n"
    store = MemoryOriginalStore()
    result = LOG.compress(text, _ctx(store))
    assert result is not None and result.lossy
    ref = result.refs[0]
    marker = (
        f"[... 190 more lines like line 1 omitted, from lines 6-195 (template "
        f'"INFO [worker-<*>] served request <*> in <*> ms"); ref={ref}]'
    )
    assert result.text == "\n".join([*lines[:HEAD], marker, *lines[-TAIL:]]) + "\n"
    assert result.dropped == 190
    _check_recoverable(text, result, store)


def test_interleaved_templates_get_one_marker_each_with_exact_counts() -> None:
    lines = [_info(i) if i % 3 else _beat(i) for i in range(300)]
    text = "\n".join(lines)
    store = MemoryOriginalStore()
    result = LOG.compress(text, _ctx(store))
    assert result is not None
    markers = [MARKER.match(line) for line in result.text.splitlines()]
    found = sorted((int(m[1]), int(m[2]), int(m[3]), int(m[4])) for m in markers if m)
    # heartbeat: 100 lines 1,4,...,298 (1-based); head keeps 1 and 4, the last (298) stays.
    # info: 200 lines; head keeps 2,3,5, tail keeps 296,297,299,300.
    assert found == [(97, 1, 7, 295), (193, 2, 6, 294)]
    assert result.dropped == 97 + 193
    _check_recoverable(text, result, store)


def test_marker_sits_where_the_first_cut_line_was() -> None:
    lines = [f"boot step {i}: ok" for i in range(6)] + [_info(i) for i in range(100)]
    lines += [f"shutdown step {i}: done" for i in range(6)]
    result = LOG.compress("\n".join(lines), _ctx())
    assert result is not None
    out = result.text.splitlines()
    at = next(i for i, line in enumerate(out) if MARKER.match(line))
    assert out[at - 1] == lines[6]  # first info line kept verbatim, marker right after it
    assert out[at + 1] == lines[105]  # then the last info line


def test_lines_are_numbered_like_headroom_retrieve_numbers_them() -> None:
    lines = [_info(i) for i in range(120)]
    text = "\r\n".join(lines) + "\r\n"
    store = MemoryOriginalStore()
    result = LOG.compress(text, _ctx(store))
    assert result is not None
    assert "\r\n" in result.text and "\n" not in result.text.replace("\r\n", "")
    m = next(m for m in map(MARKER.match, result.text.splitlines()) if m)
    last = int(m[4])
    numbered = retrieve(result.refs[0], "request", store=store)  # "N: line" for each hit
    assert f"\n{last}: {lines[last - 1]}" in numbered
    _check_recoverable(text, result, store)


# ---------------------------------------------------------------- never cut


def _with(lines: list[str], at: int, extra: list[str]) -> list[str]:
    return lines[:at] + extra + lines[at:]


def test_levels_failures_and_stack_traces_are_kept_verbatim_in_order() -> None:
    base = [_info(i) for i in range(400)]
    severe = [
        "2024-05-01 12:01:40,100 WARN [worker-1] slow disk /dev/sda1",
        "2024-05-01 12:01:41,100 [error] mod_jk child workerEnv in error state 6",
        "2024-05-01 12:01:42,100 Fatal: out of memory",
        "2024-05-01 12:01:43,100 critical temperature reached",
        "2024-05-01 12:01:44,100 kernel: PANIC at CPU 3",
        "2024-05-01 12:01:45,100 job 12 FAILED after 3 retries",
        "2024-05-01 12:01:46,100 Severe: quota exceeded",
        "2024-05-01 12:01:47,100 ERR disk full",
        "2024-05-01 12:01:48,100 notice: warning threshold passed",
    ]
    lines = base[:100] + severe[:5] + base[100:300] + severe[5:] + base[300:]
    result = LOG.compress("\n".join(lines), _ctx())
    assert result is not None
    out = result.text.splitlines()
    assert [line for line in out if line in severe] == severe


def test_bare_mentions_of_error_words_do_not_protect_a_line() -> None:
    lines = [
        f"2024-05-01 12:00:{i % 60:02d} INFO sync {i}: errors=0 stderr empty terrors none"
        for i in range(100)
    ]
    result = LOG.compress("\n".join(lines), _ctx())
    assert result is not None and result.dropped == 100 - HEAD - TAIL


def test_traceback_is_kept_with_context() -> None:
    trace = [
        "Traceback (most recent call last):",
        '  File "/srv/app/jobs.py", line 88, in run',
        "    total = compute(batch)",
        '  File "/srv/app/math.py", line 12, in compute',
        "    return sum(x.value for x in batch) / len(batch)",
        "ZeroDivisionError: division by zero",
    ]
    base = [_info(i) for i in range(300)]
    lines = base[:150] + trace + base[150:]
    result = LOG.compress("\n".join(lines), _ctx())
    assert result is not None
    expected = lines[150 - CONTEXT : 150 + len(trace) + CONTEXT]
    out = result.text.splitlines()
    start = out.index(expected[0])
    assert out[start : start + len(expected)] == expected


def test_java_exception_with_frames_and_cause_is_kept_with_context() -> None:
    trace = [
        "2024-05-01 12:02:00,001 INFO [main] retrying connect",
        "java.net.ConnectException: Connection refused",
        "\tat sun.nio.ch.SocketChannelImpl.checkConnect(Native Method)",
        "\tat org.apache.hadoop.ipc.Client.call(Client.java:1476)",
        "Caused by: java.io.IOException: broken pipe",
        "\t... 12 more",
    ]
    base = [_info(i) for i in range(300)]
    lines = base[:200] + trace + base[200:]
    result = LOG.compress("\n".join(lines), _ctx())
    assert result is not None
    out = result.text.splitlines()
    expected = lines[201 - CONTEXT : 200 + len(trace) + CONTEXT]  # the INFO line is no error
    start = out.index(expected[0])
    assert out[start : start + len(expected)] == expected


def test_compiler_error_keeps_the_source_excerpt_after_it() -> None:
    lines = [
        f"[{i}/400] Building CXX object src/CMakeFiles/core.dir/unit_{i}.cpp.o"
        for i in range(1, 301)
    ]
    diag = [
        "src/parser.cpp:42:7: error: expected ';' after expression",
        "   42 |   foo()",
        "      |       ^",
    ]
    lines = lines[:120] + diag + lines[120:]
    result = LOG.compress("\n".join(lines), _ctx())
    assert result is not None
    assert "\n".join(diag) in result.text


def test_android_level_letters() -> None:
    levels = "IDVIDIIV" * 30
    lines = [
        f"03-17 16:13:{i % 60:02d}.{i:03d}  1702  {2000 + i} {lv} PowerManagerService: acquire lock={i * 31337}, flags=0x1"
        for i, lv in enumerate(levels)
    ]
    lines[77] = "03-17 16:14:17.077  1702  2077 W ActivityManager: Unable to start service Intent"
    lines[140] = "03-17 16:15:20.140  1702  2140 E AndroidRuntime: FATAL EXCEPTION: main"
    lines[200] = "E/AudioFlinger(  123): write blocked for 412 msecs"
    result = LOG.compress("\n".join(lines), _ctx())
    assert result is not None
    for i in (77, 140, 200):
        assert lines[i] in result.text.splitlines()


def test_rare_lines_head_and_tail_are_kept() -> None:
    lines = [_info(i) for i in range(300)]
    rare = {
        50: "2024-05-01 12:00:50,050 INFO [main] configuration reloaded from disk",
        51: "2024-05-01 12:00:51,051 INFO [main] configuration reloaded from disk",
        180: "2024-05-01 12:03:00,180 INFO [gc] full collection took 1.2 s",
    }
    for i, line in rare.items():
        lines[i] = line
    result = LOG.compress("\n".join(lines), _ctx())
    assert result is not None
    out = result.text.splitlines()
    assert out[:HEAD] == lines[:HEAD] and out[-TAIL:] == lines[-TAIL:]
    assert all(line in out for line in rare.values())


# ---------------------------------------------------------------- contract


def test_idempotent_and_deterministic() -> None:
    lines = [_info(i) if i % 5 else _beat(i) for i in range(500)]
    lines[250] = "2024-05-01 12:04:10,250 ERROR [worker-2] boom: RuntimeError: bad state"
    text = "\n".join(lines)
    first = LOG.compress(text, _ctx())
    again = LOG.compress(text, _ctx())
    assert first is not None and again is not None and first.text == again.text
    second = LOG.compress(first.text, _ctx())
    assert second is None or second.text == first.text


def test_markers_are_never_collapsed() -> None:
    ref = "0123456789abcdef"
    markers = [
        f'[... {i + 3} more lines like line {i} omitted, from lines {i + 1}-{i + 9} (template "x"); ref={ref}]'
        for i in range(40)
    ]
    lines = [line for i in range(40) for line in (_info(i), markers[i])]
    result = LOG.compress("\n".join(lines + [_info(i) for i in range(40, 200)]), _ctx())
    assert result is not None
    out = result.text.splitlines()
    assert [line for line in out if line.endswith(f"ref={ref}]")] == markers


def test_leaves_small_unique_or_short_texts_alone() -> None:
    few = "\n".join(_info(i) for i in range(15))
    assert LOG.compress(few, _ctx(min_tokens=0)) is None  # under MIN_LINES lines
    small = "\n".join(_info(i) for i in range(30))
    assert LOG.compress(small, _ctx(min_tokens=10_000)) is None  # under min_tokens_to_crush
    assert LOG.compress(small, _ctx(min_tokens=0)) is not None
    unique = "\n".join(
        f"2024-05-01 12:00:{i % 60:02d} step {w} finished" for i, w in enumerate(WORDS)
    )
    assert LOG.compress(unique, _ctx(min_tokens=0)) is None  # nothing repeats


def test_does_not_store_when_it_declines() -> None:
    store = MemoryOriginalStore()
    unique = "\n".join(
        f"2024-05-01 12:00:{i % 60:02d} step {w} finished" for i, w in enumerate(WORDS)
    )
    assert LOG.compress(unique, _ctx(store, min_tokens=0)) is None
    assert len(store) == 0


WORDS = [letter * 3 for letter in "abcdefghijklmnopqrstuvwxyz"]  # 26 distinct words

_templates_st = st.lists(
    st.sampled_from(
        [
            "2024-05-01 12:00:{s:02d} INFO api: GET /v1/items/{n} 200 in {m} ms",
            "2024-05-01 12:00:{s:02d} DEBUG cache: hit key=user:{n} ttl={m}",
            "2024-05-01 12:00:{s:02d} WARN pool: {m} of 64 connections busy",
            "2024-05-01 12:00:{s:02d} INFO worker-{m}: job {n} done",
            "2024-05-01 12:00:{s:02d} ERROR db: deadlock detected on row {n}",
            "2024-05-01 12:00:{s:02d} INFO {w} subsystem ready",
        ]
    ),
    min_size=20,
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(_templates_st)
def test_property_cut_lines_are_recoverable_and_severe_lines_kept(shapes: list[str]) -> None:
    lines = [
        s.format(s=i % 60, n=i * 104729, m=i % 13, w=WORDS[i % len(WORDS)])
        for i, s in enumerate(shapes)
    ]
    text = "\n".join(lines)
    store = MemoryOriginalStore()
    result = LOG.compress(text, _ctx(store, min_tokens=0))
    if result is None:
        return
    assert count_tokens_text(result.text) <= 0.9 * count_tokens_text(text)
    out = result.text.splitlines()
    assert [x for x in out if " WARN " in x or " ERROR " in x] == [
        x for x in lines if " WARN " in x or " ERROR " in x
    ]
    _check_recoverable(text, result, store)
    again = LOG.compress(result.text, _ctx(min_tokens=0))
    assert again is None or again.text == result.text


# ---------------------------------------------------------------- detect

_PY = '''import os
from typing import Any


class Loader:
    """Load things."""

    def __init__(self, root: str) -> None:
        self.root = root

    def load(self, name: str) -> Any:
        path = os.path.join(self.root, name)
        if not os.path.exists(path):
            return None
        with open(path) as fh:
            return fh.read()
'''
_JS = """const express = require('express');
const app = express();

function handler(req, res) {
  const id = req.params.id;
  if (!id) {
    return res.status(400).send('missing id');
  }
  res.json({ id });
}

app.get('/items/:id', handler);
module.exports = app;
"""
_PROSE = (
    "The committee met on Tuesday to review the proposal. Members raised concerns about\n"
    "the timeline, and several asked whether the budget could absorb the new hires.\n"
    "After a long discussion the chair suggested a phased approach instead.\n"
)

POSITIVE = {
    "syslog": "\n".join(
        f"Jun 14 15:16:{i % 60:02d} combo sshd(pam_unix)[{19000 + i}]: check pass; user unknown"
        for i in range(40)
    ),
    "hdfs": "\n".join(
        f"081109 2036{i % 60:02d} {140 + i} INFO dfs.DataNode$PacketResponder: PacketResponder {i % 3} for block blk_{i * 7919} terminating"
        for i in range(40)
    ),
    "hpc": "\n".join(
        f"{134681 + i} node-{i % 50} unix.hw state_change.unavailable {1077804742 + i} 1 Component State Change: Component alt0 is in the unavailable state (HWID={1973 + i})"
        for i in range(40)
    ),
    "pytest": "============================= test session starts ==============================\n"
    + "\n".join(f"tests/test_mod_{i}.py::test_case PASSED [{i * 2}%]" for i in range(40))
    + "\n=========================== 40 passed in 0.42s ===========================",
    "cargo": "\n".join(f"   Compiling crate{i} v0.{i}.1" for i in range(40))
    + "\n    Finished dev [unoptimized] target(s) in 4.2s",
    "ninja": "\n".join(
        f"[{i}/40] Building CXX object src/CMakeFiles/core.dir/unit_{i}.cpp.o" for i in range(1, 41)
    ),
    "logcat": "\n".join(
        f"03-17 16:13:{i % 60:02d}.811  1702  2395 D WindowManager: freeze display {i}"
        for i in range(40)
    ),
}
NEGATIVE = {
    "json": "[\n"
    + ",\n".join(
        f'  {{"id": {i}, "ts": "2024-05-01T12:00:{i % 60:02d}Z", "level": "INFO"}}'
        for i in range(40)
    )
    + "\n]",
    "ndjson": "\n".join(
        f'{{"ts": "2024-05-01 12:00:{i % 60:02d}", "level": "INFO", "msg": "ok {i}"}}'
        for i in range(40)
    ),
    "python": _PY * 3,
    "javascript": _JS * 3,
    "numbered_code": "\n".join(
        f"{n:6d}\t{line}" for n, line in enumerate((_PY * 3).splitlines(), 1)
    ),
    "prose": _PROSE * 10,
    "csv": "ds,location_4,location_41\n"
    + "\n".join(f"2023-04-01 {i % 24:02d}:00:00,{i * 7 % 900},{i * 11 % 700}" for i in range(40)),
    "markdown_list": "\n".join(
        f"- `fixtures/log_compressor/{i * 7919:016x}.json` <- `tests/fixtures/{i}.json` ({900 + i} B)"
        for i in range(40)
    ),
    "diff": "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,40 +1,40 @@\n"
    + "\n".join(
        f"-old line {i}\n+2024-05-01 12:00:{i % 60:02d} INFO new line {i}" for i in range(30)
    ),
    "short_log": "\n".join(_info(i) for i in range(10)),
}


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_detects_logs_and_build_output(name: str) -> None:
    assert LOG.detect(POSITIVE[name])


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_does_not_detect_json_code_prose_tables_or_diffs(name: str) -> None:
    assert not LOG.detect(NEGATIVE[name])


def test_detect_on_real_non_logs(shared_data: Path) -> None:
    """Source code, tables (incl. Loghub's own parsed CSVs, one log record per row), JSON."""
    patterns = (
        "code_files/*/*.txt",
        "logs_loghub/*/*.csv",
        "metrics_prophet_timeseries/*.csv",
        "api_*/**/*.json",
    )
    files = sorted(f for pattern in patterns for f in shared_data.glob(pattern))
    if not files:
        pytest.skip(f"no code, CSV or JSON files under {shared_data}")
    assert [f.name for f in files if LOG.detect(f.read_text("utf-8"))] == []


# ---------------------------------------------------------------- loghub


@dataclass(frozen=True)
class SystemResult:
    system: str
    tokens_in: int
    tokens_out: int
    severe: tuple[int, int]  # (kept, total) lines whose Level is WARN or worse
    rare: tuple[int, int]  # (kept, total) lines whose EventTemplate occurs at most twice
    ms: float  # compress() time, exact token counting of the output included
    detected: bool

    @property
    def saving(self) -> float:
        return 1 - self.tokens_out / self.tokens_in


def _kept(need: Counter[str], out: Counter[str]) -> tuple[int, int]:
    return sum(min(n, out[line]) for line, n in need.items()), sum(need.values())


def evaluate_system(folder: Path) -> SystemResult:
    name = folder.name
    text = (folder / f"{name}_2k.log").read_text("utf-8")
    with open(folder / f"{name}_2k.log_structured.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    lines = text.splitlines()
    assert len(lines) == len(rows)
    counts = Counter(row["EventTemplate"] for row in rows)
    severe: Counter[str] = Counter()
    rare: Counter[str] = Counter()
    for row in rows:
        line = lines[int(row["LineId"]) - 1]
        severe[line] += row.get("Level", "").upper() in SEVERE_LEVELS
        rare[line] += counts[row["EventTemplate"]] <= 2
    count_tokens_text(text)  # the pipeline has counted the input already
    start = time.perf_counter()
    result = LOG.compress(text, _ctx())
    ms = (time.perf_counter() - start) * 1000
    out = text if result is None else result.text
    kept_lines = Counter(out.splitlines())
    return SystemResult(
        name,
        count_tokens_text(text),
        count_tokens_text(out),
        _kept(severe, kept_lines),
        _kept(rare, kept_lines),
        ms,
        LOG.detect(text),
    )


def loghub_table(root: Path) -> list[SystemResult]:
    return [evaluate_system(d) for d in sorted(root.iterdir()) if (d / f"{d.name}_2k.log").exists()]


def format_table(results: list[SystemResult]) -> str:
    def pct(kept_total: tuple[int, int]) -> str:
        kept, total = kept_total
        return f"{100 * kept / total:6.1f}% ({kept}/{total})" if total else "     - (0/0)"

    rows = [f"{'system':<11} {'saving':>7} {'warn+ kept':>19} {'rare kept':>17} {'ms':>6}"]
    rows += [
        f"{r.system:<11} {100 * r.saving:6.1f}% {pct(r.severe):>19} {pct(r.rare):>17} {r.ms:6.1f}"
        for r in results
    ]
    tin = sum(r.tokens_in for r in results)
    tout = sum(r.tokens_out for r in results)
    rows.append(f"{'TOTAL':<11} {100 * (1 - tout / tin):6.1f}%  ({tin} -> {tout} tokens)")
    return "\n".join(rows)


@pytest.fixture(scope="module")
def loghub(shared_data: Path) -> list[SystemResult]:
    root = shared_data / "logs_loghub"
    results = loghub_table(root) if root.exists() else []
    if not results:
        pytest.skip(f"no Loghub logs under {root}")
    print("\n" + format_table(results))
    return results


def test_loghub_keeps_every_warn_or_worse_line(loghub: list[SystemResult]) -> None:
    lost = {r.system: r.severe for r in loghub if r.severe[0] != r.severe[1]}
    assert lost == {}


def test_loghub_keeps_rare_lines(loghub: list[SystemResult]) -> None:
    kept = sum(r.rare[0] for r in loghub)
    total = sum(r.rare[1] for r in loghub)
    assert kept >= 0.95 * total, format_table(loghub)


def test_loghub_saves_tokens(loghub: list[SystemResult]) -> None:
    tin = sum(r.tokens_in for r in loghub)
    tout = sum(r.tokens_out for r in loghub)
    saving = 1 - tout / tin
    assert saving >= 0.40, format_table(loghub)
    assert all(r.tokens_out <= r.tokens_in for r in loghub)


def _check_accounted(text: str, result: Compressed) -> None:
    """Markers account for every cut line. (Loghub repeats identical lines, so which copy
    was kept is ambiguous and the exact check, _check_recoverable, cannot align them.)"""
    original = text.splitlines()
    out = result.text.splitlines()
    markers = [m for m in map(MARKER.match, out) if m]
    kept = [line for line in out if not MARKER.match(line)]
    assert not Counter(kept) - Counter(original)  # every kept line is an original line
    assert sum(int(m[1]) for m in markers) == result.dropped == len(original) - len(kept)
    for m in markers:
        count, example, first, last = (int(g) for g in m.groups()[:4])
        template = template_of(original[example - 1])
        span = original[first - 1 : last]
        assert template_of(span[0]) == template_of(span[-1]) == template
        assert count <= sum(1 for line in span if template_of(line) == template)


def test_loghub_is_detected_accounted_and_idempotent(
    loghub: list[SystemResult], shared_data: Path
) -> None:
    assert [r.system for r in loghub if not r.detected] == []
    for r in loghub:
        text = (shared_data / "logs_loghub" / r.system / f"{r.system}_2k.log").read_text("utf-8")
        first = LOG.compress(text, _ctx())
        assert first is not None
        _check_accounted(text, first)
        again = LOG.compress(first.text, _ctx())
        assert again is None or again.text == first.text, r.system


# ---------------------------------------------------------------- speed


PATHOLOGICAL = {
    "dashes": "\n".join("-" * 50_000 for _ in range(30)),
    "hex_letters": "\n".join("abcdef" * 10_000 for _ in range(30)),
    "hex_run_after_digit": "\n".join("1-" + "a" * 100_000 + "g" for _ in range(20)),
    "error_words": "\n".join("Error" * 20_000 for _ in range(20)),
    "blank_lines_then_frame": "\n" * 200_000 + "\tat a.b(C.java:1)\n" * 30,
    "quotes": "\n".join('"' * 50_000 for _ in range(30)),
    "long_words": "\n".join("x" * 100_000 + " 12 INFO" for _ in range(20)),
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_inputs_are_handled(name: str) -> None:
    """Inputs that once made the grouping superlinear (timed in bench_compressor_speed):
    handled, never grown."""
    text = PATHOLOGICAL[name]
    LOG.detect(text)
    result = LOG.compress(text, _ctx(min_tokens=0, count=_quick_count))
    assert result is None or _quick_count(result.text) < _quick_count(text)


def _quick_count(text: str) -> int:
    return len(text) // 4  # speed tests time the compressor, not the tokenizer


def build_log(size: int) -> str:
    """A CMake/ninja + pytest style build log of about ``size`` characters."""
    out: list[str] = [f"-- Detecting {lang} compiler ABI info - done" for lang in ("C", "CXX")]
    i = 0
    while i * 80 < size:  # about 80 characters per step
        i += 1
        out.append(
            f"[{i}/90000] Building CXX object src/mod{i % 40}/CMakeFiles/core.dir/unit_{i}.cpp.o"
        )
        if i % 97 == 0:
            out += [
                f"src/mod{i % 40}/unit_{i}.cpp:{i % 300}:5: warning: unused variable 'tmp{i}' [-Wunused-variable]",
                f"  {i % 300} |     int tmp{i} = 0;",
                "      |         ^",
            ]
        if i % 5 == 0:
            out.append(f"tests/test_unit_{i}.py::test_case_{i % 7} PASSED [{i % 100}%]")
    return "\n".join(out)[:size]


def test_a_large_build_log() -> None:
    text = build_log(1_700_000)  # timed in bench_compressor_speed
    result = LOG.compress(text, _ctx(min_tokens=0, count=_quick_count))
    assert result is not None and result.dropped > 10_000


if __name__ == "__main__":  # print the per-system table: python tests/core/test_log_compressor.py
    root = Path(__file__).resolve().parents[3] / "shared" / "data" / "logs_loghub"
    if not root.exists():
        sys.exit(f"no Loghub data at {root}")
    print(format_table(loghub_table(root)))  # timings: tests/benchmarks/bench_compressor_speed.py

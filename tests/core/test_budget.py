"""A budget is a hard cap: tool_profiles[tool]["max_tokens"] and ContentContext.budget_tokens
hold for every compressor, and fit_text cuts anything (a multi-MB colour build log, a log
of mostly unique lines) to fit, errors, query matches, head and tail last."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from headroom_core import HeadroomConfig, SmartCrusherConfig, compress
from headroom_core.ccr import MemoryOriginalStore, retrieve
from headroom_core.tokens import get_tokenizer
from headroom_core.transforms import fit_text
from headroom_core.transforms._content import ContentContext
from headroom_core.transforms._terminal import normalise
from headroom_core.transforms.router import ToolOutputRouter

TOK = get_tokenizer("gpt-4o")
COUNT = TOK.count_text
LOGS = Path(__file__).resolve().parents[1] / "data" / "build_logs"


def read(name: str) -> str:
    with (LOGS / name).open(encoding="utf-8", newline="") as fh:
        return fh.read()


def big_colour_log() -> str:
    """About 3 MB: the real pytest capture, run 70 times (test ids renumbered per run)."""
    raw = read("pytest_tty.log")
    return "".join(
        raw.replace("test_total_of_n_items[", f"test_total_of_n_items_run{k}[") for k in range(70)
    )


def unique_log() -> str:
    """Several MB of mostly unique lines (the standard library's source, numbered), with an
    ERROR line every 5,000 lines: template grouping cannot shrink it."""
    import argparse
    import dataclasses
    import decimal
    import difflib
    import email.message
    import logging
    import pathlib
    import tarfile
    import typing
    import zipfile

    mods = (argparse, dataclasses, decimal, difflib, email.message, logging, pathlib)
    source = "\n".join(inspect.getsource(m) for m in (*mods, tarfile, typing, zipfile))
    lines = []
    for i, line in enumerate(source.splitlines() * 3):
        lines.append(f"step {i}: {line}")
        if i % 5000 == 0:
            lines.append(f"ERROR: worker {i} failed: connection reset by peer")
    return "\n".join(lines)


def request(tool: str, text: str, question: str = "what went wrong?") -> list[dict]:
    return [
        {"role": "user", "content": question},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": tool, "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": text},
    ]


def orders(n: int) -> list[dict]:
    return [
        {
            "id": i,
            "status": "shipped" if i % 9 else "failed",
            "total": 10 + i % 13,
            "note": "x" * 30,
        }
        for i in range(n)
    ]


SAMPLES = {
    "json": json.dumps(orders(600), indent=2),
    "log": read("npm_install.log"),
    "build": read("cargo_test.log"),
    "search": "\n".join(
        f"src/mod{i % 40}/file{i}.py:{i}:    value = compute({i})" for i in range(900)
    ),
    "code": inspect.getsource(json.decoder) * 3,
    "text": " ".join(
        f"Paragraph {i} explains how the scheduler treats job {i} when the queue is full."
        for i in range(700)
    ),
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
@pytest.mark.parametrize("budget", [800, 150])
def test_tool_profile_max_tokens_is_a_hard_cap_for_every_compressor(kind: str, budget: int) -> None:
    text = SAMPLES[kind]
    assert COUNT(text) > 3 * budget
    cfg = HeadroomConfig(
        smart_crusher=SmartCrusherConfig(tool_profiles={"fetch": {"max_tokens": budget}})
    )
    out = compress(request("fetch", text), model="gpt-4o", config=cfg).messages[2]["content"]
    assert COUNT(out) <= budget, (kind, COUNT(out))
    assert "ref=" in out or '"ref"' in out


def test_json_under_a_budget_keeps_errors_first_and_stays_json() -> None:
    data = orders(600)
    store = MemoryOriginalStore()
    routed = fit_text(json.dumps(data, indent=2), 800, count=COUNT, store=store)
    assert routed.fits and routed.tokens is not None and routed.tokens <= 800
    out = json.loads(routed.text)  # still valid JSON
    text = json.dumps(out)
    assert '"failed"' in text  # error items are cut last
    ref = re.search(r'"ref": "([0-9a-f]{32})"', text)
    assert ref and json.loads(retrieve(ref.group(1), store=store)) == data


def test_a_multi_mb_colour_build_log_fits_with_every_error_line() -> None:
    text = big_colour_log()
    assert len(text) > 3_000_000
    errors = [line for line in normalise(text).splitlines() if re.match(r"^E {2,}|FAILED", line)]
    for budget in (100_000, 20_000):
        store = MemoryOriginalStore()
        routed = fit_text(text, budget, count=COUNT, query="why did the tests fail?", store=store)
        assert routed.fits and COUNT(routed.text) <= budget
        kept = set(routed.text.splitlines())
        assert all(line in kept for line in errors)
        assert "\x1b" not in routed.text
        ref = re.search(r"ref=([0-9a-f]{32})", routed.text)
        assert ref and retrieve(ref.group(1), store=store) == text


def test_a_log_of_unique_lines_is_cut_by_lines_errors_first() -> None:
    text = unique_log()
    assert len(text) > 2_000_000
    errors = [line for line in text.splitlines() if line.startswith("ERROR: worker")]
    for budget in (100_000, 5_000):
        store = MemoryOriginalStore()
        routed = fit_text(text, budget, count=COUNT, store=store)
        assert routed.fits and routed.compressor in ("cut", "log") and routed.lossy
        assert COUNT(routed.text) <= budget
        kept = set(routed.text.splitlines())
        assert all(line in kept for line in errors)
        gaps = re.findall(
            r"^\[\.\.\. (\d+) lines? omitted \(lines? (\d+)(?:-(\d+))?\); ref=", routed.text, re.M
        )
        assert (
            gaps
            and sum(int(n) for n, _, _ in gaps) + len(routed.text.splitlines()) - len(gaps)
            >= len(text.splitlines()) - 1
        )


def test_query_matches_and_the_ends_survive_a_tight_budget() -> None:
    lines = [
        f"2024-05-01 10:{i // 60:02d}:{i % 60:02d} INFO request {i} served in {i % 97} ms"
        for i in range(20_000)
    ]
    lines[12_345] = "2024-05-01 13:25:45 INFO request 12345 served by node-kestrel-7 in 4 ms"
    text = "\n".join(lines)
    routed = fit_text(text, 600, count=COUNT, query="which node is kestrel-7?")
    assert routed.fits
    assert lines[12_345] in routed.text and lines[0] in routed.text and lines[-1] in routed.text


def test_a_single_huge_line_is_cut_inside() -> None:
    text = "x" * 400_000
    routed = fit_text(text, 300, count=COUNT)
    assert routed.fits and COUNT(routed.text) <= 300 and "chars cut; ref=" in routed.text


def test_a_budget_smaller_than_a_marker_is_reported_not_hidden() -> None:
    routed = fit_text(read("npm_install.log"), 3, count=COUNT)
    assert not routed.fits and routed.tokens is not None and routed.tokens > 3


def test_text_already_within_budget_is_left_alone() -> None:
    routed = fit_text("short and sweet", 100, count=COUNT)
    assert routed.text == "short and sweet" and routed.fits and not routed.lossy


def test_route_with_a_budget_is_deterministic() -> None:
    text = read("maven_debug.log")
    cfg = SmartCrusherConfig()

    def once() -> str:
        store = MemoryOriginalStore()
        ctx = ContentContext(COUNT, cfg, store, "why?", "mvn", 1_000)
        routed = ToolOutputRouter(cfg, store=store).route(text, ctx)
        assert routed is not None
        return routed.text

    assert once() == once()

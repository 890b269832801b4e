"""Compaction points of a growing session: when the history is rewritten, what a rewrite
does, and that everything it takes out comes back by its ref."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest

from headroom_core import BudgetError, HeadroomConfig, compress
from headroom_core.ccr import MemoryOriginalStore, retrieve
from headroom_core.config import CompactionConfig, RollingWindowConfig
from headroom_core.messages import content_text, pairing_is_valid
from headroom_core.tokens import get_tokenizer
from headroom_core.transforms._compaction import Compactor, boundaries, pinned_indices
from headroom_core.transforms._session import compact, settings_for
from headroom_core.transforms._terminal import normalise

TOK = get_tokenizer("gpt-4o")
BUILD_LOGS = Path(__file__).resolve().parents[1] / "data" / "build_logs"
POINTER = re.compile(r"^\[headroom: superseded output .*ref=([0-9a-f]{32})\]$")


class Session:
    """A coding-agent history built one tool call at a time (Claude Code's tools)."""

    def __init__(self, task: str = "Fix the failing test in app.py") -> None:
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": task},
        ]

    def call(self, name: str, output: str, **args: Any) -> None:
        cid = f"c{len(self.messages)}"
        self.messages.append(
            {
                "role": "assistant",
                "content": f"Running {name}.",
                "tool_calls": [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                ],
            }
        )
        self.messages.append({"role": "tool", "tool_call_id": cid, "content": output})


def view(path: str, lines: int, salt: str = "") -> str:
    return "\n".join(
        f"{n:>6}→{path}:{salt} value_{n} = compute({n}, {n * 7})" for n in range(1, lines)
    )


def edit_loop(rounds: int, lines: int = 400) -> list[dict[str, Any]]:
    """Read a file, edit it, read it again, run the tests: stale reads pile up."""
    s = Session()
    for r in range(rounds):
        path = f"/src/mod{r % 3}.py"
        s.call("Read", view(path, lines, str(r)), file_path=path)
        s.call("Edit", f"The file {path} has been updated.", file_path=path, old_string="x")
        s.call("Bash", f"{r} passed, 1 failed\nFAILED test_{r}", command="pytest -q")
    return s.messages


def plan(messages: list[dict[str, Any]], model: str = "gpt-4o", **cfg: Any) -> Any:
    settings = settings_for(RollingWindowConfig(), CompactionConfig(**cfg), model, None)
    return Compactor(messages, get_tokenizer(model), settings).plan()


def test_boundaries_are_the_model_calls() -> None:
    msgs = edit_loop(2)
    # before each assistant message that follows a user or tool message, and the end
    assert boundaries(msgs) == [2, 4, 6, 8, 10, 12, 14] and len(msgs) == 14
    assert pinned_indices(msgs, keep_system=True) == {0, 1}


def test_a_compaction_is_made_when_it_pays_for_its_cache_write() -> None:
    msgs = edit_loop(12)
    paid = plan(msgs, horizon_requests=12, min_saving_tokens=2000)
    assert [kind for _b, kind in paid.points] and all(k == "collapse" for _b, k in paid.points)
    assert paid.collapsed  # stale reads and the repeated command became pointers
    assert not plan(msgs, min_saving_tokens=10**9).points  # under the threshold: never
    off = plan(msgs, enabled=False)
    assert not off.points
    cheap_cache = plan(msgs, model="gpt-4o", horizon_requests=12, min_saving_tokens=2000)
    dear_cache = plan(msgs, model="claude-sonnet-4-5", horizon_requests=12, min_saving_tokens=2000)
    # Anthropic charges 1.25x to write and 0.1x to read: a rewrite must save more to pay
    assert len(dear_cache.points) <= len(cheap_cache.points)


def test_between_compaction_points_every_request_extends_the_previous_one() -> None:
    msgs = edit_loop(12)
    config = HeadroomConfig(compaction=CompactionConfig(min_saving_tokens=2000))
    previous: list[dict[str, Any]] | None = None
    rewrites = 0
    for end in boundaries(msgs):
        out = compress(msgs[:end], model="gpt-4o", config=config).messages
        assert compress(msgs[:end], model="gpt-4o", config=config).messages == out
        if previous is not None and out[: len(previous)] != previous:
            rewrites += 1
        previous = out
    points = plan(msgs[: boundaries(msgs)[-1]], min_saving_tokens=2000).points
    assert 0 < rewrites <= len(points)


def test_every_pointer_retrieves_the_exact_original() -> None:
    msgs = edit_loop(10)
    tail = Session()
    tail.call("Read", view("/src/mod0.py", 400, "final"), file_path="/src/mod0.py")
    msgs += tail.messages[2:]
    store = MemoryOriginalStore()
    settings = settings_for(RollingWindowConfig(), CompactionConfig(), "gpt-4o", None)
    out, p = compact(
        msgs, settings, TOK, store=store, crusher=HeadroomConfig().smart_crusher,
        query_for=lambda i: None,
    )  # fmt: skip
    assert p.collapsed
    for i, m in enumerate(out):
        found = POINTER.match(content_text(m))
        if found:
            assert retrieve(found.group(1), store=store) == msgs[i]["content"]
        else:
            assert m == msgs[i]
    assert pairing_is_valid(out)
    assert TOK.count_messages(out) < TOK.count_messages(msgs)
    reads = [i for i, m in enumerate(out) if m["role"] == "tool" and "→" in m["content"]]
    assert reads and reads[-1] > max(p.collapsed)  # the newest read of each file stays whole


def test_frozen_messages_are_never_compacted() -> None:
    msgs = edit_loop(10)
    config = HeadroomConfig(compaction=CompactionConfig(min_saving_tokens=2000))
    r = compress(msgs, model="gpt-4o", config=config, frozen_message_count=len(msgs) - 2)
    assert all(a is b for a, b in zip(r.messages[:-2], msgs[:-2], strict=False))


def test_the_task_and_a_summary_are_pinned() -> None:
    s = Session("This session is being continued from a previous conversation. Summary: ...")
    for k in range(30):
        s.call("Bash", f"step {k}\n" + "log line\n" * 200, command=f"make step{k}")
        s.messages.append({"role": "user", "content": f"next step {k} " + "please " * 80})
    window = TOK.count_messages(s.messages) // 3
    out = compress(s.messages, model="gpt-4o", max_tokens=window).messages
    first = next(m for m in out if m["role"] != "system")
    assert first == s.messages[1]  # the summary (here the task) stays first
    assert len(out) < len(s.messages) and TOK.count_messages(out) <= window - 4000


def _maven_x40() -> str:
    return (BUILD_LOGS / "maven_debug.log").read_text(encoding="utf-8") * 40


def _unique_lines() -> str:
    import argparse
    import dataclasses
    import decimal
    import difflib
    import logging
    import tarfile
    import zipfile

    mods = (argparse, dataclasses, decimal, difflib, logging, tarfile, zipfile)
    source = "\n".join(inspect.getsource(m) for m in mods) * 3
    out = []
    for i, line in enumerate(source.splitlines()):
        out.append(f"step {i}: {line}")
        if i % 5000 == 0:
            out.append(f"ERROR: worker {i} failed: connection reset by peer")
    return "\n".join(out)


@pytest.mark.parametrize("build", [_maven_x40, _unique_lines], ids=["colour-maven", "unique"])
def test_a_multi_megabyte_log_fits_gpt_4o_with_every_error_line(build: Any) -> None:
    text = build()
    assert len(text) > 2_000_000
    s = Session("The build failed. Which errors does the log report?")
    s.call("Bash", text, command="mvn -X install")
    try:
        result = compress(s.messages, model="gpt-4o")
    except BudgetError as exc:  # pragma: no cover - the failure being tested for
        pytest.fail(f"BudgetError: {exc}")
    assert result.tokens_after <= 128_000 - 4_000
    shown = set(result.messages[-1]["content"].splitlines())
    errors = [
        line
        for line in normalise(text).splitlines()
        if re.search(r"^\[ERROR\]|^ERROR|BUILD FAILURE", line)
    ]
    assert errors and all(line in shown for line in errors)
    refs = re.findall(r"ref\W+([0-9a-f]{32})", result.messages[-1]["content"])
    assert text in {retrieve(ref) for ref in refs}  # the whole log comes back


def test_a_real_session_replays_within_the_contract(coding_sessions: list) -> None:
    name, messages = min(coding_sessions, key=lambda s: len(json.dumps(s[1])))
    ends = boundaries(messages)[:40]
    previous = None
    for end in ends:
        request = messages[:end]
        result = compress(request, model="gpt-4o")
        out = result.messages
        assert pairing_is_valid(out, allow_pending=True), (name, end)
        said = [m for m in request if m["role"] in ("user", "assistant")]
        assert [m for m in out if m["role"] in ("user", "assistant")] == said, (name, end)
        if previous is not None and out[: len(previous)] != previous:
            assert any(t.startswith("superseded:") for t in result.transforms_applied)
        previous = out

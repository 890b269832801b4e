"""Coding-agent tool outputs at first sight (real Claude Code sessions in
../shared/data/conversations_coding_agents): file views keep every character the agent
edits against, command output is compressed deterministically, and the terminal
normaliser and file-view gutter are exact."""

from __future__ import annotations

import json
from typing import Any

import pytest

from headroom_core import SmartCrusherConfig
from headroom_core.ccr import MemoryOriginalStore
from headroom_core.tokens import get_tokenizer
from headroom_core.transforms import _file_view
from headroom_core.transforms._content import ContentContext
from headroom_core.transforms._terminal import normalise
from headroom_core.transforms.router import ToolOutputRouter

from ..conftest import SHARED_DATA

TOK = get_tokenizer("gpt-4o")
SESSIONS = SHARED_DATA / "conversations_coding_agents"


def tool_outputs() -> list[tuple[str, str, str]]:
    """(tool name, preceding user text, output) of every tool result of every session."""
    if not SESSIONS.is_dir():
        pytest.skip(f"{SESSIONS} not found")
    out = []
    for path in sorted(SESSIONS.glob("*.json")):
        messages: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
        names = {
            c["id"]: c["function"]["name"] for m in messages for c in m.get("tool_calls") or ()
        }
        user = ""
        for m in messages:
            if m["role"] == "user" and isinstance(m["content"], str):
                user = m["content"]
            if m["role"] == "tool" and isinstance(m["content"], str):
                out.append((names.get(m["tool_call_id"], "?"), user, m["content"]))
    return out


def route(text: str, tool: str, query: str | None = None) -> str:
    cfg = SmartCrusherConfig()
    store = MemoryOriginalStore()
    ctx = ContentContext(TOK.count_text, cfg, store, query, tool)
    routed = ToolOutputRouter(cfg, store=store).route(text, ctx)
    return text if routed is None else routed.text


def test_read_results_keep_every_line_of_the_file() -> None:
    reads = [(t, q, o) for t, q, o in tool_outputs() if t in ("Read", "Edit", "Write")]
    assert len(reads) > 100
    before = after = 0
    for tool, query, text in reads:
        out = route(text, tool, query)
        if _file_view.is_file_view(text):
            assert _file_view.decode(out) == text  # lossless: only the gutter's padding went
        else:
            assert out == text
        before += TOK.count_text(text)
        after += TOK.count_text(out)
    assert after < 0.9 * before


def test_command_output_compresses_to_the_same_bytes_every_time() -> None:
    outputs = [(t, q, o) for t, q, o in tool_outputs() if t in ("Bash", "TaskOutput", "Task")]
    assert len(outputs) > 100
    for tool, query, text in outputs:
        first = route(text, tool, query)
        assert route(text, tool, query) == first
        assert TOK.count_text(first) <= TOK.count_text(text)


def test_failures_in_test_output_are_kept_whole() -> None:
    runs = [o for t, _, o in tool_outputs() if t == "Bash" and "tests," in o and "failure" in o]
    assert runs
    for text in runs:
        out = route(text, "Bash")
        for line in text.splitlines():
            if line.lstrip()[:3].rstrip(")").isdigit() and ") test " in line:
                assert line in out  # the header of each failure report


def test_file_view_gutter_round_trips() -> None:
    view = "The file a.py has been updated:\n     1\u2192import os\n     2\u2192\n    10\u2192x = 1"
    enc = _file_view.encode(view)
    assert enc == "The file a.py has been updated:\n1\u2192import os\n2\u2192\n10\u2192x = 1"
    assert _file_view.decode(enc) == view
    assert _file_view.encode("  1\u2192a\n  2\u2192b") is None  # another width: not reversible


def test_terminal_normalisation() -> None:
    assert normalise("\x1b[1;34mINFO\x1b[m done") == "INFO done"
    assert normalise("10%\r50%\r100%\nnext") == "100%\nnext"
    assert normalise("\u2819\x1b[1G\x1b[0Knpm http fetch\r\n") == "npm http fetch\r\n"
    assert normalise("loading...\rok") == "okading..."  # overwritten, not erased
    assert normalise("a\r\nb") == "a\r\nb"  # a CRLF is a line end, not a redraw
    plain = "no escapes here\n"
    assert normalise(plain) is plain


def test_escape_only_output_is_normalised_and_marked() -> None:
    text = "\x1b[32m\u2713\x1b[39m all 12 checks passed\n" * 3
    out = route(text, "Bash")
    assert out == "\u2713 all 12 checks passed\n" * 3

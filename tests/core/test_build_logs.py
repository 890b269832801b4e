"""Real colour build and test logs (tests/data/build_logs, see NOTE.md there): escapes and
redraws resolved, passing lines grouped by template, every error line kept verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from headroom_core import SmartCrusherConfig
from headroom_core.ccr import MemoryOriginalStore, retrieve
from headroom_core.tokens import get_tokenizer
from headroom_core.transforms._content import ContentContext
from headroom_core.transforms._terminal import needs_normalising, normalise
from headroom_core.transforms.router import ToolOutputRouter

TOK = get_tokenizer("gpt-4o")
LOGS = sorted((Path(__file__).resolve().parents[1] / "data" / "build_logs").glob("*.log"))
QUESTION = "The build failed. Which errors and failures does this output report, and why?"
# Lines that report an error, as a terminal shows them (written apart from the compressor).
ERROR = re.compile(
    r"(?<![\w-])(?:error|errors|fail|failed|failure|failures|panic|panicked|exception|fatal)"
    r"(?![\w-])|^\s*E {2,}\S|^\s*[\u25cf\u2715] |^--- FAIL",
    re.IGNORECASE,
)


def read(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as fh:
        return fh.read()


def route(text: str, store: MemoryOriginalStore, budget: int | None = None) -> str:
    cfg = SmartCrusherConfig()
    router = ToolOutputRouter(cfg, store=store)
    ctx = ContentContext(TOK.count_text, cfg, store, QUESTION, "run_build", budget)
    routed = router.route(text, ctx)
    return text if routed is None else routed.text


def test_the_logs_are_real_colour_captures() -> None:
    assert len(LOGS) >= 10
    assert sum(needs_normalising(read(p)) for p in LOGS) >= 9
    tools = {p.stem.split("_")[0] for p in LOGS}
    assert {"cargo", "npm", "pip", "pytest", "maven", "jest", "go"} <= tools


def test_normalising_keeps_every_line_and_removes_every_escape() -> None:
    for path in LOGS:
        raw = read(path)
        shown = normalise(raw)
        assert shown.count("\n") == raw.count("\n"), path.name
        assert "\x1b" not in shown, path.name
    pytest_log = normalise(read(next(p for p in LOGS if p.name == "pytest_tty.log")))
    assert "collected 423 items" in pytest_log and "collecting ..." not in pytest_log


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.name)
def test_every_error_line_is_kept_verbatim_and_the_ref_gives_back_the_capture(path: Path) -> None:
    raw = read(path)
    store = MemoryOriginalStore()
    out = route(raw, store)
    assert "\x1b" not in out
    shown = normalise(raw).splitlines()
    errors = [line for line in shown if ERROR.search(line)]
    kept = set(out.splitlines())
    missing = [line for line in errors if line not in kept]
    assert not missing, missing[:3]
    for ref in set(re.findall(r"ref=([0-9a-f]{32})", out)):
        assert retrieve(ref, store=store) == raw


def test_colour_build_logs_save_at_least_30_percent_in_total() -> None:
    store = MemoryOriginalStore()
    before = sum(TOK.count_text(read(p)) for p in LOGS)
    after = sum(TOK.count_text(route(read(p), store)) for p in LOGS)
    assert after <= 0.7 * before, (before, after)


@pytest.mark.parametrize(
    "name, passing",
    [
        ("cargo_test.log", r"^test tests::\w+ \.\.\. ok$"),
        ("pytest_tty.log", r"::test_total_of_n_items\[\d+\] PASSED"),
        ("jest.log", r"^\s+\u2713 qty \d+ at price 3"),
        ("go_test.log", r"^--- PASS: TestTotal\d+"),
        ("npm_install.log", r"^npm http fetch GET 200 "),
    ],
)
def test_passing_lines_are_collapsed(name: str, passing: str) -> None:
    raw = read(next(p for p in LOGS if p.name == name))
    out = route(raw, MemoryOriginalStore())
    pattern = re.compile(passing, re.M)
    assert len(pattern.findall(out)) <= 0.2 * len(pattern.findall(normalise(raw)))
    assert re.search(r"^\[\.\.\. \d+ more lines like line \d+ omitted", out, re.M)


def test_compressing_twice_changes_nothing() -> None:
    store = MemoryOriginalStore()
    for path in LOGS:
        once = route(read(path), store)
        assert route(once, store) == once, path.name

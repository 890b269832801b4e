"""SearchCompressor, TextCompressor and the shared detectors (diff, trace, search, prose).

Real inputs, read in place from ../shared/data (tests skip when it is absent): grep output
made by running a grep over the real source files in code_files/, tool messages of the
SWE-agent / OpenHands conversations, Loghub logs and READMEs, API JSON fixtures, NQ-Open
passages (qa_lost_in_the_middle) and headroom's fidelity_golden and content_detector
fixtures. ``python -m tests.core.test_text_compressors`` prints the NQ retention table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_core.ccr import MemoryOriginalStore
from headroom_core.config import SmartCrusherConfig
from headroom_core.tokens import count_tokens_text
from headroom_core.transforms._content import ContentContext
from headroom_core.transforms._detect import (
    is_diff,
    is_prose,
    is_search_output,
    is_stack_trace,
    parse_search,
)
from headroom_core.transforms.search_compressor import CUT_ABOVE, MAX_KEPT, SearchCompressor
from headroom_core.transforms.text_compressor import MAX_PROSE_TOKENS, TextCompressor

from ..conftest import SHARED_DATA, load_conversations

SEARCH = SearchCompressor()
TEXT = TextCompressor()
COUNT = count_tokens_text
FILE_MARKER = re.compile(
    r"^  \[\.\.\. (\d+) more (?:match|matches|entry|entries)\b.*; ref=(\w+)\]$"
)
SUMMARY = re.compile(r"^\[\.\.\. (\d+) more (?:match|matches|entry|entries) in .*; ref=(\w+)\]$")
TEXT_MARKER = re.compile(r"\[\.\.\. (\d+) sentences? omitted; ref=([0-9a-f]{32})\]")


class CountingStore(MemoryOriginalStore):
    """A memory store that counts its puts."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[tuple[str, str]] = []

    def put(
        self,
        original: str,
        *,
        tool: str | None = None,
        kind: str = "json",
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        self.puts.append((kind, original))
        return super().put(original, tool=tool, kind=kind, meta=meta)


class OwnRefStore(CountingStore):
    """A store whose refs are not content hashes."""

    def put(
        self,
        original: str,
        *,
        tool: str | None = None,
        kind: str = "json",
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        super().put(original, tool=tool, kind=kind, meta=meta)
        return "0123456789abcdef"


def _ctx(
    query: str | None = None,
    budget: int | None = None,
    store: MemoryOriginalStore | None = None,
    count: Callable[[str], int] = COUNT,
) -> ContentContext:
    return ContentContext(
        count=count,
        config=SmartCrusherConfig(),
        store=store if store is not None else CountingStore(),
        query=query,
        tool_name="grep",
        budget_tokens=budget,
    )


# ---- inputs ------------------------------------------------------------------------------

GIT_DIFF = """diff --git a/tests/missing_colon.py b/tests/missing_colon.py
index 20edef5..f55e657 100755
--- a/tests/missing_colon.py
+++ b/tests/missing_colon.py
@@ -1,10 +1,11 @@
 #!/usr/bin/env python3
-def division(a: float, b: float) -> float
+def division(a: float, b: float) -> float:
     return a/b
"""
COMBINED_DIFF = (
    "diff --cc merged.py\n--- a/merged.py\n+++ b/merged.py\n@@@ -1,4 -1,4 +1,5 @@@\n  x\n"
)
BARE_HUNK = "Changes:\n@@ -12,7 +12,8 @@ def handler(event):\n-    return None\n+    return event\n"
PY_TRACE = """Traceback (most recent call last):
  File "/pydicom/reproduce_bug.py", line 17, in <module>
    result = np.array_equal(ds.pixel_array, pixel_array)
ValueError: The length of the pixel data is 100 but 400 was expected
"""
JAVA_TRACE = """Exception in thread "main" java.lang.NullPointerException
\tat com.example.PaymentService.charge(PaymentService.java:88)
\tat com.example.Checkout.run(Checkout.java:41)
\tat java.base/java.lang.Thread.run(Thread.java:829)
"""
NODE_TRACE = """TypeError: Cannot read properties of undefined (reading 'id')
    at handler (/srv/app/routes/items.js:14:22)
    at Layer.handle [as handle_request] (/srv/app/node_modules/express/lib/router/layer.js:95:5)
    at /srv/app/node_modules/express/lib/router/index.js:284:15
"""
GO_PANIC = """panic: runtime error: index out of range [3] with length 3

goroutine 1 [running]:
main.lookup(...)
\t/home/u/app/main.go:12 +0x1d
main.main()
\t/home/u/app/main.go:7 +0x25
exit status 2
"""
RUST_PANIC = "thread 'main' panicked at src/main.rs:4:5:\nindex out of bounds\nnote: run with RUST_BACKTRACE=1\n"
RUBY_TRACE = (
    "app.rb:3:in `divide': divided by 0 (ZeroDivisionError)\n"
    "\tfrom app.rb:7:in `calc'\n\tfrom app.rb:10:in `<main>'\n"
)
PROSE = (
    "The committee met on Tuesday to review the proposal. Members raised several concerns "
    "about the timeline and the budget. After a long discussion, they agreed to postpone "
    "the vote until the next meeting.\n\nThe chair thanked everyone for their patience."
)
GREP_N = """src/app/handlers.py:12:def handle(event):
src/app/handlers.py:40:    return handle(event.child)
src/app/routes.py:7:from .handlers import handle
src/app/routes.py:31:    app.route("/x")(handle)
"""
RG_VIMGREP = "src/a.py:3:5:import os\nsrc/a.py:9:1:import sys\nsrc/b.py:1:1:import re\n"
RG_HEADING = "src/a.py\n3:import os\n9:import sys\n\nsrc/b.py\n1:import re\n2-# context\n"
GREP_CONTEXT = "src/a-1.py-2-before\nsrc/a-1.py:3:match one\nsrc/a-1.py-4-after\n--\nsrc/b.py:9:match two\nsrc/b.py:12:match three\n"
GREP_PLAIN = "src/app/a.py:import os\nsrc/app/b.py:import sys\nlib/util/c.py:import re\n"
FIND = "./src\n./src/app\n./src/app/a.py\n./src/app/b.py\n./src/lib/c.py\n./tests/test_a.py\n"
NOT_SEARCH = {
    "gcc": "src/a.c:3:5: error: expected ';'\nsrc/a.c:9:1: warning: unused\nsrc/b.c:1:1: error: x\n",
    "mypy": "a.py:12: error: Incompatible types\nb.py:3: error: Name 'x' is not defined\nc.py:9: note: see\n",
    "ruff": "a.py:1:1: F401 `os` imported but unused\na.py:2:1: E501 Line too long\nb.py:3:1: F841 x\n",
    "cat -n": "     1\timport os\n     2\timport sys\n     3\t\n     4\tdef main():\n     5\t    pass\n",
    "sweagent view": "[File: /r/a.py (3 lines total)]\n1:import os\n2:import sys\n3:print(os)\n",
    "grep one file": "78:buildDir := $(srcDir)/build\n81:outDir := x\n86:libsSrcDir := $(srcDir)/lib\n",
    "grep -c": "src/app/a.py:3\nsrc/app/b.py:0\nsrc/lib/c.py:12\n",
    "ls -la": "total 8\ndrwxr-xr-x 2 root root 4096 Jul 17 .\n-rw-r--r-- 1 root root 61 Jul 17 Dockerfile\n",
    "times": "12:30:45 started\n12:30:46 running step one\n12:30:47 done\n13:00:01 idle\n",
    "yaml": "name: web\nimage: nginx:1.25\nports: 80\nreplicas: 3\n",
    "json": '{"a": 1, "b": [1, 2, 3]}',
    "prose": PROSE,
}


def _code_files() -> list[Path]:
    files = sorted((SHARED_DATA / "code_files").glob("*/*.txt"))
    if not files:
        pytest.skip(f"no code files under {SHARED_DATA / 'code_files'}")
    return files


def _grep(files: list[Path], pattern: str, *, column: bool = False, context: int = 0) -> str:
    """What ``grep -rn`` (``rg --vimgrep`` with ``column``, ``-C`` with ``context``) prints
    for ``pattern`` over ``files``, paths relative to code_files/."""
    rx = re.compile(pattern)
    out: list[str] = []
    for f in files:
        name = f.relative_to(SHARED_DATA / "code_files").as_posix()
        lines = f.read_text("utf-8").split("\n")
        hits = [i for i, line in enumerate(lines) if rx.search(line)]
        shown = sorted(
            {j for i in hits for j in range(i - context, i + context + 1)} & set(range(len(lines)))
        )
        for k, i in enumerate(shown):
            if context and k and i != shown[k - 1] + 1:
                out.append("--")
            if i in hits:
                m = rx.search(lines[i])
                assert m is not None
                col = f"{m.start() + 1}:" if column else ""
                out.append(f"{name}:{i + 1}:{col}{lines[i]}")
            else:
                out.append(f"{name}-{i + 1}-{lines[i]}")
    return "\n".join(out)


def _tool_texts() -> list[str]:
    return [
        m["content"]
        for _, messages in load_conversations()
        for m in messages
        if m.get("role") == "tool" and isinstance(m.get("content"), str) and m["content"].strip()
    ]


def _nq_docs(position: int, limit: int) -> Iterator[tuple[dict[str, Any], str]]:
    path = (
        SHARED_DATA
        / "qa_lost_in_the_middle"
        / "derived"
        / f"nq_multidoc_20docs_gold_at_{position}.jsonl"
    )
    if not path.exists():
        pytest.skip(f"{path} not found")
    with path.open(encoding="utf-8") as f:
        for _, line in zip(range(limit), f, strict=False):
            case = json.loads(line)
            text = "\n\n".join(
                f"Document [{k + 1}](Title: {c['title']}) {c['text']}"
                for k, c in enumerate(case["ctxs"])
            )
            yield case, text


def _long_prose(paragraphs: int = 40) -> str:
    """Plain prose well over MAX_PROSE_TOKENS: paragraphs of distinct, ordinary sentences."""
    topics = ["harbour", "library", "orchard", "railway", "observatory", "market", "bridge", "mill"]
    paras = []
    for p in range(paragraphs):
        t = topics[p % len(topics)]
        paras.append(
            f"The {t} of district {p} opened to the public after years of planning. "
            f"Residents described the {t} as a welcome change to the neighbourhood. "
            f"Local historians noted that an older {t} had stood nearby in the last century. "
            f"Funding came from a mix of municipal grants and private donations. "
            f"Visitors are asked to respect the posted hours and to leave no litter behind."
        )
    return "\n\n".join(paras)


def _ungroup(out: str) -> set[tuple[str, int, str]]:
    """(path, line, text) of every result in a grouped output (numbered modes)."""
    found: set[tuple[str, int, str]] = set()
    path = ""
    for line in out.split("\n"):
        if not line.startswith("  "):
            path = line
            continue
        m = re.fullmatch(r"  ([\d,]+)(?::\d+)?[:-](?: (.*))?", line)
        if m:
            for n in m[1].split(","):
                found.add((path, int(n), m[2] or ""))
    return found


# ---- detectors ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [GIT_DIFF, COMBINED_DIFF, BARE_HUNK, "Output:\n" + GIT_DIFF])
def test_is_diff_finds_unified_and_combined_diffs_anywhere(text: str) -> None:
    assert is_diff(text)
    assert not is_search_output(text) and not is_prose(text)


@pytest.mark.parametrize(
    "text",
    [PROSE, GREP_N, "---\ntitle: x\n---\nbody", "a -1,2 +3,4 b", "x = y @@ -1 +1 @@", PY_TRACE],
)
def test_is_diff_rejects_text_without_a_diff(text: str) -> None:
    assert not is_diff(text)


@pytest.mark.parametrize(
    "text",
    [PY_TRACE, JAVA_TRACE, NODE_TRACE, GO_PANIC, RUST_PANIC, RUBY_TRACE, "log line\n" + PY_TRACE],
)
def test_is_stack_trace_finds_traces_of_each_language(text: str) -> None:
    assert is_stack_trace(text)
    assert not is_search_output(text) and not is_prose(text)


@pytest.mark.parametrize(
    "text",
    [
        PROSE,
        GREP_N,
        GIT_DIFF,
        "We looked at the Traceback (most recent call last) header in the docs.",
        "Meet me\n  at home (after six)\n  at the station (platform 2)",
        "panic: not really, it was a drill",
    ],
)
def test_is_stack_trace_rejects_text_without_a_trace(text: str) -> None:
    assert not is_stack_trace(text)


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        (GREP_N, "numbered"),
        (RG_VIMGREP, "numbered"),
        (GREP_CONTEXT, "numbered"),
        (RG_HEADING, "heading"),
        (GREP_PLAIN, "plain"),
        (FIND, "paths"),
    ],
)
def test_search_output_is_parsed_in_each_mode(text: str, mode: str) -> None:
    listing = parse_search(text)
    assert listing is not None and listing.mode == mode
    assert is_search_output(text) and not is_prose(text)


def test_search_parse_reads_columns_context_lines_and_dashed_paths() -> None:
    vim = parse_search(RG_VIMGREP)
    assert vim is not None
    assert [(r.path, r.line, r.col, r.text) for r in vim.records][0] == (
        "src/a.py",
        3,
        5,
        "import os",
    )
    ctx = parse_search(GREP_CONTEXT)
    assert ctx is not None
    assert [(r.path, r.line, r.context) for r in ctx.records][:3] == [
        ("src/a-1.py", 2, True),
        ("src/a-1.py", 3, False),
        ("src/a-1.py", 4, True),
    ]
    grep = parse_search("a/x.py:1:12:30 is not a column\na/x.py:2:y\na/y.py:3:z\n")
    assert grep is not None and grep.records[0].col is None
    assert grep.records[0].text == "12:30 is not a column"


@pytest.mark.parametrize("name", sorted(NOT_SEARCH))
def test_search_detector_rejects_lookalikes(name: str) -> None:
    assert not is_search_output(NOT_SEARCH[name])


@pytest.mark.parametrize(
    "text",
    [
        PROSE,
        "Just some prose text without any structure or special markers.",
        "# Heading\n\nA paragraph of ordinary prose follows the heading here. It has two sentences.",
    ],
)
def test_is_prose_accepts_plain_prose(text: str) -> None:
    assert is_prose(text)


@pytest.mark.parametrize(
    "text",
    [
        GIT_DIFF,
        PY_TRACE,
        JAVA_TRACE,
        GREP_N,
        FIND,
        '{"msg": "The committee met on Tuesday. Members raised concerns about it."}',
        '[{"a": "one sentence here."}, {"b": "another sentence here."}]',
        "def f(x):\n    return x + 1\n\nclass A:\n    pass\n",
        "2024-05-01 12:00:01 INFO server started on port 8080 with four workers.\n" * 5,
        "ls: cannot access 'src/lib': No such file or directory",
        "",
        "   \n\t\n",
    ],
)
def test_is_prose_rejects_structured_text(text: str) -> None:
    assert not is_prose(text)


def test_detectors_on_real_data(shared_data: Path) -> None:
    code = [p.read_text("utf-8") for p in _code_files()]
    logs = [p.read_text("utf-8") for p in sorted((shared_data / "logs_loghub").glob("*/*_2k.log"))]
    readmes = [
        p.read_text("utf-8") for p in sorted((shared_data / "logs_loghub").glob("*/README.md"))
    ]
    jsons = [p.read_text("utf-8") for p in sorted(shared_data.glob("api_*/**/*.json"))[:80]]
    nq = [text for _, text in _nq_docs(9, 30)]
    assert code and logs and readmes and jsons
    for kind, texts in {"code": code, "log": logs, "json": jsons}.items():
        assert not any(is_prose(t) for t in texts), kind
        assert not any(is_search_output(t) for t in texts), kind
        assert not any(is_diff(t) or is_stack_trace(t) for t in texts), kind
    assert all(is_prose(t) for t in readmes + nq)
    assert not any(is_search_output(t) for t in readmes + nq)
    assert is_search_output(_grep(_code_files(), r"\bdef "))


def test_detectors_on_real_tool_messages(shared_data: Path) -> None:
    """SWE-agent / OpenHands / mini-swe-agent tool outputs: the diff and the two Python
    tracebacks among them are found; file views, build output, apt output and error
    one-liners are neither prose nor search output."""
    texts = _tool_texts()
    if not texts:
        pytest.skip("no conversations")
    diffs = [t for t in texts if is_diff(t)]
    traces = [t for t in texts if is_stack_trace(t)]
    assert len(diffs) == 1 and diffs[0].startswith("diff --git a/tests/missing_colon.py")
    assert len(traces) == 2 and all("Traceback (most recent call last):" in t for t in traces)
    assert [t[:60] for t in texts if is_prose(t)] == []
    assert [t[:60] for t in texts if is_search_output(t)] == []


def test_detectors_agree_with_headroom_content_detector_fixtures(shared_data: Path) -> None:
    folder = shared_data / "headroom_fixtures" / "parity_fixtures" / "content_detector"
    cases = [json.loads(p.read_text("utf-8")) for p in sorted(folder.glob("*.json"))]
    if not cases:
        pytest.skip(f"no fixtures in {folder}")
    seen = set()
    for case in cases:
        text, kind = case["input"], case["output"]["content_type"]
        seen.add(kind)
        if kind == "search":
            assert is_search_output(text)
        if kind == "diff":
            assert is_diff(text)
        if kind in ("source_code", "json_array", "build", "html"):
            assert not is_prose(text) and not is_search_output(text), (kind, text[:60])
    assert {"search", "diff", "source_code"} <= seen


# ---- SearchCompressor --------------------------------------------------------------------


def test_search_grouping_is_lossless_and_dedupes(shared_data: Path) -> None:
    raw = _grep(_code_files(), r"return None|raise ")
    doubled = raw + "\n" + raw  # the same search run twice
    listing = parse_search(doubled)
    assert listing is not None and len(listing.records) <= CUT_ABOVE * 2
    store = CountingStore()
    result = SEARCH.compress(doubled, _ctx(store=store))
    assert result is not None and not result.lossy and result.refs == () and result.dropped == 0
    assert store.puts == []  # nothing cut, nothing stored
    expected = {(r.path, r.line or 0, r.text) for r in listing.records}
    assert _ungroup(result.text) == expected
    for path in {r.path for r in listing.records}:
        assert result.text.count(f"\n{path}\n") + result.text.startswith(path + "\n") == 1
    assert COUNT(result.text) < 0.6 * COUNT(doubled)


def test_search_merges_a_text_repeated_within_a_file() -> None:
    text = "\n".join(f"pkg/mod/file_{i % 2}.py:{10 * i + 1}:        return None" for i in range(12))
    result = SEARCH.compress(text, _ctx())
    assert result is not None and not result.lossy
    assert result.text.split("\n") == [
        "pkg/mod/file_0.py",
        "  1,21,41,61,81,101:         return None",
        "pkg/mod/file_1.py",
        "  11,31,51,71,91,111:         return None",
    ]


def test_search_leaves_output_alone_when_grouping_saves_little() -> None:
    text = "\n".join(f"/repo/pkg{i}/module.py:{i}:value = compute({i})" for i in range(8))
    assert is_search_output(text)
    assert SEARCH.compress(text, _ctx()) is None


def test_search_context_runs_are_kept_whole() -> None:
    raw = _grep(_code_files(), r"raise InvalidURL", context=2)
    result = SEARCH.compress(raw, _ctx())
    assert result is not None and not result.lossy
    run = "\n  512-         except LocationParseError as e:\n  513:             raise InvalidURL(*e.args)\n"
    assert run in result.text
    listing = parse_search(raw)
    assert listing is not None
    assert _ungroup(result.text) == {(r.path, r.line or 0, r.text) for r in listing.records}
    assert "\n--\n" not in result.text


def _check_cut_accounting(raw: str, out: str) -> tuple[int, int]:
    """Kept results + every marker's count == unique results in the input."""
    listing = parse_search(raw)
    assert listing is not None
    unique = {(r.path, r.line, r.text) for r in listing.records if not r.context}
    kept = sum(len(m[1].split(",")) for m in re.finditer(r"(?m)^  ([\d,]+)(?::\d+)?: ", out))
    file_cut = sum(int(m[1]) for line in out.split("\n") if (m := FILE_MARKER.match(line)))
    gone = sum(int(m[1]) for line in out.split("\n") if (m := SUMMARY.match(line)))
    assert kept + file_cut + gone == len(unique)
    return kept, len(unique)


def test_search_cuts_many_matches_and_accounts_for_every_one(shared_data: Path) -> None:
    raw = _grep(_code_files(), r"\bdef |\bfunc |function\b")
    store = CountingStore()
    ctx = _ctx("where is should_strip_auth defined", store=store)
    result = SEARCH.compress(raw, ctx)
    assert result is not None and result.lossy
    kept, total = _check_cut_accounting(raw, result.text)
    assert total > CUT_ABOVE and kept <= MAX_KEPT + 5  # + a few kept instead of a marker
    assert result.dropped == total - kept
    assert "def should_strip_auth(self, old_url: str, new_url: str) -> bool:" in result.text
    (ref,) = result.refs
    assert store.puts == [("search", raw)]
    stored = store.get(ref)
    assert stored is not None and stored.text == raw and stored.kind == "search"
    for line in result.text.split("\n"):
        if "[..." in line:
            assert line.endswith(f"; ref={ref}]")
    print(f"\nsearch cut: {COUNT(raw)} -> {COUNT(result.text)} tokens, kept {kept}/{total}")


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("where is get_netrc_auth defined", "231: def get_netrc_auth("),
        (
            "which function handles rebuild_proxies",
            "334:     def rebuild_proxies(",
        ),
        (
            "the Negotiate content type function",
            "1414: func (c *Context) Negotiate(code int, config Negotiate) {",
        ),
        ("how is res.jsonp implemented", "262: res.jsonp = function jsonp(obj) {"),
    ],
)
def test_search_keeps_the_results_the_query_asks_about(query: str, needle: str) -> None:
    raw = _grep(_code_files(), r"\bdef |\bfunc |function\b")
    assert needle.split(": ", 1)[1] in raw
    result = SEARCH.compress(raw, _ctx(query))
    assert result is not None and result.lossy and f"\n  {needle}\n" in result.text


def test_search_names_files_whose_results_were_all_cut() -> None:
    text = "\n".join(
        f"src/pkg/module_{f:03d}.py:{n}:    helper_{f}_{n}()" for f in range(90) for n in (1, 5)
    )
    result = SEARCH.compress(text, _ctx())
    assert result is not None and result.lossy
    summary = [line for line in result.text.split("\n") if SUMMARY.match(line)]
    assert len(summary) == 1 and "src/pkg/module_089.py (2)" not in summary[0]
    assert "and 30 more files" in summary[0]  # 90 files, 40 shown, 20 named
    _check_cut_accounting(text, result.text)


def test_search_budget_is_met(shared_data: Path) -> None:
    raw = _grep(_code_files(), r"\bdef |\bfunc |function\b")
    for budget in (300, 800, 2000):
        result = SEARCH.compress(raw, _ctx("session", budget=budget))
        assert result is not None and COUNT(result.text) <= budget
        _check_cut_accounting(raw, result.text)


def test_search_budget_alone_cuts_a_short_listing() -> None:
    text = "\n".join(
        f"src/app/views/handler_{i % 3}.py:{i + 1}:    response = render(request, {i})"
        for i in range(30)
    )
    lossless = SEARCH.compress(text, _ctx())
    assert lossless is not None and not lossless.lossy
    result = SEARCH.compress(text, _ctx(budget=COUNT(lossless.text) // 2))
    assert result is not None and result.lossy
    assert COUNT(result.text) <= COUNT(lossless.text) // 2


def test_search_heading_and_find_modes_compress() -> None:
    heading = "\n\n".join(
        f"src/pkg/module_{f}.py\n" + "\n".join(f"{n}:    call_{n}(value)" for n in range(1, 30))
        for f in range(4)
    )
    result = SEARCH.compress(heading, _ctx())
    assert result is not None and result.lossy
    _check_cut_accounting(heading, result.text)
    find = "\n".join(f"./src/components/widgets/item_{i:03d}.tsx" for i in range(50))
    grouped = SEARCH.compress(find, _ctx())
    assert grouped is not None and not grouped.lossy
    assert grouped.text.split("\n")[:3] == [
        "./src/components/widgets/",
        "  item_000.tsx",
        "  item_001.tsx",
    ]


@pytest.mark.parametrize(
    "text", [GIT_DIFF * 40, PY_TRACE * 40, JAVA_TRACE * 40, _long_prose(), '{"a": 1}']
)
def test_search_compressor_never_touches_other_content(text: str) -> None:
    assert not SEARCH.detect(text)
    assert SEARCH.compress(text, _ctx()) is None


def test_search_is_deterministic_idempotent_and_never_longer(shared_data: Path) -> None:
    files = _code_files()
    inputs = [
        _grep(files, r"\bdef |\bfunc |function\b"),
        _grep(files, r"self\.", column=True),
        _grep(files, r"raise ", context=1),
        _grep(files, r"import"),
        GREP_N,
        FIND,
    ]
    for raw in inputs:
        for query, budget in ((None, None), ("session cookies", None), ("auth", 500)):
            first = SEARCH.compress(raw, _ctx(query, budget))
            second = SEARCH.compress(raw, _ctx(query, budget))
            assert first == second
            if first is None:
                continue
            assert COUNT(first.text) < COUNT(raw)
            assert SEARCH.compress(first.text, _ctx(query, budget)) is None


def search_100_kb() -> str:
    """100 KB of grep output over the shared code files (timed in bench_compressor_speed)."""
    raw = _grep(_code_files() * 3, r"\w")[:100_000]
    return raw[: raw.rfind("\n")]


def test_search_on_100_kb(shared_data: Path) -> None:
    raw = search_100_kb()
    assert SEARCH.detect(raw)
    result = SEARCH.compress(raw, _ctx("session cookie"))
    assert result is not None and COUNT(result.text) < COUNT(raw) // 2


_PATHS = st.sampled_from(
    ["src/app.py", "src/pkg/util.py", "lib/x-1.js", "./cmd/main.go", "README.md"]
)
_MATCH_TEXT = st.text(alphabet=" abcdefghijklmnopqrstuvwxyzABC_.()=#", max_size=50)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_PATHS, st.integers(1, 400), _MATCH_TEXT), min_size=3, max_size=200))
def test_search_property_lossless_or_accounted(records: list[tuple[str, int, str]]) -> None:
    """Any grep -n output: grouping gives back exactly the unique results; a cut accounts
    for every one; never more tokens; deterministic; a second pass changes nothing."""
    raw = "\n".join(f"{p}:{n}:{t}" for p, n, t in records)
    result = SEARCH.compress(raw, _ctx("util main"))
    assert result == SEARCH.compress(raw, _ctx("util main"))
    if result is None:
        return
    assert COUNT(result.text) < COUNT(raw)
    if result.lossy:
        _check_cut_accounting(raw, result.text)
    else:
        assert _ungroup(result.text) == set(records)
    assert SEARCH.compress(result.text, _ctx("util main")) is None


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=2000))
def test_arbitrary_text_is_classified_and_never_grows(text: str) -> None:
    for detector in (is_diff, is_stack_trace, is_search_output, is_prose):
        assert detector(text) in (True, False)
    for compressor in (SEARCH, TEXT):
        result = compressor.compress(text, _ctx("query 42", budget=20))
        assert result is None or COUNT(result.text) < COUNT(text)


def test_markers_name_the_ref_the_store_gave() -> None:
    listing = "\n".join(
        f"src/pkg/module_{f:03d}.py:{n}:    helper_{f}_{n}()" for f in range(90) for n in (1, 5)
    )
    prose = _long_prose(60)
    for compressor, text in ((SEARCH, listing), (TEXT, prose)):
        store = OwnRefStore()
        result = compressor.compress(text, _ctx(store=store))
        assert result is not None and result.refs == ("0123456789abcdef",)
        assert "ref=0123456789abcdef]" in result.text and len(store.puts) == 1


# ---- TextCompressor ----------------------------------------------------------------------


def test_text_leaves_prose_under_the_limit_alone() -> None:
    assert TEXT.detect(PROSE)
    assert TEXT.compress(PROSE, _ctx("committee vote")) is None
    medium = _long_prose(12)
    assert COUNT(medium) < MAX_PROSE_TOKENS
    assert TEXT.compress(medium, _ctx()) is None
    assert TEXT.compress(medium, _ctx(budget=COUNT(medium) + 1)) is None


def _sentences_in_order(original: str, out: str) -> list[str]:
    """The kept pieces of ``out`` (split at markers), each found verbatim in ``original``
    after the previous one."""
    pieces = [p.strip() for p in TEXT_MARKER.split(out)[::3] if p.strip()]
    pos = 0
    for piece in pieces:
        found = original.find(piece, pos)
        assert found >= 0, piece[:80]
        pos = found + len(piece)
    return pieces


def test_text_cuts_long_prose_to_the_limit_with_whole_sentences_in_order() -> None:
    text = _long_prose(40)
    before = COUNT(text)
    assert before > MAX_PROSE_TOKENS
    store = CountingStore()
    result = TEXT.compress(text, _ctx(store=store))
    assert result is not None and result.lossy
    assert COUNT(result.text) <= MAX_PROSE_TOKENS
    _sentences_in_order(text, result.text)
    markers = TEXT_MARKER.findall(result.text)
    assert markers and sum(int(n) for n, _ in markers) == result.dropped
    assert {ref for _, ref in markers} == set(result.refs)
    assert store.puts == [("text", text)]
    for p in range(40):  # the first sentence of every paragraph survives
        assert f"of district {p} opened to the public after years of planning." in result.text
    assert result.text.count("\n\n") == text.count("\n\n")  # paragraph breaks kept


def test_text_budget_overrides_the_default_limit() -> None:
    text = _long_prose(60)
    for budget in (600, 1500, 3000):
        result = TEXT.compress(text, _ctx("observatory funding", budget=budget))
        assert result is not None and COUNT(result.text) <= budget
        _sentences_in_order(text, result.text)


def test_text_keeps_every_sentence_with_a_number_or_name_from_the_query() -> None:
    paras = _long_prose(50).split("\n\n")
    paras[23] = paras[23].replace(
        "Funding came from",
        "The checkpoint was saved at step 4500 by the night crew. Funding came from",
    )
    paras[31] = paras[31].replace(
        "Local historians",
        "Marguerite Kowalski signed the final inspection report. Local historians",
    )
    paras[40] = paras[40].replace(
        "Funding came from", "Exactly 45000 people attended. Funding came from"
    )
    paras[44] = paras[44].replace(
        "Funding came from", "Only 1 bench was installed. Funding came from"
    )
    text = "\n\n".join(paras)
    query = "What did Marguerite Kowalski sign in us-east-1, and what happened at step 4500?"
    result = TEXT.compress(text, _ctx(query, budget=60))  # far too small: needles still kept
    assert result is not None
    assert "The checkpoint was saved at step 4500 by the night crew." in result.text
    assert "Marguerite Kowalski signed the final inspection report." in result.text
    assert "45000" not in result.text  # a number is matched whole
    assert "Only 1 bench" not in result.text  # the 1 of us-east-1 is not a number of its own
    assert COUNT(result.text) < COUNT(text)


def test_text_keeps_code_blocks_headings_and_abbreviations_whole() -> None:
    code = "```python\ndef rotate(key):\n    return key[::-1]\n```"
    body = _long_prose(50).split("\n\n")
    body[10] = (
        "## Rotation\n\nDr. J. R. Smith, e.g. in 2019, proposed the rotation scheme below. It was adopted."
    )
    body[11] = code
    text = "\n\n".join(body)
    assert is_prose(text)
    result = TEXT.compress(text, _ctx("rotation scheme", budget=900))
    assert result is not None
    assert code in result.text and "## Rotation" in result.text
    assert "Dr. J. R. Smith, e.g. in 2019, proposed the rotation scheme below." in result.text


@pytest.mark.parametrize(
    "text",
    [
        GIT_DIFF * 200,
        PY_TRACE * 200,
        JAVA_TRACE * 200,
        GREP_N * 300,
        json.dumps({"t": [PROSE] * 200}),
    ],
)
def test_text_compressor_never_touches_other_content(text: str) -> None:
    assert COUNT(text) > MAX_PROSE_TOKENS
    assert not TEXT.detect(text)
    assert TEXT.compress(text, _ctx()) is None


def test_text_never_touches_real_code_and_logs(shared_data: Path) -> None:
    texts = [p.read_text("utf-8") for p in _code_files()]
    texts += [
        p.read_text("utf-8") for p in sorted((shared_data / "logs_loghub").glob("*/*_2k.log"))[:4]
    ]
    for text in texts:
        assert TEXT.compress(text, _ctx(budget=500)) is None


def test_text_is_deterministic_idempotent_and_never_longer() -> None:
    text = _long_prose(80)
    for query, budget in ((None, None), ("railway bridge", 900), ("district 42", 300)):
        first = TEXT.compress(text, _ctx(query, budget))
        assert first is not None and first == TEXT.compress(text, _ctx(query, budget))
        assert COUNT(first.text) < COUNT(text)
        assert TEXT.compress(first.text, _ctx(query, budget)) is None
        assert TEXT.compress(first.text, _ctx(query, 10)) is None  # markers are never re-cut


def prose_100_kb() -> str:
    """100 KB of NQ passages (timed in bench_compressor_speed)."""
    return "\n\n".join(t for _, t in _nq_docs(0, 60))[:100_000]


def test_text_on_100_kb(shared_data: Path) -> None:
    text = prose_100_kb()
    assert TEXT.detect(text)
    result = TEXT.compress(text, _ctx("who owns the delano hotel"))
    assert result is not None and COUNT(result.text) < COUNT(text)


def nq_retention(limit: int = 100, share: float = 0.5) -> list[tuple[int, int, int, int, int, int]]:
    """Per gold position: (cases with the answer, kept by us, kept by head truncation to the
    same token count, tokens before, tokens after, cases over budget)."""
    rows = []
    for position in (0, 9, 19):
        with_answer = kept = head = before = after = over = 0
        for case, text in _nq_docs(position, limit):
            tokens = COUNT(text)
            budget = int(tokens * share)
            result = TEXT.compress(text, _ctx(case["question"], budget))
            out = result.text if result is not None else text
            answers = [a for a in case["answers"] if a in text]
            before, after = before + tokens, after + COUNT(out)
            over += COUNT(out) > budget
            if answers:
                with_answer += 1
                kept += any(a in out for a in answers)
                truncated = text[: len(text) * budget // tokens]
                head += any(a in truncated for a in answers)
        rows.append((with_answer, kept, head, before, after, over))
    return rows


def test_text_keeps_the_answer_passage_of_nq_questions(shared_data: Path) -> None:
    """NQ-Open, 20 Wikipedia passages with the gold one at position 0, 9 or 19, cut to half
    its tokens with the question as query: the answer string survives in >= 90% of cases
    at every position (head truncation to the same size is printed for comparison)."""
    rows = nq_retention()
    for position, (n, kept, head, before, after, over) in zip((0, 9, 19), rows, strict=True):
        print(
            f"\nNQ gold at {position:2}: answer kept {kept}/{n} ({kept / n:.0%}), head truncation "
            f"{head}/{n}; tokens {before} -> {after} ({1 - after / before:.0%} saved), over budget {over}"
        )
        assert kept >= 0.9 * n
        assert after <= 0.52 * before


def test_fidelity_golden_answer_evidence_survives(shared_data: Path) -> None:
    """headroom's fidelity_golden cases: those of a type these compressors handle must keep
    every answer_evidence string with the case's question as query; every other case must
    be left alone by both compressors (they are not search output or prose)."""
    path = shared_data / "headroom_fixtures" / "tests__fixtures__fidelity_golden__cases.json"
    if not path.exists():
        pytest.skip(f"{path} not found")
    cases = json.loads(path.read_text("utf-8"))
    handled = {"search": SEARCH, "grep": SEARCH, "text": TEXT, "prose": TEXT, "plain_text": TEXT}
    mine = saved = total = 0
    for case in cases:
        content = (
            case["content"] if isinstance(case["content"], str) else json.dumps(case["content"])
        )
        compressor = handled.get(case["content_type"])
        if compressor is None:
            assert SEARCH.compress(content, _ctx(case["question"])) is None
            assert TEXT.compress(content, _ctx(case["question"], budget=10)) is None
            continue
        result = compressor.compress(content, _ctx(case["question"], budget=COUNT(content) // 2))
        out = result.text if result is not None else content
        assert all(e in out for e in case["answer_evidence"]), case["id"]
        mine, total, saved = mine + 1, total + COUNT(content), saved + COUNT(content) - COUNT(out)
    types = sorted({c["content_type"] for c in cases})
    print(
        f"\nfidelity_golden: {len(cases)} cases of types {types}; {mine} of ours, {saved}/{total} tokens saved"
    )


if __name__ == "__main__":
    for position, (n, kept, head, before, after, over) in zip(
        (0, 9, 19), nq_retention(200), strict=True
    ):
        print(
            f"gold@{position:2}  kept {kept}/{n}  head {head}/{n}  {before}->{after} tokens  over {over}"
        )

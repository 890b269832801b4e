from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from headroom_core.cli import main
from headroom_core.metrics import open_store
from headroom_core.transforms import json_codec


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def test_simulate_bundled_example_records_a_row(runner: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    result = runner.invoke(main, ["simulate", "--store", f"sqlite:///{db}"])
    assert result.exit_code == 0, result.output
    assert "tokens before" in result.output and "smart_crusher:2" in result.output
    with open_store(f"sqlite:///{db}") as store:
        rows = store.get_metrics(limit=10)
    assert len(rows) == 1
    row = rows[0]
    assert (row.mode, row.source, row.model) == ("simulate", "cli", "gpt-4o")
    assert row.tokens_input_before > row.tokens_input_after > 0
    assert row.transforms_applied == ("cache_aligner:1", "log:1", "smart_crusher:2")
    assert row.waste_signals["json_bloat_tokens"] > 0
    assert "would save" in result.output


def test_simulate_rows_are_never_counted_as_saved(runner: CliRunner, tmp_path: Path) -> None:
    # Issue 14, item 7: `headroom simulate` rows made the report and get_summary() say
    # "411,279 saved ... $1.03" although nothing was sent.
    url = f"sqlite:///{tmp_path / 'headroom.db'}"
    for _ in range(3):
        assert runner.invoke(main, ["simulate", "--store", url]).exit_code == 0
    with open_store(url) as store:
        summary = store.get_summary()
        (row, *_) = store.get_metrics(limit=1)
    assert (summary.requests, summary.by_mode) == (3, {"simulate": 3})
    assert (summary.total_tokens_saved, summary.cost_saved) == (0, 0.0)
    assert (summary.total_tokens_before, summary.total_cost_before) == (0, 0.0)
    assert row.tokens_saved == 0 and row.projected_saved > 1000  # the preview's projection
    report = runner.invoke(main, ["report", "--store", url, "--format", "markdown"])
    assert report.exit_code == 0, report.output
    assert "0 saved" in report.stdout and "$0.00 saved" in report.stdout
    projected = f"| simulate | 3 | {3 * row.tokens_input_before:,} |"
    assert projected in report.stdout and f"| {3 * row.projected_saved:,} |" in report.stdout


def test_compress_openai_messages_file_round_trip(runner: CliRunner, tmp_path: Path) -> None:
    rows = [{"id": i, "name": f"n{i}"} for i in range(12)]
    msgs = [
        {"role": "user", "content": "list"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": json.dumps(rows, indent=2)},
    ]
    src, out = tmp_path / "in.json", tmp_path / "out.json"
    src.write_text(json.dumps(msgs))
    result = runner.invoke(
        main, ["compress", str(src), "-o", str(out), "--store", f"jsonl:///{tmp_path}/m.jsonl"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written[:2] == msgs[:2]
    assert json_codec.decode(json.loads(written[2]["content"])) == rows
    assert len(written[2]["content"]) < len(msgs[2]["content"])
    with open_store(f"jsonl:///{tmp_path}/m.jsonl") as store:
        assert [r.mode for r in store.get_metrics()] == ["optimize"]


def test_compress_anthropic_body_keeps_its_form(runner: CliRunner, tmp_path: Path) -> None:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 100,
        "system": "s",
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": json.dumps({"a": list(range(50))}, indent=2),
                    }
                ],
            },
        ],
    }
    src = tmp_path / "body.json"
    src.write_text(json.dumps(body))
    result = runner.invoke(main, ["compress", str(src), "--store", ""])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["model"] == "claude-haiku-4-5" and out["system"] == "s"
    block = out["messages"][2]["content"][0]
    assert block["type"] == "tool_result" and json.loads(block["content"]) == {"a": list(range(50))}
    assert "claude-haiku-4-5" in result.stderr


def test_raw_tool_output(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "resp.json"
    src.write_text(json.dumps({"items": [{"k": i} for i in range(10)]}, indent=4))
    result = runner.invoke(main, ["compress", str(src), "--store", ""])
    assert result.exit_code == 0
    assert json_codec.decode(json.loads(result.stdout)) == {"items": [{"k": i} for i in range(10)]}
    log = tmp_path / "app.log"
    log.write_text("INFO start\nERROR boom\n")
    result = runner.invoke(main, ["compress", str(log), "--as", "tool-output", "--store", ""])
    assert result.exit_code == 0 and result.stdout.strip() == "INFO start\nERROR boom"


@pytest.mark.parametrize(
    "content,message",
    [
        ("not json at all", "not JSON (Expecting value at line 1 column 1)"),
        ('[{"role": "robot", "content": "x"}]', "messages[0] has unknown role 'robot'"),
        (
            '{"messages": "nope"}',
            "has a 'messages' field that is not a list of chat messages (each with a 'role'); "
            "to compress this JSON as a tool's output, use --as tool-output",
        ),
        (
            '[{"role": "user", "content": 42}]',
            "messages[0].content must be a string, a list of parts or null, got int",
        ),
        (
            '[{"role": "user", "content": true}]',
            "messages[0].content must be a string, a list of parts or null, got bool",
        ),
        (
            '[{"role": "assistant", "tool_calls": "c1"}]',
            "messages[0].tool_calls must be a list, got str",
        ),
        (
            '[{"role": "assistant", "tool_calls": [{"id": "c", "function": "f"}]}]',
            "messages[0].tool_calls[0].function must be a dict, got str",
        ),
        (
            '[{"role": "tool", "tool_call_id": ["c"], "content": "x"}]',
            "messages[0].tool_call_id must be a string, got list",
        ),
        (
            '{"messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "t", "input": {}}]}], "system": "s"}',
            "messages[0].content[0]: a tool_use block needs 'id'",
        ),
        (
            '"\\ud800 alone"',
            "the JSON holds a lone surrogate ('\\ud800'), which is not valid UTF-8 and no API accepts",
        ),
        (
            "[" * 100_000 + "]" * 100_000,
            "JSON nested too deeply to read; use --as tool-output to compress it as text",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(
    runner: CliRunner, tmp_path: Path, content: str, message: str | None
) -> None:
    src = tmp_path / "bad.json"
    src.write_text(content)
    result = runner.invoke(main, ["simulate", str(src), "--store", ""])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        f"Error: {src}: {message}"
        + (
            "; use --as tool-output to compress a raw tool output such as a log"
            if "not JSON" in message
            else ""
        )
    ]


def test_an_input_over_the_size_limit_is_refused_before_reading(
    runner: CliRunner, tmp_path: Path
) -> None:
    src = tmp_path / "big.json"
    src.write_text("[" + " " * 3_000_000 + "]")
    result = runner.invoke(main, ["simulate", str(src), "--store", "", "--max-input-mb", "1"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"Error: {src}: input is 3.0 MB, over the limit of 1 MB "
        "(--max-input-mb or HEADROOM_MAX_INPUT_MB raises it)"
    )
    piped = runner.invoke(
        main, ["simulate", "-", "--store", "", "--max-input-mb", "1"], input="x" * 2_000_000
    )
    assert piped.exit_code == 2 and "Error: -: input is over the limit of 1 MB" in piped.output
    env = runner.invoke(
        main, ["simulate", str(src), "--store", ""], env={"HEADROOM_MAX_INPUT_MB": "2"}
    )
    assert env.exit_code == 2 and "over the limit of 2 MB" in env.output


def test_a_fifo_with_no_writer_does_not_hang(runner: CliRunner, tmp_path: Path) -> None:
    import os

    from headroom_core._cli_input import read_input
    from headroom_core.errors import InputError

    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="nothing arrived on the FIFO .* within 0.2 s"):
        read_input(str(fifo), 1.0, fifo_wait_s=0.2)


def test_unwritable_output_or_store_is_one_line_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file")
    out = runner.invoke(main, ["compress", "--store", "", "-o", str(blocker / "out.json")])
    assert out.exit_code == 2
    assert [line for line in out.output.splitlines() if line.strip()] == [
        f"Error: {blocker / 'out.json'}: cannot write: Not a directory"
    ]
    store = runner.invoke(main, ["simulate", "--store", f"sqlite:///{blocker}/m.db"])
    assert store.exit_code == 2
    lines = [line for line in store.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: --store 'sqlite:///{blocker}/m.db'")


def test_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["simulate", str(tmp_path / "nope.json"), "--store", ""])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_installed_entry_point_runs(tmp_path: Path) -> None:
    exe = shutil.which("headroom", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the headroom entry point is not installed in this environment")
    out = subprocess.run(
        [exe, "simulate", "--store", f"sqlite:///{tmp_path}/x.db"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "would save" in out.stdout and "13,835" in out.stdout


# --- headroom report ---------------------------------------------------------------------


def _one_line(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


@pytest.fixture()
def recorded(runner: CliRunner, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    result = runner.invoke(main, ["simulate", "--store", url])
    assert result.exit_code == 0, result.output
    return url


def test_report_html_goes_to_the_default_file(
    runner: CliRunner, recorded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["report", "--store", recorded])
    assert result.exit_code == 0, result.output
    assert result.output == "Report written to headroom-report.html\n"
    html = (tmp_path / "headroom-report.html").read_text("utf-8")
    assert "<title>Headroom report: 1 request, " in html
    assert "simulate" in html and "https://" not in html


def test_report_markdown_to_stdout_and_to_a_file(
    runner: CliRunner, recorded: str, tmp_path: Path
) -> None:
    result = runner.invoke(
        main, ["report", "--store", recorded, "--format", "markdown", "--period", "week"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Headroom report\n")
    assert "- Requests: 1 (simulate 1)" in result.stdout and "per week, UTC" in result.stdout
    out = tmp_path / "r.md"
    result = runner.invoke(
        main, ["report", "--store", recorded, "--format", "md", "-o", str(out), "--top", "1"]
    )
    assert result.exit_code == 0, result.output
    assert result.output == f"Report written to {out}\n"
    assert "## 4. Top 1 high-waste requests" in out.read_text("utf-8")
    result = runner.invoke(
        main, ["report", "--store", recorded, "--format", "md", "--since", "2999-01-01"]
    )
    assert result.exit_code == 0, result.output
    assert "There are no requests in this store." in result.stdout
    assert "since 2999-01-01 00:00 UTC" in result.stdout


def test_report_missing_store_is_one_line_exit_2_and_creates_nothing(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "cwd"
    empty.mkdir()
    monkeypatch.chdir(empty)
    result = runner.invoke(main, ["report"])
    assert result.exit_code == 2
    assert _one_line(result.output) == [
        "Error: metrics store 'sqlite:///headroom.db': no such file 'headroom.db'"
    ]
    assert list(empty.iterdir()) == []  # neither an empty database nor a report


@pytest.mark.parametrize(
    "args,message",
    [
        (["--format", "pdf"], "Error: format: expected one of 'html', 'markdown', 'md', got 'pdf'"),
        (
            ["--period", "year"],
            "Error: period: expected one of 'hour', 'day', 'week', 'month', got 'year'",
        ),
        (["--top", "-3"], "Error: top: expected an int >= 0, got -3"),
        (
            ["--store", "ftp://x"],
            "Error: metrics store URL 'ftp://x': unknown scheme; known schemes: jsonl://, memory://, postgres://, postgresql://, sqlite://",
        ),
    ],
)
def test_report_bad_arguments(
    runner: CliRunner, recorded: str, tmp_path: Path, args: list[str], message: str
) -> None:
    args = args if "--store" in args else ["--store", recorded, *args]
    out = tmp_path / "unused.html"
    result = runner.invoke(main, ["report", *args, "-o", str(out)])
    assert result.exit_code == 2
    assert _one_line(result.output) == [message]
    assert not out.exists()


def test_readme_store_example_is_an_absolute_path(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 14, item 8: README's `--store jsonl:///tmp/...` wrote under the working directory.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    (line,) = [ln for ln in readme.splitlines() if "--store jsonl:" in ln]
    url = line.split("--store ", 1)[1].split()[0]
    assert url == "jsonl:////tmp/headroom.jsonl"
    target = tmp_path / "abs" / "headroom.jsonl"
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["simulate", "--store", url.replace("/tmp", str(target.parent))])
    assert result.exit_code == 0, result.output
    written = [p for p in tmp_path.rglob("*.jsonl")]
    assert written == [target]  # at the absolute path, nothing under the working directory

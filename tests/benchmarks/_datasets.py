"""Benchmark cases built from the real third-party data in ``../shared/data``.

Every case is one whole chat request in OpenAI format. JSON and log files become
a realistic agent turn: ``[system, user question, assistant tool_call, tool
result = the file's text as the file holds it]``. Conversations are real agent
histories, used as they are.

Each case carries the facts its retention checks need (see ``_retention``).
Nothing here is copied into the repository: files are read in place.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _json_query import build_query, error_strings

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FAMILIES = ("json", "tables", "logs", "build_logs", "conversations")
MIN_JSON_BYTES = 2048
SYSTEM_PROMPT = (
    "You are an operations assistant. Use the tools to look things up, then answer "
    "the user's question precisely, citing the values you relied on."
)
# (folder, glob) for the json family; see each folder's SOURCE.md for its layout.
JSON_SOURCES = (
    ("api_octokit_fixtures", "responses/*.json"),
    ("api_octokit_webhooks", "*.json"),
    ("api_go_jira_mocks", "*.json"),
    ("api_k9s_kubernetes", "*.json"),
    ("api_slack_sdk_fixtures", "*.json"),
    ("api_stripe_fixtures", "objects/*.json"),  # fixtures3.json is these objects combined
    ("db_tau_bench", "samples/*.json"),
    ("metrics_prophet_timeseries", "prometheus/*.json"),
)
SYNTHETIC_SETS = frozenset({"db_tau_bench"})  # generated mock data (its SOURCE.md)
# octokit responses are named <scenario>__<nn>_<verb>_<status>.json
_HTTP_ERROR_FILE = re.compile(r"_[45]\d\d\.json$")
# Levels that a log reader must not lose (Loghub's Level column, any case).
IMPORTANT_LEVELS = frozenset(
    {"w", "e", "f", "warn", "warning", "error", "err", "fatal", "critical", "crit", "severe"}
    | {"alert", "emerg"}
)
RARE_MAX = 2  # a line whose template occurs at most this often is "rare"


@dataclass(frozen=True, slots=True)
class JsonFacts:
    """What a json case's output must keep."""

    original: Any  # the parsed file
    errors: tuple[str, ...]  # strings of error bodies
    needle: str | None  # identifying value of the item the user asks about
    item: Any = None  # that item itself, when it is an object: it must be kept verbatim


@dataclass(frozen=True, slots=True)
class LogFacts:
    """Lines of a log case that must survive verbatim."""

    important: tuple[str, ...]  # WARN/ERROR/FATAL-like lines (empty: log has no Level)
    rare: tuple[str, ...]  # lines whose template occurs at most RARE_MAX times
    has_levels: bool


@dataclass(frozen=True, slots=True)
class TableFacts:
    """A table question: the rows, the rows holding the answer, the checker's rows."""

    original: list[dict[str, Any]]  # the parsed table (JSON array of row objects)
    answers: tuple[str, ...]
    answer_rows: tuple[int, ...]  # rows with a cell holding an answer (empty: none does)
    computed: bool  # a number the question computes (how many / total / ...), not read
    kind: str  # the data set's tag: "lookup" or "aggregate_or_compare"
    selected: tuple[int, ...] | None  # rows the checker says the conditions select


@dataclass(frozen=True, slots=True)
class BuildLogFacts:
    """The error lines of a build log, as a terminal shows them (escapes resolved)."""

    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Case:
    family: str
    group: str  # data set (json), system (logs) or agent source (conversations)
    name: str
    messages: list[dict[str, Any]]
    query: str | None  # the user's question, passed to compressors that accept one
    facts: JsonFacts | TableFacts | LogFacts | BuildLogFacts | None = None
    synthetic: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


def agent_request(
    question: str, tool: str, args: dict[str, Any], output: str
) -> list[dict[str, Any]]:
    """One agent turn: system, user question, one tool call, its result."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": question},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": tool, "arguments": json.dumps(args)},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": output},
    ]


def _json_files(data_dir: Path) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    for folder, pattern in JSON_SOURCES:
        for path in sorted((data_dir / folder).glob(pattern)):
            is_error = folder == "api_octokit_fixtures" and _HTTP_ERROR_FILE.search(path.name)
            # Error bodies are tiny; they are kept whatever their size, since
            # keeping them is one of the retention checks.
            if path.stat().st_size >= MIN_JSON_BYTES or is_error:
                files.append((folder, path))
    return files


def load_json_cases(data_dir: Path) -> list[Case]:
    cases: list[Case] = []
    for folder, path in _json_files(data_dir):
        text = path.read_text(encoding="utf-8")
        value = json.loads(text)
        query = build_query(value)
        rel = path.relative_to(data_dir / folder).as_posix()
        messages = agent_request(query.question, "fetch_json", {"source": f"{folder}/{rel}"}, text)
        facts = JsonFacts(value, tuple(error_strings(value)), query.needle, query.item)
        synthetic = folder in SYNTHETIC_SETS
        cases.append(Case("json", folder, rel, messages, query.question, facts, synthetic))
    return cases


def _log_facts(lines: Sequence[str], structured: Path) -> tuple[LogFacts, tuple[str, ...]]:
    with structured.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    notes: tuple[str, ...] = ()
    if len(rows) != len(lines):
        notes = (f"{structured.name}: {len(rows)} rows vs {len(lines)} log lines",)
    pairs = list(zip(lines, rows, strict=False))  # mismatch noted above
    counts = Counter(row["EventId"] for row in rows)
    has_levels = bool(rows) and "Level" in rows[0]
    important = tuple(
        line for line, row in pairs if row.get("Level", "").strip().lower() in IMPORTANT_LEVELS
    )
    rare = tuple(line for line, row in pairs if counts[row["EventId"]] <= RARE_MAX)
    return LogFacts(important, rare, has_levels), notes


def load_log_cases(data_dir: Path) -> list[Case]:
    cases: list[Case] = []
    for log in sorted((data_dir / "logs_loghub").glob("*/*_2k.log")):
        structured = log.with_name(log.name + "_structured.csv")
        if not structured.exists():
            continue
        with log.open(encoding="utf-8", newline="") as fh:
            text = fh.read()  # as the file holds it (CRLF kept)
        lines = [line.rstrip("\r") for line in text.split("\n")]
        if lines and not lines[-1]:
            lines.pop()
        facts, notes = _log_facts(lines, structured)
        system = log.parent.name
        question = (
            f"Here is the {system} log. Which warnings and errors does it contain, "
            "and what is their likely cause?"
        )
        # A log-fetching tool, not a file read: headroom-ai leaves "read_file" output
        # byte-exact on purpose (the model may edit the file), which is not this use.
        args = {"system": system, "lines": len(lines)}
        messages = agent_request(question, "fetch_logs", args, text)
        cases.append(Case("logs", system, log.name, messages, question, facts, notes=notes))
    return cases


def load_conversation_cases(data_dir: Path) -> list[Case]:
    folder = data_dir / "conversations"
    index_path = folder / "index.json"
    index = json.loads(index_path.read_text(encoding="utf-8")) if index_path.exists() else []
    source_of = {entry["file"]: entry.get("source", "?") for entry in index}
    cases: list[Case] = []
    for path in sorted(folder.glob("*.json")):
        if path.name == "index.json":
            continue
        messages = json.loads(path.read_text(encoding="utf-8"))
        group = source_of.get(path.name, path.name.split("__", 1)[0])
        cases.append(Case("conversations", group, path.stem, messages, None))
    return cases


def load_table_cases(data_dir: Path) -> list[Case]:
    """One case per WikiTableQuestions question: the table is a query_table tool's result."""
    from _table_check import answer_rows, checker_rows, is_computed

    folder = data_dir / "table_qa_wikitablequestions"
    path = folder / "questions.jsonl"
    if not path.exists():
        return []
    cases: list[Case] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        text = (folder / q["table_file"]).read_text(encoding="utf-8")
        rows = json.loads(text)
        answers = tuple(str(a) for a in q["answers"])
        facts = TableFacts(
            rows,
            answers,
            tuple(answer_rows(rows, answers)),
            is_computed(q["question"], answers),
            q["kind"],
            checker_rows(q["question"], rows),
        )
        args = {"table": q["upstream_table"]}
        messages = agent_request(q["question"], "query_table", args, text)
        cases.append(Case("tables", q["kind"], q["id"], messages, q["question"], facts))
    return cases


BUILD_LOG_DIR = Path(__file__).resolve().parents[1] / "data" / "build_logs"
BUILD_QUESTION = "The build failed. Which errors and failures does this output report, and why?"


def load_build_log_cases(_data_dir: Path) -> list[Case]:
    """The real colour build and test logs kept in the repository (tests/data/build_logs,
    see NOTE.md there), each the output of a run_build tool call."""
    from _build_log_check import error_lines

    cases: list[Case] = []
    for path in sorted(BUILD_LOG_DIR.glob("*.log")):
        with path.open(encoding="utf-8", newline="") as fh:
            text = fh.read()
        args = {"log": path.name}
        messages = agent_request(BUILD_QUESTION, "run_build", args, text)
        tool = path.stem.split("_", 1)[0]
        facts = BuildLogFacts(tuple(error_lines(text)))
        cases.append(Case("build_logs", tool, path.name, messages, BUILD_QUESTION, facts))
    return cases


LOADERS: dict[str, Callable[[Path], list[Case]]] = {
    "json": load_json_cases,
    "tables": load_table_cases,
    "logs": load_log_cases,
    "build_logs": load_build_log_cases,
    "conversations": load_conversation_cases,
}


def spread(cases: Sequence[Case], limit: int | None) -> list[Case]:
    """At most ``limit`` cases, evenly spaced over the sorted list (so every set is sampled)."""
    if limit is None or limit >= len(cases):
        return list(cases)
    if limit <= 0:
        return []
    step = len(cases) / limit
    return [cases[int(i * step)] for i in range(limit)]


def load_family(family: str, data_dir: Path = DATA_DIR, limit: int | None = None) -> list[Case]:
    return spread(LOADERS[family](data_dir), limit)

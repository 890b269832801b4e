"""Provider-client wrappers over a real local API server: what they send, record and cost.

    python tests/benchmarks/bench_client.py [--headroom-ai-python /tmp/hrai/bin/python]
        [--repeats 3] [--markdown]

Requests: the final request of each of the 18 real conversations in
``../shared/data/conversations`` (the history up to the last model call) and the example
history bundled with headroom_core, as OpenAI chat requests for gpt-4o. Methods, side by
side in one run, all calling the same ``ProviderServer`` (tests/integrations) on 127.0.0.1:
the raw ``openai.OpenAI`` client, our ``HeadroomClient`` (optimize, audit) and, when its
interpreter is given, headroom-ai 0.42.0's ``HeadroomClient`` (optimize, audit) in a
subprocess. What was sent is read from the server's log; tokens are counted with
``headroom_core.tokens.count_tokens_messages`` (gpt-4o). See README.md here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: import headroom_core
    sys.path.insert(0, str(REPO_ROOT))

from _client_hrai_runner import TAG_HEADER, Target, drive, openai_client  # noqa: E402
from _context_cases import replay_requests  # noqa: E402
from _datasets import DATA_DIR, load_conversation_cases  # noqa: E402
from _headroom_ai import _env, _fill_tiktoken_cache  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from headroom_core.messages import pairing_is_valid  # noqa: E402
from headroom_core.tokens import count_tokens_messages  # noqa: E402

MODEL = "gpt-4o"
RUNNER = Path(__file__).with_name("_client_hrai_runner.py")
TIMEOUT_S = 600
RAW = "none (raw openai client)"
HRAI_RAW = "raw (headroom-ai venv)"
# row -> the raw client timed in the same process (its latency and byte baseline)
BASELINE = {
    "ours optimize": RAW,
    "ours audit": RAW,
    "headroom-ai optimize": HRAI_RAW,
    "headroom-ai audit": HRAI_RAW,
}
HEADERS = (
    "method", "failed calls", "tokens sent", "saving % total", "saving % median",
    "pairing valid", "user text unchanged", "last msg unchanged", "body = raw (bytes)",
    "recorded saving % (audit: projected)", "added ms median", "added ms p95",
    "stream text = non-stream", "stream record w/ output tokens", "calls with 1 record",
)  # fmt: skip
Request = tuple[str, list[dict[str, Any]]]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    # argparse rather than click: this script must run in a bare venv with the data.
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--headroom-ai-python", default=None, metavar="PATH")
    parser.add_argument("--markdown", action="store_true", help="Markdown table on stdout")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (default 3)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def load_requests() -> list[Request]:
    """The last request of each recorded conversation, then the bundled example history."""
    from headroom_core._cli_input import example_history

    out = [(c.name, replay_requests(c.messages)[-1]) for c in load_conversation_cases(DATA_DIR)]
    out.append(("example_history (bundled)", example_history()))
    return out


# -- running ----------------------------------------------------------------------------------


def _ours_records(client: Any) -> Any:
    def read() -> list[dict[str, Any]]:
        return [
            {
                "before": m.tokens_input_before,
                "after": m.tokens_input_after,
                "output": m.tokens_output,
                "projected": m.extra.get("projected_tokens_after"),
                "error": m.error,
            }
            for m in client.get_metrics(limit=None)
        ]

    return read


def run_ours(base_url: str, requests: Sequence[Request], repeats: int, store: Path) -> list[dict]:
    from headroom_integrations import HeadroomClient

    wire: dict[str, str] = {}
    raw = openai_client(base_url, wire)
    targets = [Target(RAW, raw.chat.completions.create)]
    for mode in ("optimize", "audit"):
        client = HeadroomClient(raw, default_mode=mode, store_url=f"sqlite:///{store}/{mode}.db")
        targets.append(
            Target(f"ours {mode}", client.chat.completions.create, _ours_records(client))
        )
    return drive(targets, list(enumerate(m for _, m in requests)), repeats, wire)


def run_headroom_ai(
    python: str, base_url: str, requests: Sequence[Request], repeats: int
) -> tuple[list[dict], dict[str, Any], str | None]:
    """headroom-ai's rows, its meta line and an error (None when the runner worked)."""
    with tempfile.TemporaryDirectory(prefix="hrai-client-") as tmp:
        _fill_tiktoken_cache(Path(tmp))
        job = {
            "base_url": base_url,
            "repeats": repeats,
            "store_dir": tmp,
            "requests": [{"id": i, "messages": m} for i, (_, m) in enumerate(requests)],
        }
        try:
            proc = subprocess.run(
                [python, str(RUNNER)],
                input=json.dumps(job, ensure_ascii=False),
                capture_output=True,
                text=True,
                encoding="utf-8",
                env=_env(Path(tmp)),
                cwd=tmp,
                timeout=TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [], {}, f"{type(exc).__name__}: {exc}"
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-5:])
        return [], {}, f"runner exited {proc.returncode}: {tail}"
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    meta = next((line["meta"] for line in lines if "meta" in line), {})
    return [line for line in lines if "meta" not in line], meta, None


# -- measuring --------------------------------------------------------------------------------


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def _p95(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def _user_texts(messages: Sequence[dict[str, Any]]) -> list[Any]:
    return [m.get("content") for m in messages if m.get("role") == "user"]


class Analysis:
    """Indexes the calls and the server's log; one table row per method."""

    def __init__(self, rows: list[dict], bodies: dict[str, dict], requests: Sequence[Request]):
        self.requests = requests
        self.bodies = bodies
        self.calls: dict[tuple[str, int, str], dict] = {
            (r["method"], r["id"], r["pass_name"]): r for r in rows
        }
        self.timed = sorted({r["pass_name"] for r in rows if r["pass_name"].startswith("r")})
        self.notes: list[str] = []
        self.raw = [self.sent(RAW, i) for i in range(len(requests))]

    def sent(self, method: str, i: int, pass_name: str = "r0") -> dict | None:
        return self.bodies.get(f"{method}|{i}|{pass_name}")

    def row(self, method: str) -> list[str]:
        calls = [r for r in self.calls.values() if r["method"] == method]
        failed = [r for r in calls if r["error"]]
        self._failure_notes(method, failed)
        cells = [method, f"{len(failed)}/{len(calls)}", *self._tokens(method)]
        cells += [self._bytes(method), self._recorded(method), *self._latency(method)]
        cells += [*self._stream(method), self._records(method, calls)]
        mutated = sum(r["mutated"] for r in calls)
        if mutated:
            self.notes.append(
                f"{method}: changed the caller's messages in place on {mutated} call(s)"
            )
        return cells

    def _tokens(self, method: str) -> list[str]:
        raw_total = sent_total = pairing = users = last = 0
        savings: list[float] = []
        changed: list[str] = []
        for i, raw in enumerate(self.raw):
            body = self.sent(method, i)
            if body is None or raw is None:
                continue
            before = count_tokens_messages(raw["messages"], model=MODEL)
            after = count_tokens_messages(body["messages"], model=MODEL)
            raw_total, sent_total = raw_total + before, sent_total + after
            savings.append(_pct(before - after, before))
            pairing += pairing_is_valid(body["messages"])
            users += _user_texts(body["messages"]) == _user_texts(raw["messages"])
            if body["messages"][-1] == raw["messages"][-1]:
                last += 1
            else:
                changed.append(f"{self._name(i)} ({raw['messages'][-1].get('role')})")
            self._determinism(method, i, body)
        if changed:
            self.notes.append(f"{method}: last message changed on {', '.join(changed)}")
        n = len(savings)
        if not n:
            return ["0", "n/a", "n/a", "0/0", "0/0", "0/0"]
        return [
            f"{sent_total:,}",
            f"{_pct(raw_total - sent_total, raw_total):.1f}",
            f"{statistics.median(savings):.1f}",
            f"{pairing}/{n}",
            f"{users}/{n}",
            f"{last}/{n}",
        ]

    def _determinism(self, method: str, i: int, body: dict) -> None:
        if any(self.sent(method, i, p) not in (None, body) for p in self.timed):
            self.notes.append(f"{method}: sent different bodies across passes for {self._name(i)}")

    def _bytes(self, method: str) -> str:
        base = BASELINE.get(method)
        if base is None:
            return "-"
        same = total = 0
        for i in range(len(self.requests)):
            pairs = [
                (self.calls.get((method, i, p)), self.calls.get((base, i, p)))
                for p in ("warm", *self.timed, "stream")
            ]
            shas = [(a and a["body_sha256"], b and b["body_sha256"]) for a, b in pairs]
            if all(a and b for a, b in shas):
                total += 1
                same += all(a == b for a, b in shas)
        return f"{same}/{total}"

    def _records_r0(self, method: str) -> list[dict]:
        out = []
        for i in range(len(self.requests)):
            call = self.calls.get((method, i, "r0"))
            if call and call["record"]:
                out.append(call["record"])
        return out

    def _recorded(self, method: str) -> str:
        records = self._records_r0(method)
        if not records or method not in BASELINE:
            return "-"
        before = sum(r["before"] for r in records)
        if method.endswith("audit"):
            if any(r["projected"] is None for r in records):
                return "n/a (not recorded)"
            return f"{_pct(before - sum(r['projected'] for r in records), before):.1f}"
        return f"{_pct(before - sum(r['after'] for r in records), before):.1f}"

    def _latency(self, method: str) -> list[str]:
        base = BASELINE.get(method)
        if base is None:
            return ["-", "-"]
        added = []
        for i in range(len(self.requests)):
            mine = [self.calls.get((method, i, p)) for p in self.timed]
            ref = [self.calls.get((base, i, p)) for p in self.timed]
            if all(c and not c["error"] for c in mine + ref):
                wrapper = statistics.median(c["ms"] for c in mine)
                added.append(wrapper - statistics.median(c["ms"] for c in ref))
        if not added:
            return ["n/a", "n/a"]
        return [f"{statistics.median(added):.1f}", f"{_p95(added):.1f}"]

    def _stream(self, method: str) -> list[str]:
        same = with_output = total = 0
        for i in range(len(self.requests)):
            streamed = self.calls.get((method, i, "stream"))
            plain = self.calls.get((method, i, "r0"))
            if not streamed or not plain:
                continue
            total += 1
            same += streamed["text"] is not None and streamed["text"] == plain["text"]
            record = streamed["record"]
            with_output += bool(record and record["output"])
        if method not in BASELINE:
            return [f"{same}/{total}", "-"]
        return [f"{same}/{total}", f"{with_output}/{total}"]

    def _records(self, method: str, calls: list[dict]) -> str:
        counted = [r["records_added"] for r in calls if r["records_added"] is not None]
        if not counted:
            return "-"
        other = Counter(n for n in counted if n != 1)
        if other:
            shown = ", ".join(f"{k} record(s) on {v} call(s)" for k, v in sorted(other.items()))
            self.notes.append(f"{method}: {shown}")
        return f"{counted.count(1)}/{len(counted)}"

    def _failure_notes(self, method: str, failed: list[dict]) -> None:
        by_error: dict[str, set[str]] = defaultdict(set)
        for r in failed:
            by_error[r["error"]].add(self._name(r["id"]))
        for error, names in by_error.items():
            shown = ", ".join(sorted(names)[:4]) + (", ..." if len(names) > 4 else "")
            self.notes.append(
                f"{method} failed on {len(names)} request(s) ({shown}): {error[:300]}"
            )

    def _name(self, i: int) -> str:
        return self.requests[i][0]

    def counter_notes(self, methods: Sequence[str]) -> None:
        """How each method's records count the raw request, against the server-side counter."""
        for method in methods:
            diffs = []
            for i, raw in enumerate(self.raw):
                call = self.calls.get((method, i, "r0"))
                if raw is None or call is None or not call["record"]:
                    continue
                exact = count_tokens_messages(raw["messages"], model=MODEL)
                diffs.append(_pct(call["record"]["before"] - exact, exact))
            if not diffs:
                continue
            equal = sum(d == 0 for d in diffs)
            text = f"{method}: recorded tokens before = server-side count on {equal}/{len(diffs)}"
            if equal < len(diffs):
                text += f" (difference {min(diffs):+.1f}% to {max(diffs):+.1f}%)"
            self.notes.append(text)


# -- printing ---------------------------------------------------------------------------------


def render(rows: list[list[str]], notes: list[str], markdown: bool, title: str) -> None:
    if markdown:
        print(f"### {title}\n")
        print("| " + " | ".join(HEADERS) + " |")
        print("|" + "---|" * len(HEADERS))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print()
        for note in notes:
            print(f"- {note}")
        return
    table = Table(title=title)
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console = Console(width=max(Console().width, 220))
    console.print(table)
    for note in notes:
        console.print(f"- {note}", markup=False)


def _hrai_notes(meta: dict[str, Any], analysis: Analysis, n: int) -> list[str]:
    notes = [
        f"headroom-ai {meta.get('version', '?')} with openai {meta.get('openai', '?')} in its "
        f"own process; its latency and byte baseline is the raw client in that process"
    ]
    same = sum(
        analysis.sent(HRAI_RAW, i) == analysis.raw[i] and analysis.raw[i] is not None
        for i in range(n)
    )
    notes.append(f"raw client in headroom-ai's venv sent the same JSON as ours on {same}/{n}")
    if meta.get("warning_count"):
        shown = "; ".join(meta.get("warnings", [])[:3])
        notes.append(f"headroom-ai logged {meta['warning_count']} warning(s), e.g. {shown[:400]}")
    return notes


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    log = Console(stderr=True)
    if not (DATA_DIR / "conversations").is_dir():
        print(f"benchmark data not found at {DATA_DIR / 'conversations'}; nothing to measure")
        return 0
    from tests.integrations.provider_server import ProviderServer

    requests = load_requests()
    log.print(f"{len(requests)} requests, {args.repeats} timed passes")
    notes: list[str] = []
    methods = [RAW, "ours optimize", "ours audit"]
    with ProviderServer() as server, tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        start = time.perf_counter()
        rows = run_ours(server.openai_base_url, requests, args.repeats, Path(tmp))
        log.print(f"ours done in {time.perf_counter() - start:.1f}s")
        meta: dict[str, Any] = {}
        if args.headroom_ai_python is None:
            notes.append("headroom-ai skipped: pass --headroom-ai-python PATH (see README.md)")
        else:
            start = time.perf_counter()
            hrai_rows, meta, error = run_headroom_ai(
                args.headroom_ai_python, server.openai_base_url, requests, args.repeats
            )
            log.print(f"headroom-ai done in {time.perf_counter() - start:.1f}s")
            if error:
                notes.append(f"headroom-ai failed: {error}")
            else:
                rows += hrai_rows
                methods += ["headroom-ai optimize", "headroom-ai audit"]
        received = server.requests
    tags = Counter(r.headers.get(TAG_HEADER) for r in received)
    if any(n != 1 for n in tags.values()):
        notes.append(f"server got repeated tags: {[t for t, n in tags.items() if n != 1][:5]}")
    analysis = Analysis(rows, {r.headers.get(TAG_HEADER, ""): r.body for r in received}, requests)
    table = [analysis.row(method) for method in methods]
    if meta:
        notes += _hrai_notes(meta, analysis, len(requests))
    analysis.counter_notes([m for m in methods if m in BASELINE])
    for raw in (RAW, HRAI_RAW):
        ms = [r["ms"] for r in rows if r["method"] == raw and r["pass_name"] in analysis.timed]
        if ms:
            notes.append(f"{raw}: median call {statistics.median(ms):.1f} ms (the baseline)")
    title = (
        f"HeadroomClient over a local OpenAI-compatible server: {len(requests)} requests "
        f"(gpt-4o), {args.repeats} timed passes after a warm-up"
    )
    render(table, notes + analysis.notes, args.markdown, title)
    return 0


if __name__ == "__main__":
    sys.exit(main())

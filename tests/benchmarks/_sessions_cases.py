"""Sessions for ``bench_sessions.py``: every conversation replayed request by request.

Two folders of real agent histories (OpenAI chat format), read in place:
``../shared/data/conversations_coding_agents`` (five long Claude Code sessions) and
``../shared/data/conversations`` (18 shorter agent runs, ``index.json`` names their source).
Request k is the history before the k-th assistant message that follows a user or tool
message, plus the whole history when it ends on one (``_context_cases.replay_requests``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from _context_cases import SOURCE_LABELS, replay_requests
from _context_methods import Messages
from _datasets import load_conversation_cases

CODING = "coding agents"
CODING_DIR = "conversations_coding_agents"


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    group: str  # CODING, or the source label of a public conversation
    messages: Messages
    requests: tuple[Messages, ...]

    @property
    def task(self) -> str | None:
        """The first user message's content as JSON (what must be in every request)."""
        for m in self.messages:
            if m.get("role") == "user":
                return json.dumps(m.get("content"), sort_keys=True)
        return None


def _session(name: str, group: str, messages: Messages) -> Session:
    return Session(name, group, messages, tuple(replay_requests(messages)))


def load_sessions(data_dir: Path, which: str = "all", limit: int | None = None) -> list[Session]:
    """``which``: ``coding``, ``public`` or ``all``; ``limit``: the first N requests of each."""
    out: list[Session] = []
    if which in ("coding", "all"):
        for path in sorted((data_dir / CODING_DIR).glob("*.json")):
            messages = json.loads(path.read_text(encoding="utf-8"))
            out.append(_session(path.stem, CODING, messages))
    if which in ("public", "all") and (data_dir / "conversations").is_dir():
        for case in load_conversation_cases(data_dir):
            out.append(
                _session(case.name, SOURCE_LABELS.get(case.group, case.group), case.messages)
            )
    if limit is not None:
        out = [Session(s.name, s.group, s.messages, s.requests[:limit]) for s in out if s.requests]
    return out


def short_name(name: str) -> str:
    """``spotter__4d5611e5-241a-...__pre-compact`` -> ``spotter 4d5611e5 pre-compact``."""
    parts = name.split("__")
    if len(parts) >= 2:
        head, ident = parts[0], parts[1].split("-")[0]
        return " ".join([head, ident, *parts[2:]])
    return name

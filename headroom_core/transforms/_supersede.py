"""Superseded tool outputs: what a later call in the same history has made stale.

* a **read** of a file, once the file is edited or written (successfully) or read again
  (a later read covering the same lines);
* a **write**'s own output (an edit's ``cat -n`` snippet), once the file is written again;
* a **command**'s output, once the same command runs again (a shell command's output is
  the state it read: the later run has the fresh one);
* a **state** (a todo list), once a later call replaces it;
* any other tool's output, once a later call with the same name and arguments returns the
  same text again (its tool may not be idempotent: "the next page" with no arguments
  returns new data, so only an exact repeat is stale).

What each tool does is looked up by name in :data:`TOOL_ACTS` (Claude Code's and OpenHands'
tools). Only OpenAI-shaped ``tool`` messages are considered.
A superseded output is not collapsed here: :mod:`._compaction` decides when.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..ccr._tool import RETRIEVE_TOOL_NAME
from ..messages import Message, content_text, find_tool_units

_WRITE_OK = re.compile(
    r"has been (?:updated|edited|modified|created|written)|created successfully|"
    r"updated successfully|written successfully|\bapplied \d+ edits?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Act:
    """What one tool call does, as far as staleness goes."""

    kind: str  # "read" | "write" | "run" | "state" | "repeat"
    key: str  # a file path, a command, a state name
    lines: tuple[float, float] = (1, math.inf)  # the lines a read shows


@dataclass(frozen=True, slots=True)
class Stale:
    """Tool message ``index`` is superseded from message ``at`` on."""

    index: int
    at: int
    reason: str
    subject: str


def _read(path_key: str, offset_key: str = "offset", limit_key: str = "limit") -> Any:
    def act(args: Mapping[str, Any]) -> Act | None:
        path = args.get(path_key)
        if not isinstance(path, str):
            return None
        first = args.get(offset_key)
        count = args.get(limit_key)
        start = float(first) if isinstance(first, (int, float)) and first > 0 else 1.0
        end = start + count - 1 if isinstance(count, (int, float)) and count > 0 else math.inf
        return Act("read", path, (start, end))

    return act


def _write(path_key: str) -> Callable[[Mapping[str, Any]], Act | None]:
    def act(args: Mapping[str, Any]) -> Act | None:
        path = args.get(path_key)
        return Act("write", path) if isinstance(path, str) else None

    return act


def _run(name: str, key: str) -> Callable[[Mapping[str, Any]], Act | None]:
    def act(args: Mapping[str, Any]) -> Act | None:
        value = args.get(key)
        return Act("run", f"{name}:{value}") if isinstance(value, (str, int)) else None

    return act


def _openhands_editor(args: Mapping[str, Any]) -> Act | None:
    path, command = args.get("path"), args.get("command")
    if not isinstance(path, str):
        return None
    if command == "view":
        span = args.get("view_range")
        if isinstance(span, list) and len(span) == 2 and all(isinstance(v, int) for v in span):
            end = math.inf if span[1] == -1 else float(span[1])
            return Act("read", path, (float(span[0]), end))
        return Act("read", path)
    if command in ("create", "str_replace", "insert", "undo_edit"):
        return Act("write", path)
    return None


#: tool name -> what its call does (from its parsed arguments).
TOOL_ACTS: dict[str, Callable[[Mapping[str, Any]], Act | None]] = {
    # Claude Code
    "Read": _read("file_path"),
    "Edit": _write("file_path"),
    "MultiEdit": _write("file_path"),
    "Write": _write("file_path"),
    "NotebookEdit": _write("notebook_path"),
    "Bash": _run("Bash", "command"),
    "TaskOutput": _run("TaskOutput", "task_id"),
    "TodoWrite": lambda args: Act("state", "todos"),
    # OpenHands
    "str_replace_editor": _openhands_editor,
    "execute_bash": _run("execute_bash", "command"),
}

_REASONS = {
    "read": "the file was read again later",
    "write": "the file was changed later",
    "run": "the same command ran again later",
    "state": "a later call replaced this state",
    "repeat": "the same call returned the same output later",
}


def _act(name: str, arguments: str) -> Act:
    try:
        args = json.loads(arguments) if arguments else {}
    except ValueError:
        args = None
    rule = TOOL_ACTS.get(name)
    act = rule(args) if rule is not None and isinstance(args, dict) else None
    if act is not None:
        return act
    canonical = json.dumps(args, sort_keys=True) if args is not None else arguments
    return Act("repeat", f"{name}:{canonical}")


@dataclass(frozen=True, slots=True)
class _Call:
    result: int  # index of the tool message answering it
    act: Act
    ok: bool  # a write that reports success (a failed edit changes nothing)
    text: str  # the output, as the caller gave it


def _calls(messages: Sequence[Message], texts: Sequence[str]) -> list[_Call]:
    out: list[_Call] = []
    for unit in find_tool_units(messages):
        by_id = {str(c.get("id", "")): c for c in messages[unit.call_index].get("tool_calls") or ()}
        for r in unit.result_indices:
            call = by_id.get(str(messages[r].get("tool_call_id")))
            fn = (call or {}).get("function") or {}
            name = str(fn.get("name", ""))
            if not call or name == RETRIEVE_TOOL_NAME:
                continue
            act = _act(name, str(fn.get("arguments", "")))
            ok = act.kind != "write" or bool(_WRITE_OK.search(texts[r][:400]))
            out.append(_Call(r, act, ok, texts[r]))
    return out


def _supersedes(old_call: _Call, new: _Call) -> str | None:
    """Why ``new`` makes the output of ``old_call`` stale (None: it does not)."""
    old, act = old_call.act, new.act
    if old.kind == "repeat":
        same = act.kind == "repeat" and act.key == old.key and new.text == old_call.text
        return _REASONS["repeat"] if same else None
    if old.kind in ("read", "write") and act.key == old.key:
        if act.kind == "write" and new.ok:
            return _REASONS["write"]
        if act.kind == "read" and act.lines[0] <= old.lines[0] and act.lines[1] >= old.lines[1]:
            return _REASONS["read"]
        return None
    if old.kind == act.kind and old.kind in ("run", "state") and act.key == old.key:
        return _REASONS[old.kind]
    return None


def find_stale(
    messages: Sequence[Message], originals: Sequence[Message] | None = None
) -> list[Stale]:
    """Every superseded tool output, with the message it is superseded from. ``originals``
    (same length): the messages as the caller gave them, read for write success."""
    source = originals if originals is not None and len(originals) == len(messages) else messages
    texts = [content_text(m) if m.get("role") == "tool" else "" for m in source]
    calls = _calls(messages, texts)
    out: list[Stale] = []
    by_key: dict[str, list[int]] = {}
    for k, call in enumerate(calls):
        by_key.setdefault(call.act.key, []).append(k)
    for keyed in by_key.values():
        for pos, k in enumerate(keyed):
            old = calls[k]
            for later in keyed[pos + 1 :]:
                reason = _supersedes(old, calls[later])
                if reason is not None:
                    out.append(Stale(old.result, calls[later].result, reason, old.act.key))
                    break
    out.sort(key=lambda s: (s.at, s.index))
    return out


__all__ = ["TOOL_ACTS", "Act", "Stale", "find_stale"]

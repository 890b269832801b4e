"""Family-specific retention checks on a method's output request.

Each check returns (kept, total) counts so the report can pool them over cases.
A total of 0 means the check does not apply to that case.

* json: lossless (the tool output parses, or decodes with the method's own
  documented decoder, to JSON equal to the input); error-body strings kept; the
  identifying value of the item the user asks about kept.
* logs: WARN/ERROR/FATAL-like lines kept verbatim; rare lines (template seen at
  most twice) kept verbatim.
* conversations: tool-call pairing no worse than the input's; every user and
  assistant text unchanged.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from _datasets import BuildLogFacts, Case, JsonFacts, LogFacts, TableFacts

Count = tuple[int, int]  # (kept, total)


@dataclass(frozen=True, slots=True)
class Retention:
    """Per-case retention counts, keyed by column name."""

    counts: dict[str, Count]


def text_of(content: Any) -> str:
    """The text of a message content (string or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p if isinstance(p, str) else str(p.get("text", "")) for p in content]
        return "\n".join(parts)
    return ""


def tool_texts(messages: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    return [
        (i, text_of(m.get("content"))) for i, m in enumerate(messages) if m.get("role") == "tool"
    ]


def _numbers(value: Any) -> Any:
    """JSON's data model has one number type: ``13.0`` and ``13`` are the same value."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def canonical(value: Any) -> str:
    """Canonical JSON: key order ignored, ``13.0 == 13``, but ``true != 1`` and ``"1" != 1``."""
    return json.dumps(_numbers(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _present(needle: str, haystack: str) -> bool:
    if needle in haystack:
        return True
    escaped = json.dumps(needle, ensure_ascii=False)[1:-1]  # as it sits inside a JSON string
    return escaped != needle and escaped in haystack


def _decodes_to(text: str, decoded: Any, original: str) -> bool:
    try:
        if canonical(json.loads(text)) == original:
            return True
    except (ValueError, RecursionError):
        pass
    return decoded is not None and canonical(decoded) == original


def json_retention(
    facts: JsonFacts, messages: Sequence[Mapping[str, Any]], decoded: Mapping[int, Any]
) -> Retention:
    tools = tool_texts(messages)
    if not tools:
        return Retention(
            {"valid": (0, 1), "lossless": (0, 1), "errors": (0, len(facts.errors)), "query": (0, 1)}
        )
    index, text = tools[-1]
    lossless = _decodes_to(text, decoded.get(index), canonical(facts.original))
    everything = "\n".join(t for _, t in tools)
    errors_kept = sum(_present(s, everything) for s in facts.errors)
    query: Count = (0, 0)
    if facts.needle is not None:
        query = (int(_present(facts.needle, everything)), 1)
    verbatim: Count = (0, 0)
    if facts.item is not None:
        parsed = decoded.get(index)
        if parsed is None:
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                parsed = None
        verbatim = (int(_contains(parsed, canonical(facts.item))), 1)
    try:
        json.loads(text)
        valid = 1
    except (ValueError, RecursionError):
        valid = 0
    return Retention(
        {
            "valid": (valid, 1),
            "lossless": (int(lossless), 1),
            "errors": (errors_kept, len(facts.errors)),
            "query": query,
            "verbatim": verbatim,
        }
    )


def _contains(node: Any, wanted: str) -> bool:
    """Is a value whose canonical JSON is ``wanted`` anywhere inside ``node``?"""
    stack = [node]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if canonical(value) == wanted:
                return True
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _lines_kept(lines: Iterable[str], output: str, output_lines: set[str]) -> Count:
    kept = total = 0
    for line in lines:
        if not line.strip():
            continue
        total += 1
        kept += line in output_lines or line in output
    return kept, total


def log_retention(facts: LogFacts, messages: Sequence[Mapping[str, Any]]) -> Retention:
    output = "\n".join(t for _, t in tool_texts(messages))
    output_lines = {line.rstrip("\r") for line in output.split("\n")}
    return Retention(
        {
            "important": _lines_kept(facts.important, output, output_lines),
            "rare": _lines_kept(facts.rare, output, output_lines),
        }
    )


def pairing_problems(messages: Sequence[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """Unanswered tool calls and tool results that answer no earlier call."""
    called: set[str] = set()
    answered: set[str] = set()
    problems: set[tuple[str, str]] = set()
    for message in messages:
        for call in message.get("tool_calls") or ():
            called.add(str(call.get("id")))
        if message.get("role") == "tool":
            call_id = str(message.get("tool_call_id"))
            if call_id in called and call_id not in answered:
                answered.add(call_id)
            else:
                problems.add(("orphan_result", call_id))
    problems.update(("unanswered_call", c) for c in called - answered)
    return problems


def _dialogue(messages: Sequence[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter(
        (str(m["role"]), text_of(m.get("content")))
        for m in messages
        if m.get("role") in ("user", "assistant") and text_of(m.get("content")).strip()
    )


def conversation_retention(
    original: Sequence[Mapping[str, Any]], messages: Sequence[Mapping[str, Any]]
) -> Retention:
    # Some histories end on a call that was never answered: the output must not be worse.
    pairing_ok = pairing_problems(messages) <= pairing_problems(original)
    before = _dialogue(original)
    kept = sum((before & _dialogue(messages)).values())
    return Retention({"pairing": (int(pairing_ok), 1), "text": (kept, sum(before.values()))})


def _rows_found(value: Any) -> set[str]:
    """Canonical JSON of every object anywhere in ``value`` (the rows a method kept)."""
    found: set[str] = set()
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found.add(canonical(node))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def table_retention(
    facts: TableFacts, messages: Sequence[Mapping[str, Any]], decoded: Mapping[int, Any]
) -> Retention:
    """answer: a row holding the answer cell is kept whole (questions whose answer is read
    from a cell); lossless: the table decodes exactly; agg_rows: an aggregate_or_compare
    question whose table was cut keeps every row the checker selects (``k/t``)."""
    tools = tool_texts(messages)
    index, text = tools[-1]
    value = decoded.get(index)
    if value is None:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = None
    lossless = _decodes_to(text, decoded.get(index), canonical(facts.original))
    found = _rows_found(value) if value is not None else set()

    def kept(i: int) -> bool:
        row = facts.original[i]
        if value is None:  # not JSON: every cell of the row must be in the text
            return all(_present(str(v), text) for v in row.values() if str(v).strip())
        return canonical(row) in found

    counts: dict[str, Count] = {"lossless": (int(lossless), 1)}
    if facts.answer_rows and not facts.computed:
        counts["answer"] = (int(any(kept(i) for i in facts.answer_rows)), 1)
    if facts.kind == "aggregate_or_compare" and not lossless and facts.selected is not None:
        counts["agg_rows"] = (int(all(kept(i) for i in facts.selected)), 1)
    return Retention(counts)


def build_log_retention(facts: BuildLogFacts, messages: Sequence[Mapping[str, Any]]) -> Retention:
    """errors: error lines present verbatim in what a terminal would show of the output;
    plain: the output holds no escape sequence (what the model reads is plain text)."""
    from _build_log_check import screen_lines

    output = "\n".join(t for _, t in tool_texts(messages))
    shown = set(screen_lines(output))
    kept = sum(1 for line in facts.errors if line in shown or line in output)
    return Retention({"errors": (kept, len(facts.errors)), "plain": (int("\x1b" not in output), 1)})


def retention(
    case: Case, messages: Sequence[Mapping[str, Any]], decoded: Mapping[int, Any]
) -> Retention:
    if isinstance(case.facts, BuildLogFacts):
        return build_log_retention(case.facts, messages)
    if isinstance(case.facts, JsonFacts):
        return json_retention(case.facts, messages, decoded)
    if isinstance(case.facts, TableFacts):
        return table_retention(case.facts, messages, decoded)
    if isinstance(case.facts, LogFacts):
        return log_retention(case.facts, messages)
    return conversation_retention(case.messages, messages)

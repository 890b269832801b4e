"""Context fitting: RollingWindow and IntelligentContextManager keep every request inside
its budget (or raise BudgetError), never break tool pairing, never change kept text, and
cut a growing history in few steps so its prefix stays byte-stable."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from headroom_core import BudgetError, HeadroomConfig, RollingWindowConfig, compress
from headroom_core.ccr import MemoryOriginalStore, retrieve
from headroom_core.config import CacheAlignerConfig, IntelligentContextConfig
from headroom_core.messages import validate_pairing
from headroom_core.tokens import get_tokenizer
from headroom_core.transforms import IntelligentContextManager, RollingWindow

TOK = get_tokenizer("gpt-4o")


def call(cid: str, name: str = "lookup") -> dict[str, Any]:
    return {
        "id": cid,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps({"q": cid})},
    }


def history(
    turns: int, tool_chars: int = 1500, error_at: int | None = None
) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": "You are a support agent."}]
    for t in range(turns):
        msgs.append({"role": "user", "content": f"question {t}: what about order O-{1000 + t}?"})
        cid = f"c{t}"
        msgs.append({"role": "assistant", "content": None, "tool_calls": [call(cid)]})
        body = f"ERROR: lookup failed for O-{1000 + t} " if t == error_at else ""
        msgs.append(
            {
                "role": "tool",
                "tool_call_id": cid,
                "content": body
                + f"order O-{1000 + t} "
                + ("status shipped; " * (tool_chars // 16)),
            }
        )
        msgs.append({"role": "assistant", "content": f"Order O-{1000 + t} has shipped."})
    return msgs


def texts(msgs: list[dict[str, Any]], role: str) -> list[Any]:
    return [
        m["content"]
        for m in msgs
        if m["role"] == role and not str(m["content"]).startswith("[headroom:")
    ]


def marker_ref(msgs: list[dict[str, Any]]) -> str:
    for m in msgs:
        found = re.search(r"ref=([0-9a-f]{32})", str(m.get("content")))
        if found and str(m["content"]).startswith("[headroom:"):
            return found.group(1)
    raise AssertionError("no marker")


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_rolling_window_fits_pairs_and_keeps_text(fraction: float) -> None:
    msgs = history(12)
    window = int(TOK.count_messages(msgs) * fraction)
    store = MemoryOriginalStore()
    rw = RollingWindow(RollingWindowConfig(output_buffer_tokens=100), store)
    out = rw.apply(msgs, max_tokens=window)
    assert TOK.count_messages(out) <= window - 100
    validate_pairing(out)
    assert out[0] == msgs[0]
    assert out[-8:] == msgs[-8:]  # the last two turns, untouched
    kept_users = texts(out, "user")
    assert kept_users == [
        u for u in texts(msgs, "user") if u in kept_users
    ]  # order kept, text unchanged
    dropped = json.loads(retrieve(marker_ref(out), store=store))
    assert len(dropped) + len(out) - 1 == len(msgs)
    assert all(m in msgs for m in dropped)


def test_rolling_window_drops_tool_units_before_turns() -> None:
    msgs = history(8)
    window = TOK.count_messages(msgs) - 300
    out = RollingWindow(RollingWindowConfig(output_buffer_tokens=0), MemoryOriginalStore()).apply(
        msgs, max_tokens=window
    )
    assert texts(out, "user") == texts(msgs, "user")  # every user turn still there
    assert sum(1 for m in out if m["role"] == "tool") < sum(1 for m in msgs if m["role"] == "tool")


def test_budget_error_when_the_protected_part_does_not_fit() -> None:
    msgs = history(3)
    with pytest.raises(BudgetError) as info:
        RollingWindow(RollingWindowConfig(output_buffer_tokens=0)).apply(msgs, max_tokens=200)
    assert info.value.budget_tokens == 200 and info.value.protected_tokens > 200
    assert "protected part" in str(info.value)


def test_compress_fits_the_window_or_raises() -> None:
    msgs = history(10)
    cfg = HeadroomConfig(rolling_window=RollingWindowConfig(output_buffer_tokens=500))
    window = TOK.count_messages(msgs) // 2
    result = compress(msgs, config=cfg, max_tokens=window)
    assert result.tokens_after <= window - 500
    assert any(t.startswith("rolling_window:") for t in result.transforms_applied)
    with pytest.raises(BudgetError):
        compress(msgs, config=cfg, max_tokens=800)


def test_growing_history_is_cut_in_few_steps() -> None:
    full = history(30, tool_chars=800)
    window = TOK.count_messages(full[:41])  # fits the first 10 turns
    rw = RollingWindow(
        RollingWindowConfig(output_buffer_tokens=0, cut_quantum=0.25), MemoryOriginalStore()
    )
    outputs = [rw.apply(full[: 4 * t + 1], max_tokens=window) for t in range(10, 31)]
    changes = sum(1 for a, b in zip(outputs, outputs[1:], strict=False) if b[: len(a)] != a)
    growth = TOK.count_messages(full) - window
    steps = -(-growth // int(0.25 * window)) + 1  # one re-cut per quantum of growth
    assert 0 < changes <= steps < len(outputs) // 2  # unquantised, every turn would re-cut
    fine = RollingWindow(
        RollingWindowConfig(output_buffer_tokens=0, cut_quantum=0.01), MemoryOriginalStore()
    )
    fine_out = [fine.apply(full[: 4 * t + 1], max_tokens=window) for t in range(10, 31)]
    fine_changes = sum(1 for a, b in zip(fine_out, fine_out[1:], strict=False) if b[: len(a)] != a)
    assert fine_changes > changes


def test_intelligent_manager_keeps_errors_and_reports_what_it_did() -> None:
    msgs = history(10, error_at=1)
    window = int(TOK.count_messages(msgs) * 0.5)
    icm = IntelligentContextManager(
        IntelligentContextConfig(enabled=True, output_buffer_tokens=0), store=MemoryOriginalStore()
    )
    result = icm.apply(msgs, TOK, model_limit=window)
    assert result.tokens_after <= window and result.tokens_before == TOK.count_messages(msgs)
    validate_pairing(result.messages)
    assert any(
        t.startswith(("intelligent_cap:", "intelligent_compress:"))
        for t in result.transforms_applied
    )
    joined = json.dumps(result.messages)
    assert "lookup failed for O-1001" in joined  # the old error unit outranks newer plain units
    assert result.messages[-8:] == msgs[-8:]


def test_intelligent_manager_honours_protected_indices() -> None:
    msgs = history(10)
    window = int(TOK.count_messages(msgs) * 0.45)
    icm = IntelligentContextManager(
        IntelligentContextConfig(enabled=True, output_buffer_tokens=0), store=MemoryOriginalStore()
    )
    result = icm.apply(msgs, TOK, model_limit=window, protected=(5, 6, 7))
    assert msgs[5] in result.messages and msgs[6] in result.messages and msgs[7] in result.messages


class ToolImportance:
    def __init__(self, tool: str) -> None:
        self.tool = tool

    def importance(self, tool: str | None) -> float:
        return 1.0 if tool == self.tool else 0.0


def test_learned_importance_ranks_a_tool_higher() -> None:
    msgs = history(8)
    msgs[2 + 4 * 2]["tool_calls"] = [call("c2", "get_invoice")]  # turn 2 calls another tool
    window = int(TOK.count_messages(msgs) * 0.5)
    cfg = IntelligentContextConfig(enabled=True, output_buffer_tokens=0)
    plain = IntelligentContextManager(cfg, store=MemoryOriginalStore()).apply(
        msgs, TOK, model_limit=window
    )
    learned = IntelligentContextManager(
        cfg, ToolImportance("get_invoice"), store=MemoryOriginalStore()
    ).apply(msgs, TOK, model_limit=window)
    assert msgs[10] not in plain.messages
    assert msgs[10] in learned.messages


def test_fitting_real_conversations(conversations: list) -> None:
    for name, msgs in conversations:
        total = TOK.count_messages(msgs)
        for fraction in (0.25, 0.5, 0.75):
            window = int(total * fraction)
            for cfg in (
                HeadroomConfig(rolling_window=RollingWindowConfig(output_buffer_tokens=0)),
                HeadroomConfig(
                    intelligent_context=IntelligentContextConfig(
                        enabled=True, output_buffer_tokens=0
                    )
                ),
            ):
                try:
                    out = compress(msgs, config=cfg, max_tokens=window)
                except BudgetError as exc:
                    assert exc.protected_tokens > exc.budget_tokens, (name, str(exc))
                    continue
                assert out.tokens_after <= window, name
                validate_pairing(out.messages, allow_pending=True)
                kept = texts(out.messages, "user")
                assert all(u in texts(msgs, "user") for u in kept), name


def test_without_a_budget_old_messages_compress_the_same_every_turn(conversations: list) -> None:
    """Replaying a conversation turn by turn, each request repeats the previous one's
    compressed messages byte for byte (the query of a tool output is the turn it served)."""
    for name, msgs in conversations:
        boundaries = [i for i, m in enumerate(msgs) if m["role"] == "user"][1:] + [len(msgs)]
        previous = None
        for end in boundaries:
            out = compress(msgs[:end]).messages
            if previous is not None:
                assert out[: len(previous)] == previous, (name, end)
            previous = out


def test_one_long_agent_task_fits_by_dropping_its_oldest_tool_calls() -> None:
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Fix the failing test in utils.py"},
    ]
    for k in range(12):
        msgs.append({"role": "assistant", "content": None, "tool_calls": [call(f"t{k}", "bash")]})
        msgs.append(
            {"role": "tool", "tool_call_id": f"t{k}", "content": f"step {k} output " + "x " * 400}
        )
    window = TOK.count_messages(msgs) // 2
    out = RollingWindow(RollingWindowConfig(output_buffer_tokens=0), MemoryOriginalStore()).apply(
        msgs, max_tokens=window
    )
    assert TOK.count_messages(out) <= window
    validate_pairing(out)
    assert out[0] == msgs[0] and msgs[1] in out  # the prompt and the task stay
    assert out[-4:] == msgs[-4:]  # the last two tool calls stay
    assert (
        out[1]["role"] == "system" and "ref=" in out[1]["content"]
    )  # a system note, not a user turn


@pytest.mark.parametrize("head", ["system", "blocks", "none", "system-not-kept"])
@pytest.mark.parametrize("fitter", ["rolling", "intelligent"])
def test_a_fitted_request_never_has_two_system_messages_in_a_row(head: str, fitter: str) -> None:
    # Issue 14, item 8: compress() joins the fitter's note to the system message beside it
    # (the fitter called directly returns it as its own message, as above).
    msgs = history(10)
    if head == "blocks":
        msgs[0] = {"role": "system", "content": [{"type": "text", "text": "You are an agent."}]}
    elif head == "none":
        msgs = msgs[1:]
    config = HeadroomConfig(
        cache_aligner=CacheAlignerConfig(enabled=False),
        rolling_window=RollingWindowConfig(
            output_buffer_tokens=0, keep_system=head != "system-not-kept"
        ),
        intelligent_context=IntelligentContextConfig(
            enabled=fitter == "intelligent",
            output_buffer_tokens=0,
            keep_system=head != "system-not-kept",
        ),
    )
    out = compress(msgs, config=config, max_tokens=TOK.count_messages(msgs) // 2).messages
    roles = [m["role"] for m in out]
    note = re.compile(r"\[headroom: \d+ earlier messages.*ref=[0-9a-f]{32}")
    assert len(out) < len(msgs) and any(note.search(json.dumps(m["content"])) for m in out)
    assert all(not (a == b == "system") for a, b in zip(roles, roles[1:], strict=False)), roles
    if head == "blocks":
        assert out[0]["content"][0] == msgs[0]["content"][0]
        assert out[0]["content"][1]["text"].startswith("[headroom: ")
    if head == "none":
        assert roles[0] == "system" and out[0]["content"].startswith("[headroom: ")


def test_fitted_request_converts_to_anthropic() -> None:
    from headroom_core import to_anthropic

    msgs = history(10)
    out = RollingWindow(RollingWindowConfig(output_buffer_tokens=0), MemoryOriginalStore()).apply(
        msgs, max_tokens=TOK.count_messages(msgs) // 2
    )
    body = to_anthropic(out)
    assert [b["type"] for b in body["system"]] == ["text", "text"]
    assert body["system"][0]["text"] == msgs[0]["content"] and "ref=" in body["system"][1]["text"]
    assert all(m["role"] in ("user", "assistant") for m in body["messages"])


@pytest.mark.parametrize("fraction", [0.3, 0.45, 0.6, 0.75, 0.9])
@pytest.mark.parametrize("fitter", ["rolling", "intelligent"])
def test_a_cut_never_leaves_an_answer_without_its_question(fraction: float, fitter: str) -> None:
    # Tool units go first; what is left of an old turn is its question and, as a unit of its
    # own, the answer after the tool call. A cut between the two would start the kept part
    # with an assistant message (rejected by the Anthropic API, misleading for any model).
    msgs = history(12, tool_chars=200)
    for m in msgs[1:]:  # long questions and answers: dropping tool units alone cannot fit
        if m["role"] in ("user", "assistant") and m["content"]:
            m["content"] += " details" * 60
    window = int(TOK.count_messages(msgs) * fraction)
    config = HeadroomConfig(
        rolling_window=RollingWindowConfig(output_buffer_tokens=0),
        intelligent_context=IntelligentContextConfig(
            enabled=fitter == "intelligent", output_buffer_tokens=0
        ),
    )
    out = compress(msgs, model="gpt-4o", config=config, max_tokens=window).messages
    assert TOK.count_messages(out) <= window
    first = next(m for m in out if m["role"] != "system")
    assert first["role"] == "user"
    if len(out) < len(msgs):
        from headroom_core import to_anthropic

        assert to_anthropic(out)["messages"][0]["role"] == "user"


def test_intelligent_cut_restores_the_question_of_a_kept_error() -> None:
    msgs = history(10, error_at=1)
    window = int(TOK.count_messages(msgs) * 0.5)
    cfg = IntelligentContextConfig(enabled=True, output_buffer_tokens=0)
    out = (
        IntelligentContextManager(cfg, store=MemoryOriginalStore())
        .apply(msgs, TOK, model_limit=window)
        .messages
    )
    assert "lookup failed for O-1001" in json.dumps(out)  # the error unit is kept ...
    first = next(m for m in out if m["role"] != "system")
    assert first == msgs[5]  # ... after its own question, restored
    assert TOK.count_messages(out) <= window

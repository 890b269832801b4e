"""Context fitting: RollingWindow and IntelligentContextManager keep every request inside
its budget (or raise BudgetError), cut tool outputs before they drop turns, never break tool
pairing, never change kept text, keep everything retrievable, and rewrite a growing history
only at compaction points so its prefix stays byte-stable in between."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest

from headroom_core import BudgetError, HeadroomConfig, RollingWindowConfig, compress
from headroom_core.ccr import MemoryOriginalStore, OriginalStore, retrieve
from headroom_core.config import CacheAlignerConfig, IntelligentContextConfig
from headroom_core.messages import content_text, validate_pairing
from headroom_core.tokens import get_tokenizer
from headroom_core.transforms import IntelligentContextManager, RollingWindow

TOK = get_tokenizer("gpt-4o")
REF = re.compile(r"ref=([0-9a-f]{32})")


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


def said(msgs: list[dict[str, Any]]) -> list[str]:
    """The user and assistant messages, as JSON (content and tool calls)."""
    return [
        json.dumps([m.get("content"), m.get("tool_calls")])
        for m in msgs
        if m["role"] in ("user", "assistant")
    ]


def is_subsequence(part: list[str], whole: list[str]) -> bool:
    it = iter(whole)
    return all(x in it for x in part)


def assert_retrievable(
    out: list[dict[str, Any]], msgs: list[dict[str, Any]], store: OriginalStore
) -> None:
    """Every input message is in the output unchanged, or its tool output is stored under a
    ref the output names, or it is inside a stored run of dropped messages."""
    stored_texts: set[str] = set()
    stored_messages: list[dict[str, Any]] = []
    for m in out:
        for ref in REF.findall(content_text(m)):
            text = retrieve(ref, store=store)
            assert text is not None, ref
            stored_texts.add(text)
            if text.startswith("["):
                with contextlib.suppress(ValueError):
                    stored_messages += json.loads(text)
    for m in msgs:
        if m in out or m in stored_messages:
            continue
        assert m["role"] == "tool" and content_text(m) in stored_texts, m


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
@pytest.mark.parametrize("fitter", ["rolling", "intelligent"])
def test_fits_keeps_text_and_everything_is_retrievable(fraction: float, fitter: str) -> None:
    msgs = history(12)
    window = int(TOK.count_messages(msgs) * fraction)
    store = MemoryOriginalStore()
    if fitter == "rolling":
        out = RollingWindow(RollingWindowConfig(output_buffer_tokens=100), store).apply(
            msgs, max_tokens=window
        )
    else:
        cfg = IntelligentContextConfig(enabled=True, output_buffer_tokens=100)
        out = (
            IntelligentContextManager(cfg, store=store)
            .apply(msgs, TOK, model_limit=window)
            .messages
        )
    assert TOK.count_messages(out) <= window - 100
    validate_pairing(out)
    assert out[0] == msgs[0] and msgs[1] in out  # the system prompt and the task
    assert is_subsequence(said(out), said(msgs))  # nothing changed, nothing reordered
    for m in msgs[-8:]:  # the last two turns: every question and answer still there
        if m["role"] in ("user", "assistant"):
            assert m in out
    assert_retrievable(out, msgs, store)


def test_tool_outputs_are_cut_before_any_turn_is_dropped() -> None:
    msgs = history(8)
    window = TOK.count_messages(msgs) - 300
    store = MemoryOriginalStore()
    out = RollingWindow(RollingWindowConfig(output_buffer_tokens=0), store).apply(
        msgs, max_tokens=window
    )
    assert TOK.count_messages(out) <= window
    assert said(out) == said(msgs)  # every question, call and answer still there
    cut = [m for m in out if m["role"] == "tool" and "ref=" in m["content"]]
    assert 0 < len(cut) < 8
    assert_retrievable(out, msgs, store)


def test_budget_error_only_when_the_text_alone_does_not_fit() -> None:
    msgs = history(3)
    with pytest.raises(BudgetError) as info:
        RollingWindow(RollingWindowConfig(output_buffer_tokens=0)).apply(msgs, max_tokens=100)
    assert info.value.budget_tokens == 100 and info.value.protected_tokens > 100
    assert "protected part" in str(info.value)
    # Huge tool outputs alone never make it refuse: they are cut, the newest included.
    big = history(3, tool_chars=40_000)
    text = sum(TOK.count_message(m) for m in big if m["role"] != "tool")
    window = text + 3 * 200
    out = RollingWindow(RollingWindowConfig(output_buffer_tokens=0)).apply(big, max_tokens=window)
    assert TOK.count_messages(out) <= window
    assert said(out) == said(big)


def test_compress_fits_the_window_or_raises() -> None:
    msgs = history(10)
    cfg = HeadroomConfig(rolling_window=RollingWindowConfig(output_buffer_tokens=500))
    window = TOK.count_messages(msgs) // 2
    result = compress(msgs, config=cfg, max_tokens=window)
    assert result.tokens_after <= window - 500
    assert any(t.startswith("cut_to_fit:") for t in result.transforms_applied)
    with pytest.raises(BudgetError):
        compress(msgs, config=cfg, max_tokens=600)


def test_growing_history_is_rewritten_at_compaction_points_only() -> None:
    full = history(30, tool_chars=800)
    window = TOK.count_messages(full[:41])  # fits the first 10 turns
    rw = RollingWindow(RollingWindowConfig(output_buffer_tokens=0), MemoryOriginalStore())
    outputs = [rw.apply(full[: 4 * t + 1], max_tokens=window) for t in range(10, 31)]
    changes = sum(1 for a, b in zip(outputs, outputs[1:], strict=False) if b[: len(a)] != a)
    assert all(TOK.count_messages(o) <= window for o in outputs)
    assert 0 < changes < len(outputs) // 3  # most turns extend the previous request


def test_the_newest_output_is_cut_when_it_alone_is_too_big() -> None:
    msgs = history(2)
    msgs += [
        {"role": "user", "content": "And the build log?"},
        {"role": "assistant", "content": None, "tool_calls": [call("log", "build")]},
        {
            "role": "tool",
            "tool_call_id": "log",
            "content": "\n".join(f"[INFO] step {k} compiled module m{k}" for k in range(20_000))
            + "\n[ERROR] module m77 failed: undefined symbol foo",
        },
    ]
    store = MemoryOriginalStore()
    out = RollingWindow(RollingWindowConfig(output_buffer_tokens=0), store).apply(
        msgs, max_tokens=5000
    )
    assert TOK.count_messages(out) <= 5000
    assert said(out) == said(msgs)
    assert "[ERROR] module m77 failed: undefined symbol foo" in out[-1]["content"]
    assert_retrievable(out, msgs, store)


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
    assert "lookup failed for O-1001" in json.dumps(result.messages)


def long_text_history(turns: int) -> list[dict[str, Any]]:
    """Short tool outputs, long questions and answers: only dropping turns can fit it."""
    msgs = history(turns, tool_chars=200)
    for m in msgs[1:]:
        if m["role"] in ("user", "assistant") and m["content"]:
            m["content"] += " details" * 60
    return msgs


def test_intelligent_manager_honours_protected_indices() -> None:
    msgs = long_text_history(10)
    window = int(TOK.count_messages(msgs) * 0.45)
    icm = IntelligentContextManager(
        IntelligentContextConfig(enabled=True, output_buffer_tokens=0), store=MemoryOriginalStore()
    )
    result = icm.apply(msgs, TOK, model_limit=window, protected=(5, 6, 7, 8))
    assert len(result.messages) < len(msgs)  # turns were dropped ...
    assert all(msgs[i] in result.messages for i in (5, 6, 7, 8))  # ... not these


class ToolImportance:
    def __init__(self, tool: str) -> None:
        self.tool = tool

    def importance(self, tool: str | None) -> float:
        return 1.0 if tool == self.tool else 0.0


def test_learned_importance_ranks_a_tool_higher() -> None:
    msgs = long_text_history(8)
    msgs[2 + 4 * 2]["tool_calls"] = [call("c2", "get_invoice")]  # turn 2 calls another tool
    window = int(TOK.count_messages(msgs) * 0.7)
    cfg = IntelligentContextConfig(enabled=True, output_buffer_tokens=0)
    plain = IntelligentContextManager(cfg, store=MemoryOriginalStore()).apply(
        msgs, TOK, model_limit=window
    )
    learned = IntelligentContextManager(
        cfg, ToolImportance("get_invoice"), store=MemoryOriginalStore()
    ).apply(msgs, TOK, model_limit=window)
    assert msgs[10] not in plain.messages  # the get_invoice call
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
                assert is_subsequence(said(out.messages), said(msgs)), name


def test_without_a_budget_requests_extend_each_other_between_compaction_points(
    conversations: list,
) -> None:
    """Replaying a conversation turn by turn, each request repeats the previous one byte for
    byte, except at a compaction point (superseded outputs collapse), which reports it."""
    for name, msgs in conversations:
        boundaries = [i for i, m in enumerate(msgs) if m["role"] == "user"][1:] + [len(msgs)]
        previous = None
        for end in boundaries:
            result = compress(msgs[:end])
            out = result.messages
            if previous is not None and out[: len(previous)] != previous:
                assert any(t.startswith("superseded:") for t in result.transforms_applied), (
                    name,
                    end,
                )
            previous = out


def test_one_long_agent_task_keeps_the_task_and_its_latest_calls() -> None:
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
    store = MemoryOriginalStore()
    out = RollingWindow(RollingWindowConfig(output_buffer_tokens=0), store).apply(
        msgs, max_tokens=window
    )
    assert TOK.count_messages(out) <= window
    validate_pairing(out)
    assert out[0] == msgs[0] and out[1] == msgs[1]  # the prompt and the task stay
    assert out[-4] == msgs[-4] and out[-2] == msgs[-2]  # the last two calls stay
    assert out[-1]["content"].startswith("step 11 output")  # their outputs, cut or whole
    assert_retrievable(out, msgs, store)


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
    # The note naming what was left out is either one system note or hosted in place, in the
    # tool result of the first dropped call (the rolling window's cache-friendly form).
    note = re.compile(r"\[headroom: \d+ (earlier )?messages.*ref=[0-9a-f]{32}")
    assert len(out) < len(msgs) and any(note.search(json.dumps(m["content"])) for m in out)
    assert all(not (a == b == "system") for a, b in zip(roles, roles[1:], strict=False)), roles
    if not any("earlier messages" in json.dumps(m["content"]) for m in out):
        assert fitter == "rolling"  # hosted in place: the head is untouched
        if head != "none":
            assert out[0] == msgs[0]
    elif head == "blocks":
        assert out[0]["content"][0] == msgs[0]["content"][0]
        assert out[0]["content"][1]["text"].startswith("[headroom: ")
    elif head == "none":
        assert roles[0] == "system" and out[0]["content"].startswith("[headroom: ")


def test_fitted_request_converts_to_anthropic() -> None:
    from headroom_core import to_anthropic

    msgs = long_text_history(10)
    out = RollingWindow(RollingWindowConfig(output_buffer_tokens=0), MemoryOriginalStore()).apply(
        msgs, max_tokens=TOK.count_messages(msgs) // 2
    )
    assert len(out) < len(msgs)
    body = to_anthropic(out)
    assert body["system"] == msgs[0]["content"]
    assert body["messages"][0] == {"role": "user", "content": msgs[1]["content"]}
    assert all(m["role"] in ("user", "assistant") for m in body["messages"])


@pytest.mark.parametrize("fraction", [0.3, 0.45, 0.6, 0.75, 0.9])
@pytest.mark.parametrize("fitter", ["rolling", "intelligent"])
def test_a_kept_answer_never_follows_a_cut_without_its_question(
    fraction: float, fitter: str
) -> None:
    # What is left of an old turn is its question and, as a unit of its own, the answer
    # after the tool call. A cut between the two would show an answer to nothing.
    msgs = long_text_history(12)
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
    for k, m in enumerate(msgs):
        if m["role"] == "assistant" and not m.get("tool_calls") and m in out:
            question = max(j for j in range(k) if msgs[j]["role"] == "user")
            assert msgs[question] in out, (fitter, fraction, k)


def test_intelligent_cut_restores_the_question_of_a_kept_error() -> None:
    msgs = long_text_history(10)
    msgs[11]["content"] = "ERROR: lookup failed for O-1002 " + msgs[11]["content"]
    window = int(TOK.count_messages(msgs) * 0.7)
    cfg = IntelligentContextConfig(enabled=True, output_buffer_tokens=0)
    out = (
        IntelligentContextManager(cfg, store=MemoryOriginalStore())
        .apply(msgs, TOK, model_limit=window)
        .messages
    )
    assert msgs[13] not in out  # turn 3 was dropped, ...
    assert msgs[10] in out and "lookup failed for O-1002" in json.dumps(out)  # the error kept
    assert msgs[9] in out  # ... after its own question
    assert TOK.count_messages(out) <= window

"""CacheAligner: dynamic values leave the stable prefix, nothing is lost, and aligning twice
changes nothing. prefix_reuse: the byte-prefix measure the cache benchmark uses."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_core import HeadroomConfig, Tokenizer
from headroom_core.config import CacheAlignerConfig
from headroom_core.errors import ConfigError
from headroom_core.pipeline import TransformContext
from headroom_core.transforms.cache_aligner import CacheAligner, prefix_reuse

SEP = CacheAlignerConfig().dynamic_tail_separator
TOK = Tokenizer("gpt-4o")

PROMPT = """You are Atlas, the support assistant of Northwind Travel.
Current date: {date}
Session id: {uuid}

Follow the booking policy below.   
Be concise. Today is {weekday}. Never share internal notes.
- Office hours end at {time}.



Refunds go to the original payment method."""

VALUES_A = {
    "date": "2026-11-22",
    "uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    "weekday": "Sunday, November 22, 2026",
    "time": "17:30 UTC",
}
VALUES_B = {
    "date": "2027-01-03",
    "uuid": "9f0c6d2e-7a41-4b8e-a2c3-5d6e7f8a9b0c",
    "weekday": "Tuesday, March 9, 2027",
    "time": "09:05 AM",
}

EXPECTED_A = (
    "You are Atlas, the support assistant of Northwind Travel.\n"
    "\n"
    "Follow the booking policy below.   \n"  # a markdown hard line break stays
    "Be concise. Never share internal notes.\n"
    "\n"
    "Refunds go to the original payment method." + SEP + "Current date: 2026-11-22\n"
    "Session id: 1b4e28ba-2fa1-11d2-883f-0016d3cca427\n"
    "Today is Sunday, November 22, 2026.\n"
    "- Office hours end at 17:30 UTC."
)


def request(system: Any, user: str = "Can I get a refund for 2026-11-20?") -> list[dict[str, Any]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def stable_of(text: str) -> str:
    return text.partition(SEP)[0]


# --- the rule -------------------------------------------------------------------------------


def test_moves_dynamic_sentences_to_one_block_at_the_end() -> None:
    result = CacheAligner().align(request(PROMPT.format(**VALUES_A)))
    assert result.messages[0]["content"] == EXPECTED_A
    assert result.moved == (
        "2026-11-22",
        "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "Sunday, November 22, 2026",
        "17:30 UTC",
    )
    assert result.changed


def test_requests_differing_only_in_values_share_the_stable_prefix() -> None:
    aligner = CacheAligner()
    a = aligner.align(request(PROMPT.format(**VALUES_A)))
    b = aligner.align(request(PROMPT.format(**VALUES_B)))
    assert PROMPT.format(**VALUES_A) != PROMPT.format(**VALUES_B)
    assert a.stable_prefix_hash == b.stable_prefix_hash
    assert a.stable_prefix_tokens == b.stable_prefix_tokens
    text_a, text_b = a.messages[0]["content"], b.messages[0]["content"]
    assert stable_of(text_a) + SEP == text_b[: len(stable_of(text_a)) + len(SEP)]
    # Before alignment the requests diverge in the date on line 2; after, in the block.
    original = request(PROMPT.format(**VALUES_A))
    total = sum(len(canonical(m)) for m in original)
    before = prefix_reuse(original, request(PROMPT.format(**VALUES_B)))
    head = '{"content":"' + json.dumps(PROMPT.split("{date}")[0])[1:-1] + "202"
    assert before == pytest.approx(len(head) / total)
    after = prefix_reuse(a.messages, b.messages)
    aligned_total = sum(len(canonical(m)) for m in a.messages)
    head = '{"content":"' + json.dumps(stable_of(text_a) + SEP)[1:-1] + "Current date: 202"
    assert after == pytest.approx(len(head) / aligned_total)
    assert after > 2 * before


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("Current date: 2026-11-22", "2026-11-22"),
        ("Current time: 2026-11-22T10:15:00Z", "2026-11-22T10:15:00Z"),
        ("Timestamp: 2026-11-22 10:15:00+01:00", "2026-11-22 10:15:00+01:00"),
        ("The current time is 2024-05-15 15:00:00 EST.", "2024-05-15 15:00:00 EST"),
        ("Session: 1b4e28ba-2fa1-11d2-883f-0016d3cca427", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
        ("Request id: req_8f3a2b1c0d4e", "req_8f3a2b1c0d4e"),
        ("Today is Monday, Nov 23, 2026.", "Monday, Nov 23, 2026"),
        ("It is now 3:45 PM PST.", "3:45 PM PST"),
    ],
)
def test_each_kind_of_value_moves_with_its_label(line: str, value: str) -> None:
    text = f"You are a careful assistant.\n{line}\nAnswer briefly."
    result = CacheAligner().align(request(text))
    assert result.moved == (value,)
    assert result.messages[0]["content"] == (
        "You are a careful assistant.\nAnswer briefly." + SEP + line
    )


def test_a_sentence_inside_a_paragraph_moves_alone() -> None:
    text = "Be concise. The current time is 10:15 UTC. Answer in English.\nBye."
    out = CacheAligner().align(request(text)).messages[0]["content"]
    assert out == "Be concise. Answer in English.\nBye." + SEP + "The current time is 10:15 UTC."


def test_values_in_fenced_code_stay_where_they_are() -> None:
    text = 'Reply like this:\n```json\n{"created": "2024-05-15T10:00:00Z"}\n```\nDate: 2026-11-22'
    result = CacheAligner().align(request(text))
    assert result.moved == ("2026-11-22",)
    assert stable_of(result.messages[0]["content"]) == text.rsplit("\n", 1)[0]


def test_nothing_is_lost_every_moved_sentence_is_in_the_block() -> None:
    original = PROMPT.format(**VALUES_A)
    out = CacheAligner().align(request(original)).messages[0]["content"]
    stable, _, block = out.partition(SEP)
    for value in VALUES_A.values():
        assert value in block and value not in stable
    assert sorted((stable + "\n" + block).split()) == sorted(original.split())


def test_aligning_aligned_output_changes_nothing() -> None:
    aligner = CacheAligner()
    first = aligner.align(request(PROMPT.format(**VALUES_A)))
    again = aligner.align(first.messages)
    assert not again.changed and again.moved == ()
    assert again.messages == first.messages
    assert again.stable_prefix_hash == first.stable_prefix_hash


def test_new_values_join_an_existing_block_before_its_lines() -> None:
    text = "Rules here.\nLocal time: 09:00 UTC" + SEP + "Current date: 2026-11-22"
    out = CacheAligner().align(request(text)).messages[0]["content"]
    assert out == "Rules here." + SEP + "Local time: 09:00 UTC\nCurrent date: 2026-11-22"


def test_user_assistant_and_tool_text_is_never_touched() -> None:
    messages = [
        {"role": "system", "content": "Be brief.\nCurrent date: 2026-11-22"},
        {
            "role": "user",
            "content": "Today is 2026-11-22   \n\n\n\nsession 1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        },
        {"role": "assistant", "content": "Noted at 10:15 UTC.", "tool_calls": None},
        {"role": "tool", "tool_call_id": "x", "content": "2026-11-22T10:00:00Z"},
    ]
    snapshot = copy.deepcopy(messages)
    result = CacheAligner().align(messages)
    assert messages == snapshot  # input not mutated
    assert result.moved == ("2026-11-22",)
    assert all(out is orig for out, orig in zip(result.messages[1:], messages[1:], strict=True))


def test_developer_messages_are_aligned_too() -> None:
    result = CacheAligner().align([{"role": "developer", "content": "Hi.\nNow: 2026-11-22"}])
    assert result.messages[0] == {"role": "developer", "content": "Hi." + SEP + "Now: 2026-11-22"}


@pytest.mark.parametrize(
    "content",
    [None, 42, {"text": "Current date: 2026-11-22"}, ["Current date: 2026-11-22", 7, None]],
)
def test_malformed_content_passes_through(content: Any) -> None:
    messages = [{"role": "system", "content": content}, "not a message"]
    result = CacheAligner().align(messages)  # type: ignore[list-item]
    assert not result.changed
    assert result.messages[0] is messages[0] and result.messages[1] == "not a message"


# --- list-of-parts content ------------------------------------------------------------------


def parts(date: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "text",
            "text": "You are Atlas.\nBe kind.",
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "image_url", "image_url": {"url": "https://example.com/logo.png"}},
        {"type": "text", "text": f"Current date: {date}"},
        {"type": "text", "text": f"Policy applies.\nUpdated: {date}T08:00:00Z"},
    ]


def test_list_content_gets_one_final_block_part() -> None:
    result = CacheAligner().align(request(parts("2026-11-22")))
    assert result.messages[0]["content"] == [
        parts("x")[0],
        parts("x")[1],
        {"type": "text", "text": "Policy applies."},
        {
            "type": "text",
            "text": SEP + "Current date: 2026-11-22\nUpdated: 2026-11-22T08:00:00Z",
        },
    ]
    assert result.moved == ("2026-11-22", "2026-11-22T08:00:00Z")
    again = CacheAligner().align(result.messages)
    assert not again.changed and again.messages == result.messages
    other = CacheAligner().align(request(parts("2031-02-28")))
    assert other.stable_prefix_hash == result.stable_prefix_hash
    assert other.messages[0]["content"][:3] == result.messages[0]["content"][:3]


# --- whitespace, min tokens, tools, config --------------------------------------------------


def test_whitespace_only_is_normalised_without_a_block() -> None:
    result = CacheAligner().align(request("Rules: \n\n\n\n- be kind\t\n"))
    assert result.messages[0]["content"] == "Rules:\n\n- be kind\n"
    assert result.changed and result.moved == ()
    off = CacheAligner(CacheAlignerConfig(normalize_whitespace=False))
    assert not off.align(request("Rules: \n\n\n\n- be kind\t\n")).changed


def test_whitespace_normalisation_spares_code_fences_and_hard_breaks() -> None:
    fenced = "Run this:\n```\nif x:   \n\n\n\n    y()\t\n```\nDone."
    assert not CacheAligner().align(request(fenced)).changed
    hard_break = "Line one  \nLine two\nLast line"
    assert not CacheAligner().align(request(hard_break)).changed
    mixed = "Intro \n\n\n~~~\nkeep \n~~~\nend\t"
    out = CacheAligner().align(request(mixed)).messages[0]["content"]
    assert out == "Intro\n\n~~~\nkeep \n~~~\nend"


def test_extract_dates_off_keeps_values_in_place() -> None:
    aligner = CacheAligner(CacheAlignerConfig(extract_dates=False))
    assert not aligner.align(request("Be brief.\nCurrent date: 2026-11-22")).changed


def test_stable_prefix_tokens_are_exact() -> None:
    result = CacheAligner().align(request(PROMPT.format(**VALUES_A)))
    stable = {"role": "system", "content": stable_of(EXPECTED_A)}
    assert result.stable_prefix_tokens == TOK.count_message(stable)


def test_short_stable_prefix_is_left_alone() -> None:
    messages = request(PROMPT.format(**VALUES_A))
    tokens = CacheAligner().align(messages).stable_prefix_tokens
    above = CacheAligner(CacheAlignerConfig(stable_prefix_min_tokens=tokens + 1)).align(messages)
    assert not above.changed and above.moved == () and above.messages == messages
    unaligned = {"role": "system", "content": PROMPT.format(**VALUES_A)}
    assert above.stable_prefix_tokens == TOK.count_message(unaligned)
    at = CacheAligner(CacheAlignerConfig(stable_prefix_min_tokens=tokens)).align(messages)
    assert at.changed and at.messages[0]["content"] == EXPECTED_A


def test_tools_count_toward_the_stable_prefix() -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    plain = CacheAligner().align(request("Be brief."))
    with_tools = CacheAligner().align(request("Be brief."), tools=tools)
    assert with_tools.stable_prefix_hash != plain.stable_prefix_hash
    canonical = json.dumps(tools, sort_keys=True, separators=(",", ":"))
    assert with_tools.stable_prefix_tokens == plain.stable_prefix_tokens + TOK.count_text(canonical)


def test_disabled_changes_nothing() -> None:
    aligner = CacheAligner(CacheAlignerConfig(enabled=False))
    assert not aligner.align(request(PROMPT.format(**VALUES_A))).changed


def test_blank_separator_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="dynamic_tail_separator"):
        CacheAligner(CacheAlignerConfig(dynamic_tail_separator="\n\n"))


# --- as a pipeline transform ----------------------------------------------------------------


def ctx(**aligner: Any) -> TransformContext:
    config = HeadroomConfig(cache_aligner=CacheAlignerConfig(**aligner))
    return TransformContext(tokenizer=TOK, config=config)


def test_apply_records_values_moved_and_uses_ctx_config() -> None:
    messages = request(PROMPT.format(**VALUES_A))
    context = ctx()
    out = CacheAligner().apply(messages, context)
    assert out[0]["content"] == EXPECTED_A and context.applied == ["cache_aligner:4"]
    disabled = ctx(enabled=False)
    assert CacheAligner().apply(messages, disabled) is messages and disabled.applied == []
    whitespace = ctx()
    CacheAligner().apply(request("a \nb"), whitespace)
    assert whitespace.applied == ["cache_aligner:0"]


def test_apply_returns_the_same_list_when_nothing_changes() -> None:
    messages = request("Be brief.")
    context = ctx()
    assert CacheAligner().apply(messages, context) is messages and context.applied == []


# --- properties -----------------------------------------------------------------------------

SENTENCES = st.sampled_from(
    [
        "You are a helpful agent.",
        "Current date: {d}",
        "Be concise. Today is {d}. Use metric units.",
        "Session {u} started at {t}.",
        "",
        "   ",
        "- Never guess.  ",
        "```\nprint('fenced code is never read')\n```",
        "created_at: {d}",
        "Line with trailing tab\t",
    ]
)
DATES = st.dates().map(lambda d: d.isoformat())
TIMES = st.times().map(lambda t: t.strftime("%H:%M"))
UUIDS = st.uuids().map(str)


@settings(max_examples=150, deadline=None)
@given(st.lists(SENTENCES, max_size=12), DATES, DATES, TIMES, TIMES, UUIDS, UUIDS)
def test_properties_stable_lossless_idempotent(
    lines: list[str], d1: str, d2: str, t1: str, t2: str, u1: str, u2: str
) -> None:
    template = "\n".join(lines)
    text_a = template.format(d=d1, t=t1, u=u1)
    text_b = template.format(d=d2, t=t2, u=u2)
    aligner = CacheAligner()
    a, b = aligner.align(request(text_a)), aligner.align(request(text_b))
    assert a.stable_prefix_hash == b.stable_prefix_hash
    assert stable_of(a.messages[0]["content"]) == stable_of(b.messages[0]["content"])
    assert sorted(a.messages[0]["content"].split()) == sorted(
        (text_a + SEP * bool(a.moved)).split()
    )
    again = aligner.align(a.messages)
    assert not again.changed and again.messages == a.messages


# --- real system prompts --------------------------------------------------------------------

TAU_LINE = "The current time is 2024-05-15 15:00:00 EST."


def test_real_prompts_only_the_dynamic_sentence_moves(
    conversations: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    raw = CacheAligner(CacheAlignerConfig(normalize_whitespace=False))
    tau = 0
    for name, messages in conversations:
        system = messages[0]["content"]
        assert messages[0]["role"] == "system" and isinstance(system, str), name
        result = raw.align(messages)
        assert result.messages[1:] == messages[1:], name
        if TAU_LINE not in system:
            assert not result.changed and result.messages == messages, name
            continue
        tau += 1
        assert result.moved == ("2024-05-15 15:00:00 EST",), name
        rest = system.replace(TAU_LINE + "\n", "", 1).rstrip()
        assert result.messages[0]["content"] == rest + SEP + TAU_LINE, name
        later = system.replace("2024-05-15 15:00:00", "2024-06-02 08:30:00")
        moved_day = raw.align([{**messages[0], "content": later}, *messages[1:]])
        assert moved_day.stable_prefix_hash == result.stable_prefix_hash, name
        assert prefix_reuse(result.messages[:1], moved_day.messages[:1]) > 0.99, name
    assert tau >= 1, "expected tau-bench conversations in the shared data"


def test_real_prompts_default_config_is_idempotent(
    conversations: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    aligner = CacheAligner()
    for name, messages in conversations:
        first = aligner.align(messages)
        assert TAU_LINE not in stable_of(first.messages[0]["content"]), name
        again = aligner.align(first.messages)
        assert not again.changed and again.messages == first.messages, name


# --- prefix_reuse ---------------------------------------------------------------------------


def canonical(m: dict[str, Any]) -> bytes:
    return json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_prefix_reuse_identical_and_appended_are_full() -> None:
    conv = request("Be brief.", "Héllo, wörld")
    assert prefix_reuse(conv, copy.deepcopy(conv)) == 1.0
    grown = [*conv, {"role": "assistant", "content": "Hi"}, {"role": "user", "content": "More"}]
    assert prefix_reuse(conv, grown) == 1.0
    assert prefix_reuse([], conv) == 1.0


def test_prefix_reuse_is_the_exact_byte_fraction() -> None:
    conv = [
        {"role": "system", "content": "Be brief. " * 50},
        {"role": "user", "content": "Question one"},
        {"role": "assistant", "content": "Answer one"},
    ]
    total = sum(len(canonical(m)) for m in conv)
    truncated = conv[:2]
    assert prefix_reuse(conv, truncated) == pytest.approx((total - len(canonical(conv[2]))) / total)
    edited = [*conv[:2], {"role": "assistant", "content": "Answer two"}]
    shared = len(canonical(conv[0])) + len(canonical(conv[1])) + len(b'{"content":"Answer ')
    assert prefix_reuse(conv, edited) == pytest.approx(shared / total)
    first_changed = [{"role": "system", "content": "Now: 2026. " + "Be brief. " * 50}, *conv[1:]]
    assert prefix_reuse(conv, first_changed) == pytest.approx(len(b'{"content":"') / total)
    assert prefix_reuse(conv, []) == 0.0


def test_no_sentence_break_inside_a_value() -> None:
    from headroom_core.transforms.cache_aligner import _split_line

    line = "Due Tue. Nov 22 at noon. Bring ID. Thanks."
    # A value spanning "Tue. Nov 22" (a ". N" inside it) moves as one sentence.
    assert _split_line(line, [(4, 15)]) == ("Bring ID. Thanks.", ["Due Tue. Nov 22 at noon."])
    assert _split_line("  Be kind. Date: 1. Go.", [(16, 18)]) == ("  Be kind. Go.", ["Date: 1."])

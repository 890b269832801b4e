"""The bill of a series of requests under prompt caching (headroom_core.billing)."""

from __future__ import annotations

from typing import Any

import pytest

from headroom_core.billing import (
    ANTHROPIC_RATES,
    OPENAI_RATES,
    cached_prefix_tokens,
    rates_for_model,
    session_bill,
)
from headroom_core.tokens import REPLY_PRIMING, get_tokenizer

TOK = get_tokenizer("gpt-4o")


def msg(role: str, words: int, tag: str) -> dict[str, Any]:
    return {"role": role, "content": " ".join(f"{tag}{k}" for k in range(words))}


def test_rates_come_from_the_model_table_and_the_provider() -> None:
    assert rates_for_model("gpt-4o") == OPENAI_RATES  # 1.25 / 2.50 cached, written at 1.0
    claude = rates_for_model("claude-sonnet-4-5")
    assert claude.cached == pytest.approx(0.1) and claude.write == 1.25
    assert rates_for_model("gpt-4.1").cached == pytest.approx(0.25)
    assert rates_for_model("gpt-4").cached == 1.0  # no cached price: nothing is cheaper


def test_a_cached_prefix_is_whole_equal_messages_from_1024_tokens_on() -> None:
    big = [msg("system", 250, "s"), msg("user", 400, "u")]
    grown = [*big, msg("assistant", 50, "a")]
    prefix = sum(TOK.count_message(m) for m in big)
    assert prefix >= 1024
    assert cached_prefix_tokens(big, grown, TOK) == prefix
    changed = [big[0], {**big[1], "content": big[1]["content"] + "!"}, grown[2]]
    assert cached_prefix_tokens(big, changed, TOK) == 0  # the system prompt alone is under 1,024
    small = [msg("user", 100, "x")]
    assert cached_prefix_tokens(small, [*small, msg("assistant", 5, "y")], TOK) == 0
    assert cached_prefix_tokens(None, big, TOK) == 0


def test_session_bill_prices_reads_and_writes() -> None:
    first = [msg("system", 1500, "s"), msg("user", 20, "u")]
    second = [*first, msg("assistant", 30, "a"), msg("user", 10, "v")]
    bill = session_bill([first, second], tokenizer=TOK)
    t1 = TOK.count_messages(first)
    t2 = TOK.count_messages(second)
    cached = t1 - REPLY_PRIMING
    assert [r.tokens for r in bill.requests] == [t1, t2]
    assert [r.cached for r in bill.requests] == [0, cached]
    assert bill.tokens_sent == t1 + t2 and bill.last_tokens == t2
    assert bill.cost(ANTHROPIC_RATES) == pytest.approx(
        1.25 * t1 + 0.1 * cached + 1.25 * (t2 - cached)
    )
    assert bill.cost(OPENAI_RATES) == pytest.approx(t1 + 0.5 * cached + (t2 - cached))

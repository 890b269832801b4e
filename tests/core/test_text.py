"""The one sentence splitter (headroom_core.text)."""

from __future__ import annotations

from headroom_core.text import line_sentence_spans, sentence_spans


def _cut(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[a:b] for a, b in spans]


def test_sentences_end_before_a_capital_a_digit_or_a_quote() -> None:
    text = 'It failed. 3 retries ran! "Why?" Nobody knows.  '
    assert _cut(text, sentence_spans(text)) == [
        "It failed.",
        "3 retries ran!",
        '"Why?"',
        "Nobody knows.",
    ]


def test_abbreviations_and_initials_end_no_sentence() -> None:
    text = "Dr. Smith met J. R. Tolkien, e.g. At noon. Then left."
    assert _cut(text, sentence_spans(text)) == [
        "Dr. Smith met J. R. Tolkien, e.g. At noon.",
        "Then left.",
    ]


def test_a_range_of_the_text_and_cjk_stops() -> None:
    text = "skip. 第一句。第二句！"
    assert _cut(text, sentence_spans(text, 6)) == ["第一句。", "第二句！"]


def test_line_mode_splits_lines_then_sentences_with_offsets_into_the_text() -> None:
    text = '  One. Two.\n\n{"a": 1}\nthree'
    spans = line_sentence_spans(text)
    assert _cut(text, spans) == ["One.", "Two.", '{"a": 1}', "three"]
    assert spans == sorted(spans) and all(a < b for a, b in spans)

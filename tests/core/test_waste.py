from __future__ import annotations

import json

from headroom_core import Tokenizer, detect_waste
from headroom_core.waste import dynamic_spans

TOK = Tokenizer("gpt-4o")


def tool(text: str, cid: str = "c") -> dict:
    return {"role": "tool", "tool_call_id": cid, "content": text}


def test_clean_request_has_no_waste() -> None:
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]
    assert detect_waste(msgs, TOK).total == 0


def test_json_bloat_is_the_tokens_compact_json_saves() -> None:
    data = {"items": [{"id": i, "ok": True} for i in range(20)]}
    pretty, compact = json.dumps(data, indent=2), json.dumps(data, separators=(",", ":"))
    w = detect_waste([tool(pretty)], TOK)
    assert w.json_bloat_tokens == TOK.count_text(pretty) - TOK.count_text(compact) > 0
    assert w.whitespace_tokens == 0  # JSON indentation is counted once, as bloat


def test_html_noise_counts_tags_comments_scripts() -> None:
    html = '<div class="a"><!-- nav --><script>var x=1;</script><p>Hello</p></div>'
    w = detect_waste([tool(html)], TOK)
    noise = '<div class="a"><!-- nav --><script>var x=1;</script><p></p></div>'
    assert w.html_noise_tokens == TOK.count_text(noise)


def test_whitespace_runs() -> None:
    text = "a    b   \n\n\n\n\nc"
    w = detect_waste([tool(text)], TOK)
    assert w.whitespace_tokens == TOK.count_text(text) - TOK.count_text("a b\n\nc")


def test_dynamic_dates_only_in_system_prompt() -> None:
    sys_text = "Today is 2026-11-22T10:15:00Z. Request id: req_8f3a2b1c0d4e. Trace 1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    spans = [sys_text[a:b] for a, b in dynamic_spans(sys_text)]
    assert spans == [
        "2026-11-22T10:15:00Z",
        "req_8f3a2b1c0d4e",
        "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    ]
    w = detect_waste([{"role": "system", "content": sys_text}], TOK)
    assert w.dynamic_date_tokens == TOK.count_text(" ".join(spans))
    assert detect_waste([{"role": "user", "content": sys_text}], TOK).dynamic_date_tokens == 0


def test_repetition_counts_repeated_lines_and_reserved_outputs() -> None:
    line = "WARN connection pool exhausted, retrying in 5s"
    w = detect_waste([tool("\n".join([line] * 4))], TOK)
    assert w.repetition_tokens == TOK.count_text("\n".join([line] * 3))
    again = detect_waste([tool("same output text", "a"), tool("same output text", "b")], TOK)
    assert again.repetition_tokens == TOK.count_text("same output text")

from __future__ import annotations

import json

from headroom_core import compress

DIFF = (
    """diff --git a/app.py b/app.py
index 83db48f..bf269f4 100644
--- a/app.py
+++ b/app.py
@@ -1,4 +1,4 @@
-def f(x):
+def f(x, y=0):
     return x
"""
    * 30
)

TRACE = (
    """Traceback (most recent call last):
  File "/srv/app/main.py", line 12, in <module>
    run()
  File "/srv/app/main.py", line 9, in run
    handle(request)
ValueError: bad request id
"""
    * 20
)


def request(text: str) -> list[dict]:
    return [
        {"role": "user", "content": "what failed?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "run", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": text},
    ]


def test_diffs_and_bare_traces_are_never_cut() -> None:
    for text in (DIFF, TRACE):
        r = compress(request(text))
        assert r.messages[2]["content"] == text and r.transforms_applied == ()


def test_bracketed_log_reaches_the_log_compressor_after_json_declines() -> None:
    lines = [
        f"[Sun Dec 04 04:{i // 60:02d}:{i % 60:02d} 2005] [notice] jk2_init() Found child {1000 + i} in scoreboard slot 6"
        for i in range(300)
    ]
    lines[150] = "[Sun Dec 04 06:30:00 2005] [error] mod_jk child workerEnv in error state 6"
    text = "\n".join(lines)
    r = compress(request(text))
    out = r.messages[2]["content"]
    assert r.transforms_applied == ("log:1",)
    assert lines[150] in out.splitlines() and len(out) < len(text) / 3


def test_log_with_a_traceback_is_compressed_and_keeps_the_trace() -> None:
    body = [f"2024-01-01 10:00:{i % 60:02d} INFO worker polled queue depth={i}" for i in range(200)]
    trace = TRACE.splitlines()[:6]
    text = "\n".join(body[:100] + trace + body[100:])
    r = compress(request(text))
    out = r.messages[2]["content"].splitlines()
    assert r.transforms_applied == ("log:1",)
    for line in trace:
        assert line in out


def test_json_goes_to_smart_crusher() -> None:
    r = compress(request(json.dumps([{"id": i, "v": "x" * 20} for i in range(200)], indent=2)))
    assert r.transforms_applied == ("smart_crusher:1",)

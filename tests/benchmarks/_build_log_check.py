"""Build logs: what a terminal shows, and which of its lines report an error.

Written apart from ``headroom_core`` (it does not use the compressor's normaliser or
classifier), so that it can catch their mistakes:

* :func:`screen_lines`: the lines of a captured output as a terminal shows them: CSI and
  OSC escape sequences removed, and of a line redrawn with carriage returns or a cursor
  move to column 1, the last non-blank part (spinners and progress bars redraw whole);
* :func:`error_lines`: the lines that report an error or a failure: the words error,
  fail / failed / failure(s), panic / panicked, exception, fatal (any case, as words),
  pytest's ``E   `` detail lines, jest's ``●`` / ``✕`` lines, Go's ``--- FAIL``.
"""

from __future__ import annotations

import re

_ESC = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])|\x07")
_MOVE = re.compile(r"\r|\x1b\[[01]?G")
_ERROR = re.compile(
    r"(?<![\w-])(?:error|errors|fail|failed|failure|failures|panic|panicked|exception|fatal)"
    r"(?![\w-])|^\s*E {2,}\S|^\s*[\u25cf\u2715] |^--- FAIL",
    re.IGNORECASE,
)


def screen_lines(text: str) -> list[str]:
    out = []
    for raw in text.split("\n"):
        raw = raw[:-1] if raw.endswith("\r") else raw
        parts = [_ESC.sub("", p) for p in _MOVE.split(raw)]
        shown = [p for p in parts if p.strip()]
        out.append((shown[-1] if shown else "").rstrip())
    return out


def error_lines(text: str) -> list[str]:
    return list(dict.fromkeys(line for line in screen_lines(text) if _ERROR.search(line)))

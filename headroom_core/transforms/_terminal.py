"""What a terminal would show of a captured tool output: escapes and redraws resolved.

Build tools and test runners write for a terminal: colours and styles (``\\x1b[1;34mINFO
\\x1b[m``), progress bars and spinners redrawn in place with a carriage return or a
cursor move to column 1 (``\\r``, ``\\x1b[1G``), lines erased (``\\x1b[0K``, ``\\x1b[2K``),
cursor show / hide (``\\x1b[?25l``), window titles and links (OSC). Captured with
colour forced or through a pseudo-terminal, all of it lands in the tool output, costs
tokens and hides the words a log compressor groups by (``mINFO`` is not ``INFO``).

:func:`normalise` returns the text a terminal would display: within each line, text
written after a carriage return or a move to column 1 overwrites what was there (an
erase clears it), and every other escape sequence, bell and backspace is removed. Line
breaks are never added or removed (``\\r\\n`` stays), so line ``N`` of the result is what
line ``N`` of the original displayed. Text with no escape and no lone ``\\r`` is returned
as it is (the same object).
"""

from __future__ import annotations

import re

# CSI (ESC [ params intermediates final), OSC (ESC ] ... BEL or ST), other two-byte escapes.
_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])|[\x07\x00]"
)
# what moves the cursor to column 1 or erases the line, inside one line
_CURSOR = re.compile(r"(\r(?!\n)|\x1b\[[01]?G|\x1b\[[0-2]?K)")
_MOVE = re.compile(r"\r(?!\n)|\x1b\[[01]?G|\x08")


def needs_normalising(text: str) -> bool:
    """Does ``text`` hold an escape, a bell, a backspace or a lone carriage return?"""
    if "\x1b" in text or "\x07" in text or "\x08" in text:
        return True
    if "\r" not in text:
        return False
    return text.count("\r") != text.count("\r\n")


def normalise(text: str) -> str:
    """The text a terminal would show (see the module docstring)."""
    if not needs_normalising(text):
        return text
    out: list[str] = []
    pos = 0
    for m in _MOVE.finditer(text):
        if m.start() < pos:
            continue  # in a line already redrawn
        start = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.end())
        end = len(text) if end == -1 else end
        out.append(text[pos:start])
        out.append(_redraw(text[start:end]))
        pos = end
    out.append(text[pos:])
    return _ESCAPE.sub("", "".join(out))


def _redraw(line: str) -> str:
    """One line with carriage returns, column moves, erases and backspaces applied."""
    ending = "\r" if line.endswith("\r") else ""
    if ending:
        line = line[:-1]
    screen = ""
    col = 0
    for part in _CURSOR.split(line):
        if not part:
            continue
        if part == "\r" or part.endswith("G"):
            col = 0
        elif part.endswith("K"):
            mode = part[2:-1] or "0"
            if mode == "0":
                screen = screen[:col]
            elif mode == "2":
                screen = " " * col
            else:
                screen = " " * col + screen[col:]
        else:
            for k, chunk in enumerate(_ESCAPE.sub("", part).split("\x08")):
                if k:  # a backspace before this chunk
                    col = max(0, col - 1)
                screen = screen[:col] + chunk + screen[col + len(chunk) :]
                col += len(chunk)
    return screen.rstrip() + ending


__all__ = ["needs_normalising", "normalise"]

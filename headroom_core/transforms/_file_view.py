"""Line-numbered file views (a coding agent's read tool): kept whole, gutter unpadded.

Claude Code's ``Read`` (and the snippet after an ``Edit`` / ``Write``) returns a file as
``     1→import os``: the line number right-aligned in six columns, an arrow, then the
line exactly as it is in the file. The agent edits against those lines, so nothing of
them is ever cut or changed. Only the padding of the gutter goes (``1→import os``): on
the coding-agent sessions in ``../shared/data`` that is 15% of the tokens of every read,
with not one character of the file touched.

:func:`encode` is lossless: :func:`decode` puts the padding back (numbers right-aligned to
:data:`WIDTH` columns, wider numbers as they are), and :func:`encode` returns None for
any text where that would not give back the input byte for byte (a view numbered with
another width, a header line that looks like a gutter, ...).
"""

from __future__ import annotations

import re

WIDTH = 6  # Claude Code pads line numbers to six columns
_PADDED = re.compile(r"^ +(\d+)\u2192", re.M)
_BARE = re.compile(r"^(\d+)\u2192", re.M)
_VIEW_LINE = re.compile(r"^ *\d+\u2192", re.M)
VIEW_SHARE = 0.9  # of the lines (a header and a trailing line aside), at least


def is_file_view(text: str) -> bool:
    """A line-numbered file view (``     1→...``), padded or not."""
    if "\u2192" not in text:
        return False
    lines = text.count("\n") + 1
    return len(_VIEW_LINE.findall(text)) >= VIEW_SHARE * max(1, lines - 2)


def encode(text: str) -> str | None:
    """The view with its gutter unpadded, or None when that is not exactly reversible."""
    if not _PADDED.search(text):
        return None
    out = _PADDED.sub(lambda m: m.group(1) + "\u2192", text)
    return out if decode(out) == text else None


def decode(text: str) -> str:
    """The inverse of :func:`encode`."""
    return _BARE.sub(lambda m: m.group(1).rjust(WIDTH) + "\u2192", text)


__all__ = ["WIDTH", "decode", "encode", "is_file_view"]

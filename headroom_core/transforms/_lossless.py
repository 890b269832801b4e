"""The lossless forms of one JSON value, counted only as far as a decision needs.

SmartCrusher chooses between compact JSON, the encoded forms of
:mod:`~headroom_core.transforms.json_codec` and a lossy cut. On a large document the
exact token count of each lossless form is the dearest part of that choice (tiktoken over
megabytes) and is rarely needed: "is the cut 10% smaller than the lossless form" holds for
a 500-token cut of a 20 MB array whatever the exact count. So a form's tokens are bounded
below by its length over :data:`MAX_TOKEN_CHARS` first, and counted exactly only when the
bound cannot settle the question, or when a lossless form is what goes out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from . import json_codec

#: No token is longer than this many characters (tiktoken's o200k / cl100k: 128 bytes at
#: most; the approximate counts scale those up), so ``len(text) // MAX_TOKEN_CHARS`` never
#: exceeds a text's token count.
MAX_TOKEN_CHARS = 256


def dumps(data: Any) -> str:
    return orjson.dumps(data).decode()


class LosslessForms:
    """Compact JSON of a value and its encoded form (when it differs)."""

    def __init__(
        self,
        data: Any,
        compact: str,
        count: Callable[[str], int],
        compact_tokens: int | None = None,
    ) -> None:
        self.compact = compact
        encoded = dumps(json_codec.encode(data))
        self._forms = [compact] if encoded == compact else [compact, encoded]
        self._count = count
        self._exact: dict[int, int] = {} if compact_tokens is None else {0: compact_tokens}

    def _tokens(self, k: int) -> int:
        if k not in self._exact:
            self._exact[k] = self._count(self._forms[k])
        return self._exact[k]

    def _bound(self, k: int) -> int:
        exact = self._exact.get(k)
        return exact if exact is not None else len(self._forms[k]) // MAX_TOKEN_CHARS

    def best(self) -> tuple[str, int]:
        """The form with fewer tokens (compact on a tie), and its exact count."""
        best = 0
        for k in range(1, len(self._forms)):
            if self._tokens(k) < self._tokens(best):
                best = k
        return self._forms[best], self._tokens(best)

    def tokens_satisfy(self, rises: Callable[[int], bool]) -> bool:
        """``rises(tokens of the best form)``, for a test that, once true, stays true for
        every larger count (``t > budget``, ``cut < 0.9 * t``): settled by the lower bound
        when it can be, else counted."""
        if rises(min(self._bound(k) for k in range(len(self._forms)))):
            return True
        return rises(self.best()[1])

    def compact_satisfies(self, rises: Callable[[int], bool]) -> bool:
        """The same test on compact JSON's tokens alone."""
        return rises(self._bound(0)) or rises(self._tokens(0))

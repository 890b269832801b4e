"""The fail-open boundary: the one place where an unexpected error is caught.

Headroom must never break the request it was asked to shrink. Every site that runs our code
on a user's request (a transform in the pipeline, one tool output inside a transform, an
adapter's whole compression step) wraps it in :func:`fail_open`::

    with fail_open("tool_outputs on message 4", failures) as outcome:
        new_text = compressor.compress(text, ctx)
    if outcome.failed:
        ...  # keep what was there before; the failure is already recorded and logged

An error inside the block is caught, recorded in ``failures`` as
``"<where>: <ExceptionType>: <message>"``, and logged once as a warning; the caller then
keeps its input unchanged. :class:`~headroom_core.errors.BudgetError` passes through by
default: a request that cannot fit its window is the caller's decision, never silent
(an adapter that must not raise at all passes ``let_through=()``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import BudgetError

__all__ = ["FailOpen", "fail_open", "failure_text"]

logger = logging.getLogger("headroom_core")


@dataclass(slots=True)
class FailOpen:
    """What happened inside a :func:`fail_open` block."""

    where: str
    error: Exception | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def message(self) -> str:
        """The recorded failure (empty when the block succeeded)."""
        return failure_text(self.where, self.error) if self.error is not None else ""


def failure_text(where: str, error: BaseException) -> str:
    """How a failure is recorded everywhere: ``"<where>: <Type>: <message>"``."""
    return f"{where}: {type(error).__name__}: {error}"


@contextmanager
def fail_open(
    where: str,
    failures: list[str] | None = None,
    *,
    let_through: tuple[type[BaseException], ...] = (BudgetError,),
    log: logging.Logger | None = None,
    action: str = "passing through unchanged",
) -> Iterator[FailOpen]:
    """Run the block; on an error (other than ``let_through``), record it, log it, go on.

    ``where`` names the site (a transform, a tool output, an adapter step);
    ``failures``, when given, receives the failure text; ``action`` says in the log what
    happens instead. The yielded :class:`FailOpen` tells the caller whether to fall back
    to its unchanged input.
    """
    outcome = FailOpen(where)
    try:
        yield outcome
    except let_through:
        raise
    except Exception as exc:  # the fail-open boundary: see the module docstring
        outcome.error = exc
        if failures is not None:
            failures.append(outcome.message)
        (log or logger).warning("headroom: %s failed; %s: %r", where, action, exc)

"""The fail-open boundary: one context manager, used at every site."""

from __future__ import annotations

import logging

import pytest

from headroom_core.boundary import fail_open, failure_text
from headroom_core.errors import BudgetError


def test_an_error_is_recorded_logged_and_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    failures: list[str] = []
    with (
        caplog.at_level(logging.WARNING, logger="headroom_core"),
        fail_open("tool output of message 3", failures) as outcome,
    ):
        raise ValueError("bad value")
    assert outcome.failed and isinstance(outcome.error, ValueError)
    assert failures == ["tool output of message 3: ValueError: bad value"]
    assert outcome.message == failures[0]
    assert "tool output of message 3 failed" in caplog.text


def test_success_records_nothing() -> None:
    failures: list[str] = []
    with fail_open("step", failures) as outcome:
        value = 41 + 1
    assert value == 42 and not outcome.failed and outcome.message == "" and failures == []


def test_budget_error_goes_through_unless_told_otherwise() -> None:
    error = BudgetError("too big", protected_tokens=10, budget_tokens=5)
    with pytest.raises(BudgetError), fail_open("fit"):
        raise error
    failures: list[str] = []
    with fail_open("adapter", failures, let_through=()) as outcome:
        raise error
    assert outcome.error is error and failures == [failure_text("adapter", error)]


def test_base_exceptions_are_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt), fail_open("step"):
        raise KeyboardInterrupt

"""Exceptions raised by headroom_core.

The tree::

    HeadroomError
    ├── ConfigError            (also a ValueError): a config value is wrong; names the field
    ├── InputError             (also a ValueError): messages or a payload of the wrong shape
    │   └── PairingError       a tool call without its result, or a result without its call
    ├── TokenizerError         an encoding could not be loaded or a model is unknown
    ├── StorageError           a store (metrics, originals) cannot be used; names its file
    └── BudgetError            the protected part of a request alone exceeds the token budget
"""

from __future__ import annotations


class HeadroomError(Exception):
    """Root of every error headroom_core raises on purpose."""


class ConfigError(HeadroomError, ValueError):
    """A configuration value is invalid. The message names the field."""


class InputError(HeadroomError, ValueError):
    """Input messages or payloads have the wrong shape. The message names the offender."""


class PairingError(InputError):
    """Tool calls and tool results are not paired or not in order.

    ``index`` is the position of the offending message in the list.
    """

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class TokenizerError(HeadroomError):
    """A tokenizer could not be built (unknown encoding, corrupt rank file)."""


class StorageError(HeadroomError):
    """A store (metrics, originals) cannot be opened, read or written. Names the file."""


class BudgetError(HeadroomError):
    """The part of the request that may not be cut is larger than the budget."""

    def __init__(self, message: str, *, protected_tokens: int, budget_tokens: int) -> None:
        super().__init__(message)
        self.protected_tokens = protected_tokens
        self.budget_tokens = budget_tokens


__all__ = [
    "BudgetError",
    "ConfigError",
    "HeadroomError",
    "InputError",
    "PairingError",
    "StorageError",
    "TokenizerError",
]

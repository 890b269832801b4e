"""Lazy exports for the adapter packages: a name is imported from its submodule on first
use, so one adapter that is missing or needs an optional package never breaks the others."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, names: dict[str, str], hint: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` resolving ``names`` (name -> submodule)."""

    def __getattr__(name: str) -> Any:
        module_name = names.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        qualified = f"{package}.{module_name}"
        try:
            module = import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name == qualified:
                raise AttributeError(f"{name} is not available: {qualified} is missing") from exc
            raise ImportError(f"{name} needs {exc.name!r}: {hint}") from exc
        return getattr(module, name)

    return __getattr__

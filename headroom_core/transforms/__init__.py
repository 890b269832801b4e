"""Transforms, one module each, and the registry the default pipeline is built from."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .json_compact import JSONCompactor
from .router import ToolOutputRouter

if TYPE_CHECKING:
    from ..config import HeadroomConfig
    from ..pipeline import Transform

# name -> (enabled?, factory). Order here is pipeline order.
Factory = tuple["Callable[[HeadroomConfig], bool]", "Callable[[HeadroomConfig], Transform]"]
REGISTRY: dict[str, Factory] = {
    ToolOutputRouter.name: (
        lambda c: c.smart_crusher.enabled,
        lambda c: ToolOutputRouter(c.smart_crusher),
    ),
    JSONCompactor.name: (lambda c: c.smart_crusher.enabled, lambda c: JSONCompactor()),
}


def build_transforms(config: HeadroomConfig) -> list[Transform]:
    return [make(config) for enabled, make in REGISTRY.values() if enabled(config)]


__all__ = ["REGISTRY", "JSONCompactor", "ToolOutputRouter", "build_transforms"]

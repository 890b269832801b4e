"""Transforms, one module each, and the registry the default pipeline is built from."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .cache_aligner import CacheAligner
from .intelligent_context import IntelligentContextManager
from .json_compact import JSONCompactor
from .rolling_window import RollingWindow
from .router import ToolOutputRouter

if TYPE_CHECKING:
    from ..config import HeadroomConfig
    from ..pipeline import Transform
    from ..toin import Toin

# name -> (enabled?, factory). Order here is pipeline order.
Factory = tuple["Callable[[HeadroomConfig], bool]", "Callable[[HeadroomConfig], Transform]"]
REGISTRY: dict[str, Factory] = {
    CacheAligner.name: (lambda c: c.cache_aligner.enabled, lambda c: CacheAligner(c.cache_aligner)),
    ToolOutputRouter.name: (
        lambda c: c.smart_crusher.enabled,
        lambda c: ToolOutputRouter(c.smart_crusher),
    ),
    JSONCompactor.name: (lambda c: c.smart_crusher.enabled, lambda c: JSONCompactor()),
    IntelligentContextManager.name: (
        lambda c: c.intelligent_context.enabled,
        lambda c: IntelligentContextManager(c.intelligent_context, _default_toin()),
    ),
    RollingWindow.name: (
        lambda c: c.rolling_window.enabled and not c.intelligent_context.enabled,
        lambda c: RollingWindow(c.rolling_window),
    ),
}


def _default_toin() -> Toin:
    from ..toin import get_toin

    return get_toin()


def build_transforms(config: HeadroomConfig) -> list[Transform]:
    return [make(config) for enabled, make in REGISTRY.values() if enabled(config)]


__all__ = [
    "REGISTRY",
    "CacheAligner",
    "IntelligentContextManager",
    "JSONCompactor",
    "RollingWindow",
    "ToolOutputRouter",
    "build_transforms",
]

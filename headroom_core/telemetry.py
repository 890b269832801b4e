"""The prior art's module name for TOIN: ``from headroom_core.telemetry import get_toin``.

An alias of :mod:`headroom_core.toin`, which holds the code and the documentation.
"""

from __future__ import annotations

from .toin import Toin, get_toin, open_toin, set_toin

__all__ = ["Toin", "get_toin", "open_toin", "set_toin"]

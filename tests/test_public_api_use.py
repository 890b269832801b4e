"""The adapters use only the core's public API: every ``headroom_core`` name they import
comes from a public module (no ``_private`` part) that lists it in ``__all__``."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def core_imports() -> list[tuple[str, int, str, str]]:
    """(file, line, module, name) for every ``from headroom_core... import name`` in the
    adapters, module level and inside functions alike."""
    found = []
    for path in sorted((REPO / "headroom_integrations").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("headroom_core"):
                for alias in node.names:
                    rel = str(path.relative_to(REPO))
                    found.append((rel, node.lineno, str(node.module), alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("headroom_core"):
                        found.append((str(path.relative_to(REPO)), node.lineno, alias.name, ""))
    return found


def problems() -> list[str]:
    out = []
    for file, line, module, name in core_imports():
        where = f"{file}:{line}: {module}{'.' + name if name else ''}"
        if any(part.startswith("_") for part in module.split(".")):
            out.append(f"{where} (private module)")
            continue
        if not name:
            continue
        public = getattr(importlib.import_module(module), "__all__", None)
        if public is None:
            out.append(f"{where} ({module} has no __all__)")
        elif name not in public:
            out.append(f"{where} (not in {module}.__all__)")
    return out


def test_adapters_import_only_public_core_names() -> None:
    assert core_imports(), "the scan found no import at all"
    assert problems() == []

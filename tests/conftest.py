"""Shared fixtures. Real data lives in ../shared/data beside the checkout; tests that need it
skip with a reason when it is absent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (clone with ../shared beside the repo)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


def load_conversations() -> list[tuple[str, list[dict[str, Any]]]]:
    folder = SHARED_DATA / "conversations"
    if not folder.exists():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        if path.name == "index.json":
            continue
        data = json.loads(path.read_text("utf-8"))
        messages = data["messages"] if isinstance(data, dict) else data
        out.append((path.stem, messages))
    return out


@pytest.fixture(scope="session")
def conversations() -> list[tuple[str, list[dict[str, Any]]]]:
    convs = load_conversations()
    if not convs:
        pytest.skip(f"no conversations under {SHARED_DATA / 'conversations'}")
    return convs


@pytest.fixture(scope="session")
def example_history() -> list[dict[str, Any]]:
    from headroom_core._cli_input import example_history

    return example_history()

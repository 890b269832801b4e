"""Shared fixtures. Real data lives in ../shared/data beside the checkout; tests that need it
skip with a reason when it is absent."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Iterator
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


# --------------------------------------------------------------------------- shared stores
# Throwaway servers (tests/_servers.py), one per session, started on first use and stopped
# at the end; each test gets a fresh database (PostgreSQL) or a flushed db number (Redis).
# Their URLs carry a generous timeout_ms: the suites that use them test what the stores
# keep, not how a loaded 2-core machine answers in 50 ms (tests/core/test_shared_stores.py
# tests the fault paths with the default on servers of their own).
RELAXED = "timeout_ms=5000"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    from tests._servers import PostgresServer, unavailable

    try:
        server = PostgresServer()
    except (FileNotFoundError, OSError, subprocess.CalledProcessError) as exc:
        unavailable(f"cannot start a throwaway PostgreSQL: {exc}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    from tests._servers import RedisServer, unavailable

    try:
        server = RedisServer()
    except (FileNotFoundError, OSError) as exc:
        unavailable(f"cannot start a throwaway redis-server: {exc}")
    try:
        yield server
    finally:
        server.close()


_db_counter = itertools.count()


@pytest.fixture
def pg_url(postgres_server: Any) -> str:
    """A URL to a new, empty PostgreSQL database."""
    pytest.importorskip("psycopg", reason="PostgreSQL stores need the postgres extra")
    name = f"t{os.getpid()}_{next(_db_counter)}"
    return f"{postgres_server.create_database(name)}?{RELAXED}"


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    """A URL to an emptied Redis database number (a new number for each test, cycling)."""
    redis = pytest.importorskip("redis", reason="Redis stores need the redis extra")
    db = 1 + next(_db_counter) % (redis_server.DATABASES - 1)
    url = str(redis_server.url(db))
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return f"{url}?{RELAXED}"


def load_coding_sessions() -> list[tuple[str, list[dict[str, Any]]]]:
    """The long Claude Code sessions in ../shared/data/conversations_coding_agents."""
    folder = SHARED_DATA / "conversations_coding_agents"
    return [
        (path.stem, json.loads(path.read_text("utf-8"))) for path in sorted(folder.glob("*.json"))
    ]


@pytest.fixture(scope="session")
def coding_sessions() -> list[tuple[str, list[dict[str, Any]]]]:
    sessions = load_coding_sessions()
    if not sessions:
        pytest.skip(f"no sessions under {SHARED_DATA / 'conversations_coding_agents'}")
    return sessions

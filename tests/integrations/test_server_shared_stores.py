"""Two ``headroom serve`` processes sharing their stores (issue 18): a lossy cut made by one
is retrieved, byte for byte, through the other's ``/v1/retrieve``; both write metrics into
one PostgreSQL database and ``/stats`` of either sums them and reports the stores' health.

The servers are real subprocesses (``headroom serve``'s click command) on 127.0.0.1, in
front of the local fake provider; PostgreSQL and Redis are the throwaway servers of
``tests/_servers.py``.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the server needs the server extra")
httpx = pytest.importorskip("httpx")

from headroom_core.ccr import ref_for  # noqa: E402

from .provider_server import ProviderServer  # noqa: E402
from .server_harness import serve_process  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ROWS = [{"id": i, "status": "ok" if i % 13 else "error", "ms": 40 + i % 97} for i in range(800)]
TOOL_TEXT = json.dumps(ROWS, indent=2)


def chat() -> list[dict[str, Any]]:
    call = {"id": "c1", "type": "function", "function": {"name": "query", "arguments": "{}"}}
    return [
        {"role": "user", "content": "Which requests failed?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": TOOL_TEXT},
    ]


def serve(upstream: ProviderServer, store: str, originals: str, cwd: Path) -> Any:
    """A ``headroom serve`` subprocess; entered, its base URL."""
    return serve_process(
        upstream.openai_base_url, "--store", store, "--originals", originals, cwd=cwd
    )


@pytest.mark.parametrize("originals", ["redis", "postgresql"])
def test_a_cut_made_by_one_server_is_retrieved_through_the_other(
    originals: str, pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    shared = redis_url if originals == "redis" else pg_url
    with ExitStack() as stack:
        up = stack.enter_context(ProviderServer())
        a = stack.enter_context(serve(up, pg_url, shared, tmp_path))
        b = stack.enter_context(serve(up, pg_url, shared, tmp_path))
        body = {"messages": chat(), "model": "gpt-4o", "config": {"mode": "ccr"}}
        made = httpx.post(f"{a}/v1/compress", json=body, timeout=60).json()
        ref = ref_for(TOOL_TEXT)
        assert made["ccr_hashes"] == [ref] and ref in made["messages"][2]["content"]
        assert made["tokens_after"] < made["tokens_before"] // 2

        got = httpx.get(f"{b}/v1/retrieve/{ref}", timeout=30)
        assert got.status_code == 200 and got.json()["original_content"] == TOOL_TEXT

        # Metrics from both servers land in the one PostgreSQL database.
        request = {"model": "gpt-4o-mini", "messages": chat()}
        for base in (a, b, a):
            sent = httpx.post(f"{base}/v1/chat/completions", json=request, timeout=60)
            assert sent.status_code == 200
        # four rows: the /v1/compress call and three proxied calls, two of them A's, which
        # B sees without A being asked anything (A's writer sends them on its own)
        deadline = time.monotonic() + 30
        while True:
            stats = httpx.get(f"{b}/stats", timeout=30).json()
            if stats["requests"] == 4 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert stats["requests"] == 4 and stats["tokens_saved"] > 0
        assert httpx.get(f"{a}/stats", timeout=30).json()["requests"] == 4
        assert stats["dropped_records"] == 0
        health = stats["stores"]
        assert health["metrics"]["available"] is True and health["metrics"]["dropped"] == 0
        assert health["originals"]["available"] is True
        assert len(up.requests) == 3

"""Run the Headroom server app in this process: uvicorn in a thread, on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests._servers import free_port

REPO = Path(__file__).resolve().parents[2]


class RunningServer:
    def __init__(self, app: Any, server: uvicorn.Server, port: int) -> None:
        self.app = app
        self.server = server
        self.port = port

    @property
    def base_url(self) -> str:
        """The Anthropic SDK's base_url."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def state(self) -> Any:
        return self.app.state.headroom


@contextmanager
def run_app(app: Any) -> Iterator[RunningServer]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="headroom-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningServer(app, server, port)
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def serve_process(openai_base_url: str, *args: str, cwd: Path) -> Iterator[str]:
    """``headroom serve`` as a subprocess in front of ``openai_base_url`` (with ``args``, e.g.
    ``--store``, ``--originals``, ``--workers``); yields its base URL once ``/health``
    answers, stops it on exit. A failure inside carries the server's stderr as a note."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HEADROOM_SERVER_TOKEN": ""}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        sys.executable,
        "-c",
        "from headroom_integrations.server.cli import serve; serve()",
        "--port",
        str(port),
        "--openai-base-url",
        openai_base_url,
        "--log-level",
        "warning",
        *args,
    ]
    proc = subprocess.Popen(command, env=env, cwd=cwd, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise AssertionError(f"server did not start: {err[-2000:]}")
            time.sleep(0.2)
        try:
            yield base
        except BaseException as exc:  # the server's own account goes with the failure
            proc.terminate()
            err = proc.communicate(timeout=30)[1] or b""
            exc.add_note(f"headroom serve stderr (last 4000 bytes):\n{err[-4000:].decode()}")
            raise
    finally:
        proc.terminate()
        proc.wait(timeout=30)

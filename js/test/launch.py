"""Processes the JS tests start (run with the repository's .venv python, cwd = repository root).

``launch.py provider``: the fake provider (``tests/integrations/provider_server.py``) on a free
127.0.0.1 port, plus a control API on another one; prints one JSON line
``{"provider": PORT, "control": PORT}``. Control routes (JSON):

- ``GET /requests``: every request the provider received, in order
  (``method``, ``path``, ``headers``, ``body``);
- ``POST /reset``: forget them and drop what is queued;
- ``POST /queue_reply`` ``{"text", "tool_calls": [[id, name, arguments]], "input_tokens", ...}``;
- ``POST /queue_error`` ``{"status", "body", "headers", "message"}``.

``launch.py serve ARGS``: ``headroom serve ARGS`` (the real command) in this process.

Both stop when their standard input closes, so a test process that dies takes them along.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _exit_when_stdin_closes() -> None:
    def watch() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def provider() -> None:
    from tests.integrations.provider_server import ProviderServer

    server = ProviderServer().start()

    class Control(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (stdlib name)
            if self.path != "/requests":
                self._send(404, {"error": f"unknown route {self.path}"})
                return
            self._send(
                200,
                [
                    {"method": r.method, "path": r.path, "headers": r.headers, "body": r.body}
                    for r in server.requests
                ],
            )

        def do_POST(self) -> None:  # noqa: N802 (stdlib name)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            args: dict[str, Any] = json.loads(raw) if raw else {}
            if self.path == "/reset":
                server.reset()
            elif self.path == "/queue_reply":
                calls = [tuple(c) for c in args.pop("tool_calls", None) or []]
                server.queue_reply(tool_calls=calls or None, **args)  # type: ignore[arg-type]
            elif self.path == "/queue_error":
                server.queue_error(
                    args["status"],
                    args.get("body"),
                    args.get("headers"),
                    message=args.get("message"),
                )
            else:
                self._send(404, {"error": f"unknown route {self.path}"})
                return
            self._send(200, {"ok": True})

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    control = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    control.daemon_threads = True
    port = int(server.base_url.rsplit(":", 1)[1])
    print(json.dumps({"provider": port, "control": control.server_port}), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=control.shutdown).start())
    _exit_when_stdin_closes()
    try:
        control.serve_forever(poll_interval=0.05)
    finally:
        control.server_close()
        server.close()


def serve(args: list[str]) -> None:
    from headroom_integrations.server.cli import serve as command

    _exit_when_stdin_closes()  # uvicorn turns the SIGTERM into a graceful shutdown
    command.main(args=args, prog_name="headroom serve")


if __name__ == "__main__":
    if sys.argv[1:2] == ["provider"]:
        provider()
    elif sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2:])
    else:
        sys.exit("usage: launch.py provider | launch.py serve [headroom serve options]")

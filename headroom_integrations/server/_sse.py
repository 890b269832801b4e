"""Server-sent events read as they pass: the bytes go on unchanged, a copy is parsed."""

from __future__ import annotations

from typing import Any

import orjson


class EventReader:
    """Splits a byte stream into SSE events and parses each ``data:`` JSON object."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """The JSON objects of the events completed by ``chunk`` (``[DONE]`` and non-JSON
        data are skipped)."""
        self._buffer += chunk
        if b"\r" in self._buffer:
            self._buffer = self._buffer.replace(b"\r\n", b"\n")
        out: list[dict[str, Any]] = []
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                return out
            event, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
            data = b"\n".join(
                line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")
            )
            if data.startswith(b"{"):
                try:
                    parsed = orjson.loads(data)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(parsed, dict):
                    out.append(parsed)


__all__ = ["EventReader"]

"""Reading what the ``headroom`` command is given: messages, a request body, or a tool output."""

from __future__ import annotations

import json
import os
import select
import stat
import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from .errors import InputError
from .messages import Message, check_messages, from_anthropic, to_anthropic

Kind = Literal["messages", "openai", "anthropic", "tool-output"]
_ANTHROPIC_BLOCKS = frozenset({"tool_use", "tool_result", "text", "image", "thinking"})
_TOOL_OUTPUT_CALL = "call_headroom_input"


@dataclass(slots=True)
class Payload:
    """A parsed input: neutral messages plus what it takes to write it back in its own form."""

    kind: Kind
    messages: list[Message]
    rest: dict[str, Any] = field(default_factory=dict)
    model: str | None = None

    def render(self, messages: list[Message]) -> Any:
        if self.kind == "messages":
            return messages
        if self.kind == "openai":
            return {**self.rest, "messages": messages}
        if self.kind == "anthropic":
            return to_anthropic(messages, self.rest)
        return messages[-1]["content"]


def example_history() -> list[Message]:
    """The agent history bundled with the package (used when no FILE is given)."""
    text = resources.files("headroom_core").joinpath("data/example_history.json").read_text("utf-8")
    loaded: list[Message] = json.loads(text)
    return loaded


#: The largest input the command reads (MB); ``--max-input-mb`` / HEADROOM_MAX_INPUT_MB.
DEFAULT_MAX_INPUT_MB = 256.0
#: How long a FIFO may stay silent before the command gives up (seconds).
FIFO_WAIT_S = 10.0
_CHUNK = 1 << 20


def read_input(file: str, max_mb: float, fifo_wait_s: float = FIFO_WAIT_S) -> str:
    """The text of ``file`` ('-' for stdin), UTF-8. InputError with one line for a file
    over ``max_mb`` (checked before reading where the size is known), not UTF-8, or a FIFO
    that stays silent for ``fifo_wait_s`` (no writer)."""
    limit = int(max_mb * 1_000_000)
    try:
        if file == "-":
            data = _read_stdin(limit, max_mb)
        else:
            info = os.stat(file)
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise InputError(_too_big(info.st_size, max_mb))
            fifo = stat.S_ISFIFO(info.st_mode)
            fd = os.open(file, os.O_RDONLY | (os.O_NONBLOCK if fifo else 0))
            try:
                if fifo:
                    _wait_for_data(fd, file, fifo_wait_s)
                data = _read_limited(fd, limit, file, max_mb)
            finally:
                os.close(fd)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def _read_stdin(limit: int, max_mb: float) -> bytes:
    stream = sys.stdin.buffer
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise InputError(_too_big(None, max_mb))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_big(size: int | None, max_mb: float) -> str:
    """``size`` None: a stream, stopped as soon as it passed the limit."""
    what = "input is" if size is None else f"input is {size / 1e6:,.1f} MB,"
    return (
        f"{what} over the limit of {max_mb:g} MB "
        "(--max-input-mb or HEADROOM_MAX_INPUT_MB raises it)"
    )


def _wait_for_data(fd: int, file: str, timeout: float) -> None:
    """Wait until the FIFO has data (or its writer closed it), then read it blocking."""
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        raise InputError(f"nothing arrived on the FIFO {file} within {timeout:g} s (no writer?)")
    os.set_blocking(fd, True)


def _read_limited(fd: int, limit: int, file: str, max_mb: float = DEFAULT_MAX_INPUT_MB) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise InputError(_too_big(None, max_mb))
        chunks.append(chunk)


def parse_payload(text: str, *, as_kind: str = "auto") -> Payload:
    """Parse input text. Raises InputError with one line saying what is wrong."""
    if as_kind == "tool-output":
        return _tool_output(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "use --as tool-output to compress a raw tool output such as a log"
        ) from None
    except RecursionError:
        raise InputError(
            "JSON nested too deeply to read; use --as tool-output to compress it as text"
        ) from None
    _check_surrogates(data)
    if as_kind == "auto":
        as_kind = _guess(data)
    if as_kind == "messages":
        return Payload("messages", check_messages(data))
    if as_kind in ("openai", "anthropic"):
        if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
            raise InputError(f"an {as_kind} request body must be an object with a 'messages' list")
        model = data.get("model") if isinstance(data.get("model"), str) else None
        if as_kind == "anthropic":
            msgs, rest = from_anthropic(data)
            return Payload("anthropic", check_messages(msgs), rest, model)
        rest = {k: v for k, v in data.items() if k != "messages"}
        return Payload("openai", check_messages(data["messages"]), rest, model)
    return _tool_output(text)


def _check_surrogates(data: Any) -> None:
    """A lone surrogate (``"\\ud800"``) can be written in JSON but not sent as UTF-8: name it."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"the JSON holds a lone surrogate ({exc.object[exc.start : exc.end]!a}), "
            "which is not valid UTF-8 and no API accepts"
        ) from None
    except RecursionError:
        raise InputError(
            "JSON nested too deeply to read; use --as tool-output to compress it as text"
        ) from None


def _guess(data: Any) -> str:
    if isinstance(data, list) and data and all(isinstance(m, dict) and "role" in m for m in data):
        return "messages"
    if isinstance(data, dict) and "messages" in data:
        messages = data["messages"]
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and "role" in m for m in messages
        ):
            raise InputError(
                "has a 'messages' field that is not a list of chat messages (each with a "
                "'role'); to compress this JSON as a tool's output, use --as tool-output"
            )
        if "system" in data or _has_anthropic_blocks(messages):
            return "anthropic"
        return "openai"
    return "tool-output"


def _has_anthropic_blocks(messages: list[Any]) -> bool:
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") in ("tool_use", "tool_result"):
                    return True
    return False


def _tool_output(text: str) -> Payload:
    messages: list[Message] = [
        {"role": "user", "content": "(tool output given to headroom)"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": _TOOL_OUTPUT_CALL,
                    "type": "function",
                    "function": {"name": "tool_output", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": _TOOL_OUTPUT_CALL, "content": text},
    ]
    return Payload("tool-output", messages)

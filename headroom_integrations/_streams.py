"""Stream proxies for the client wrapper: items pass through as they arrive, unchanged.

Each proxy shows every item to ``observe`` (which reads usage from it) and calls ``done``
exactly once, with the error if the stream failed, when the stream is exhausted, closed,
left through its ``with`` block, or fails. A stream abandoned half-read and never closed
is recorded when it is garbage-collected. Every other attribute (``response``, ...) is the
SDK stream's own. ``observe`` and ``done`` are observers: what they raise is logged, never
passed to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

logger = logging.getLogger("headroom_integrations")

_OWN = frozenset({"_stream", "_observe", "_done", "_iterator", "_manager"})

Observe = Callable[[Any], None]
Done = Callable[[BaseException | None], None]


class _Base:
    def __init__(self, stream: Any, observe: Observe, done: Done) -> None:
        self._stream = stream
        self._observe = observe
        self._done: Done | None = done

    def _see(self, item: Any) -> None:
        try:
            self._observe(item)
        except Exception as exc:  # observer boundary: the caller still gets the item
            logger.warning("headroom client: cannot read usage from a stream item: %r", exc)

    def _end(self, error: BaseException | None) -> None:
        done, self._done = self._done, None
        if done is not None:
            done(error)

    def __getattr__(self, name: str) -> Any:
        if name in _OWN:  # not set yet (a failed __init__): never ask the SDK stream
            raise AttributeError(name)
        return getattr(self._stream, name)

    def __del__(self) -> None:  # an abandoned stream still gets its record
        if getattr(self, "_done", None) is not None:
            self._end(None)


class ObservedStream(_Base):
    """A sync SDK stream (``openai.Stream``, ``anthropic.Stream``) with an observer."""

    def __init__(self, stream: Any, observe: Observe, done: Done) -> None:
        super().__init__(stream, observe, done)
        self._iterator = stream if hasattr(stream, "__next__") else iter(stream)

    def __iter__(self) -> ObservedStream:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self._iterator)
        except StopIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        self._see(item)
        return item

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._end(None)

    def __enter__(self) -> ObservedStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncObservedStream(_Base):
    """An async SDK stream (``openai.AsyncStream``, ``anthropic.AsyncStream``)."""

    def __init__(self, stream: Any, observe: Observe, done: Done) -> None:
        super().__init__(stream, observe, done)
        # The SDK stream's own __anext__ when it has one: wrapping its __aiter__ would add an
        # async generator that asyncio complains about when the stream is abandoned.
        self._iterator = stream if hasattr(stream, "__anext__") else stream.__aiter__()

    def __aiter__(self) -> AsyncObservedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self._iterator.__anext__()
        except StopAsyncIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        self._see(item)
        return item

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._end(None)

    async def __aenter__(self) -> AsyncObservedStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class ObservedManager:
    """An SDK stream manager (``client.messages.stream(...)``,
    ``client.chat.completions.stream(...)``), sync or async. Entering it gives the SDK's
    own stream object; leaving it calls ``done`` with the stream, and the error if any."""

    def __init__(self, manager: Any, done: Callable[[Any, BaseException | None], None]) -> None:
        self._manager = manager
        self._done = done
        self._stream: Any = None

    def __enter__(self) -> Any:
        try:
            self._stream = self._manager.__enter__()
        except BaseException as exc:  # the request itself failed: record, re-raise as is
            self._done(None, exc)
            raise
        return self._stream

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._manager.__exit__(exc_type, exc, tb)
        finally:
            self._done(self._stream, exc)

    async def __aenter__(self) -> Any:
        try:
            self._stream = await self._manager.__aenter__()
        except BaseException as exc:
            self._done(None, exc)
            raise
        return self._stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._manager.__aexit__(exc_type, exc, tb)
        finally:
            self._done(self._stream, exc)

    def __getattr__(self, name: str) -> Any:
        if name in _OWN:
            raise AttributeError(name)
        return getattr(self._manager, name)

"""Send one planned call through the wrapped SDK method and record it; sync and async.

The provider's errors are recorded and re-raised exactly as the SDK raised them (a bare
``raise``: same object, same traceback). Streams come back wrapped so usage is read from
the items as they pass (see :mod:`headroom_integrations._streams`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ._client_core import ClientEngine, Plan, Usage
from ._streams import AsyncObservedStream, ObservedManager, ObservedStream
from ._usage import as_int as as_int  # re-exported for the surfaces

#: Reads usage from a whole response (None when it carries none).
ReadUsage = Callable[[Any], Usage | None]
#: Folds one stream item into the usage seen so far.
FoldUsage = Callable[[Usage, Any], Usage]


class _Folded:
    def __init__(self, fold: FoldUsage) -> None:
        self.fold = fold
        self.usage = Usage()

    def see(self, item: Any) -> None:
        self.usage = self.fold(self.usage, item)


def send_sync(
    engine: ClientEngine,
    plan: Plan,
    send: Callable[[], Any],
    *,
    stream: bool,
    read: ReadUsage,
    fold: FoldUsage,
) -> Any:
    try:
        response = send()
    except Exception as exc:
        engine.finish(plan, None, exc, stream=stream)
        raise
    if stream:
        folded = _Folded(fold)
        return ObservedStream(
            response,
            folded.see,
            lambda error: engine.finish(plan, folded.usage, error, stream=True),
        )
    engine.finish(plan, _read(read, response))
    return response


async def send_async(
    engine: ClientEngine,
    plan: Plan,
    send: Callable[[], Awaitable[Any]],
    *,
    stream: bool,
    read: ReadUsage,
    fold: FoldUsage,
) -> Any:
    try:
        response = await send()
    except Exception as exc:
        engine.finish(plan, None, exc, stream=stream)
        raise
    if stream:
        folded = _Folded(fold)
        return AsyncObservedStream(
            response,
            folded.see,
            lambda error: engine.finish(plan, folded.usage, error, stream=True),
        )
    engine.finish(plan, _read(read, response))
    return response


def managed(engine: ClientEngine, plan: Plan, manager: Any, final: ReadUsage) -> ObservedManager:
    """Wrap an SDK stream manager: recorded when its ``with`` block ends, usage read from
    the stream's final snapshot by ``final``."""

    def done(stream: Any, error: BaseException | None) -> None:
        usage = _read(final, stream) if stream is not None else None
        engine.finish(plan, usage, error, stream=True)

    return ObservedManager(manager, done)


def _read(read: ReadUsage, response: Any) -> Usage | None:
    try:
        return read(response)
    except Exception:  # observer boundary: a response we cannot read is recorded without usage
        return None


#: SDK call options that are not part of the request body.
_OPTIONS = ("extra_headers", "extra_query", "extra_body", "timeout")


def request_body(kwargs: dict[str, Any], **override: Any) -> dict[str, Any]:
    """The JSON body a call with ``kwargs`` (headroom_* already removed) would send:
    SDK options left out, ``extra_body`` merged in, then ``override``."""
    body = {k: v for k, v in kwargs.items() if k not in _OPTIONS and _given(v)}
    extra = kwargs.get("extra_body")
    if isinstance(extra, dict):
        body.update(extra)
    body.update(override)
    return body


def _given(value: Any) -> bool:
    """False for the SDKs' "not given" sentinels (``omit``, ``NOT_GIVEN``)."""
    return type(value).__name__ not in ("Omit", "NotGiven")

"""``attach``: feed every retrieval of an original into a TOIN."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from headroom_core.ccr import StoredOriginal, add_retrieval_listener, remove_retrieval_listener
from headroom_core.toin._base import Toin, named_keys
from headroom_core.toin._open import get_toin

__all__ = ["attach"]

_log = logging.getLogger("headroom_core.toin")


def attach(toin: Toin | None = None) -> Callable[[], None]:
    """Record every successful :func:`headroom_core.ccr.retrieve` in ``toin``; return detach.

    Each retrieval is recorded with the original's tool and kind, the query, and as fields
    the keys of the original's JSON objects that the query names (see
    :func:`~headroom_core.toin.named_keys`). With ``toin`` None, the TOIN is the process
    default (:func:`get_toin`) at the time of each retrieval. The listener never raises:
    a failure is logged (logger ``headroom_core.toin``) and the model's tool call goes on.
    Calling the returned function more than once is harmless. Attaching the default
    twice records each retrieval once.
    """
    if toin is not None and not isinstance(toin, Toin):
        raise TypeError(f"attach: expected a Toin or None, got {type(toin).__name__}")
    if toin is None:
        return _attach_default()
    return _attach_listener(toin)


_default_lock = threading.Lock()
_default_refs = 0
_default_detach: Callable[[], None] | None = None


def _attach_default() -> Callable[[], None]:
    """One listener for the process default, however many callers ask for it (the tool
    router asks once per process, so learning is on by default); it goes when the last
    caller detaches."""
    global _default_refs, _default_detach
    with _default_lock:
        if _default_detach is None:
            _default_detach = _attach_listener(None)
        _default_refs += 1
    done = False

    def detach() -> None:
        global _default_refs, _default_detach
        nonlocal done
        with _default_lock:
            if done:
                return
            done = True
            _default_refs -= 1
            if _default_refs == 0 and _default_detach is not None:
                _default_detach()
                _default_detach = None

    return detach


def _attach_listener(toin: Toin | None) -> Callable[[], None]:
    def listener(original: StoredOriginal, query: str | None) -> None:
        try:
            target = get_toin() if toin is None else toin
            fields = named_keys(original.text, query)
            target.record_retrieval(original.tool, original.kind, query, fields)
        except Exception:  # an observer never breaks the model's tool call
            _log.exception("TOIN could not record the retrieval of ref %s", original.ref)

    add_retrieval_listener(listener)

    def detach() -> None:
        remove_retrieval_listener(listener)

    return detach

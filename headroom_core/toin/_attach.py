"""``attach``: feed every retrieval of an original into a TOIN."""

from __future__ import annotations

import logging
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
    Calling the returned function more than once is harmless.
    """
    if toin is not None and not isinstance(toin, Toin):
        raise TypeError(f"attach: expected a Toin or None, got {type(toin).__name__}")

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

"""A namespace over a store of originals: refs made in one namespace read nothing in another.

A shared store (Redis, PostgreSQL, one SQLite file behind several tenants) holds the
originals of many conversations. A tool output can name any ref, so without a namespace a
hostile output could make the model fetch another conversation's original. A
:class:`ScopedOriginalStore` keeps each original with a header naming its namespace (its
ref is therefore that namespace's own) and answers ``get`` only for originals of its
namespace::

    tenant = scoped_store(open_original_store("redis://cache:6379/0"), "tenant-42")
    with use_store(tenant):
        compress(messages)              # originals kept under tenant-42's refs
        retrieve(ref)                   # reads tenant-42's originals only

The server takes the namespace from the ``x-headroom-namespace`` request header; adapters
take the scoped store as ``store=``. A namespaced original is never handed out through the
unscoped store either (:func:`~headroom_core.ccr.retrieve` refuses it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from headroom_core.ccr._base import OriginalStore, StoredOriginal
from headroom_core.errors import ConfigError, StorageError

__all__ = ["NAMESPACE_MARK", "ScopedOriginalStore", "in_a_namespace", "scoped_store"]

_MAX_NAMESPACE = 200
#: How a namespaced original starts in the underlying store.
NAMESPACE_MARK = "\x00headroom-namespace:"


def in_a_namespace(text: str) -> bool:
    """True for the stored text of a namespaced original: an unscoped store must not hand
    it out (it belongs to one namespace)."""
    return text.startswith(NAMESPACE_MARK)


class ScopedOriginalStore:
    """``inner`` seen through one namespace (see the module docstring). ``len()`` counts the
    whole inner store; ``clear()`` is refused (it would clear every namespace)."""

    __slots__ = ("_header", "inner", "namespace")

    def __init__(self, inner: OriginalStore, namespace: str) -> None:
        if not isinstance(inner, OriginalStore):
            raise ConfigError(
                f"scoped_store: expected an OriginalStore, got {type(inner).__name__}"
            )
        if not isinstance(namespace, str) or not namespace or len(namespace) > _MAX_NAMESPACE:
            raise ConfigError(
                f"scoped_store: the namespace must be a non-empty string of at most "
                f"{_MAX_NAMESPACE} characters, got {namespace!r}"
            )
        if "\x00" in namespace:
            raise ConfigError("scoped_store: the namespace may not contain NUL characters")
        self.inner = inner
        self.namespace = namespace
        self._header = f"{NAMESPACE_MARK}{namespace}\x00"

    def __repr__(self) -> str:
        return f"ScopedOriginalStore({self.inner!r}, namespace={self.namespace!r})"

    def put(
        self,
        original: str,
        *,
        tool: str | None = None,
        kind: str = "json",
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        if not isinstance(original, str):
            return self.inner.put(original, tool=tool, kind=kind, meta=meta)  # its own error
        return self.inner.put(self._header + original, tool=tool, kind=kind, meta=meta)

    def get(self, ref: str) -> StoredOriginal | None:
        found = self.inner.get(ref)
        if found is None or not found.text.startswith(self._header):
            return None  # unknown, or another namespace's
        text = found.text[len(self._header) :]
        return dataclasses.replace(found, text=text, size=len(text))

    def __contains__(self, ref: object) -> bool:
        return isinstance(ref, str) and self.get(ref) is not None

    def __len__(self) -> int:
        return len(self.inner)

    def clear(self) -> None:
        raise StorageError(
            f"a store scoped to {self.namespace!r} cannot clear its namespace alone; "
            "clear the underlying store"
        )

    def close(self) -> None:
        """The inner store is the caller's to close."""


def scoped_store(store: OriginalStore, namespace: str) -> ScopedOriginalStore:
    """``store`` seen through ``namespace`` (a tenant, a user or a conversation id)."""
    return ScopedOriginalStore(store, namespace)

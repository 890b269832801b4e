"""``HeadroomClient``: a drop-in wrapper around an OpenAI or Anthropic SDK client.

::

    from openai import OpenAI
    from headroom_integrations import HeadroomClient

    client = HeadroomClient(OpenAI(), default_mode="audit")   # measure first
    client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    client.get_summary()                                        # what optimize would save

Same API as the wrapped client. ``client.chat.completions.create`` (OpenAI) and
``client.messages.create`` (Anthropic) take five extra parameters, stripped before the
call: ``headroom_mode`` (``"audit"``, ``"optimize"``, ``"off"``), ``headroom_query``
(what relevance scoring ranks against; default: the user turn each tool output served),
``headroom_output_buffer_tokens`` (default: the request's own max output tokens, else the
config's), ``headroom_keep_turns`` (last N user turns never dropped) and
``headroom_tool_profiles`` (per-tool SmartCrusher limits). Every other attribute
(``embeddings``, ``files``, ``models``, ``beta``, ...) is the wrapped client's own.

Modes: ``audit`` sends the request unchanged and records its tokens, waste, prefix hashes
and what optimize would have sent; ``optimize`` sends the compressed request and records
the saving; ``off`` does nothing. ``simulate(...)`` on the same objects returns a
:class:`~headroom_core.pipeline.SimulationResult` and makes no call. One
:class:`~headroom_core.metrics.RequestMetrics` per call (streams: when the stream ends) in
the store; ``get_metrics`` / ``get_summary`` read it back, ``headroom report`` renders it.

Errors: the provider's are raised exactly as the SDK raises them (and recorded); ours never
block a call (see :mod:`headroom_integrations._client_core`). A bad ``headroom_*`` value is a
programming error: ConfigError, before anything is sent.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any

from headroom_core.ccr import OriginalStore, resolve_store
from headroom_core.config import (
    CacheAlignerConfig,
    HeadroomConfig,
    RollingWindowConfig,
    SmartCrusherConfig,
)
from headroom_core.errors import ConfigError
from headroom_core.metrics import DEFAULT_METRICS_URL, MetricsStore, RequestMetrics, Summary
from headroom_core.providers import AnthropicProvider, OpenAIProvider

from ._client_core import CLIENT_MODES, ClientEngine
from ._sink import MetricsSink

DEFAULT_STORE = DEFAULT_METRICS_URL
_SDKS = ("openai", "anthropic")


class HeadroomClient:
    """Wraps ``openai.OpenAI`` / ``AsyncOpenAI`` or ``anthropic.Anthropic`` /
    ``AsyncAnthropic`` (Azure and Bedrock variants included); see the module docstring."""

    def __init__(
        self,
        original_client: Any,
        *,
        provider: str | OpenAIProvider | AnthropicProvider | None = None,
        default_mode: str = "audit",
        store_url: str | None = None,
        smart_crusher_config: SmartCrusherConfig | None = None,
        cache_aligner_config: CacheAlignerConfig | None = None,
        rolling_window_config: RollingWindowConfig | None = None,
        model_context_limits: dict[str, int] | None = None,
        config: HeadroomConfig | None = None,
        originals: OriginalStore | str | None = None,
    ) -> None:
        """
        Args:
            original_client: The SDK client to wrap (it is used, never modified).
            provider: ``"openai"``, ``"anthropic"``, an ``OpenAIProvider`` /
                ``AnthropicProvider``, or None to tell from the client.
            default_mode: ``"audit"`` (default), ``"optimize"`` or ``"off"``.
            store_url: Where metrics go (``sqlite:///``, ``jsonl:///``, ``memory://``,
                ``postgresql://``);
                default ``sqlite:///headroom.db`` in the working directory.
            smart_crusher_config, cache_aligner_config, rolling_window_config,
                model_context_limits: Override those parts of ``config``.
            config: A whole ``HeadroomConfig`` (intelligent context, relevance, ...).
            originals: Where lossy cuts keep their originals, a store or its URL
                (``sqlite:///originals.db`` survives restarts); None: the core's default.
        """
        if default_mode not in CLIENT_MODES:
            raise ConfigError(
                f"HeadroomClient.default_mode: expected one of {list(CLIENT_MODES)}, "
                f"got {default_mode!r}"
            )
        self._original = original_client
        self.provider = _provider_name(original_client, provider)
        self.is_async = _is_async(original_client)
        self.default_mode = default_mode
        # A provider object's context limits count, under the ones given here.
        limits = {**getattr(provider, "model_context_limits", {}), **(model_context_limits or {})}
        self.config = _config(
            config,
            smart_crusher=smart_crusher_config,
            cache_aligner=cache_aligner_config,
            rolling_window=rolling_window_config,
            model_context_limits=limits or None,
        )
        self.store_url = store_url or DEFAULT_STORE
        self._sink = MetricsSink(self.store_url, None, "HeadroomClient")
        self._owns_sink = True
        self.originals = None if originals is None else resolve_store(originals)
        self.engine = ClientEngine(self.config, self.provider, self._sink, originals=self.originals)
        self._surface = self._build_surface()

    def _build_surface(self) -> Any:
        if self.provider == "openai":
            from .openai import Chat

            return Chat(self, self._original.chat, self.is_async)
        from .anthropic import AsyncMessages, Messages

        cls = AsyncMessages if self.is_async else Messages
        return cls(self, self._original.messages)

    @property
    def original(self) -> Any:
        """The wrapped SDK client."""
        return self._original

    def __getattr__(self, name: str) -> Any:
        if name == "chat" and self.provider == "openai":
            return self._surface
        if name == "messages" and self.provider == "anthropic":
            return self._surface
        if name.startswith("__") or name in ("_original", "_surface", "_sink", "_owns_sink"):
            raise AttributeError(name)
        return getattr(self._original, name)

    def with_options(self, **options: Any) -> HeadroomClient:
        """``original_client.with_options(...)`` wrapped the same way. It records into this
        client's store, which stays this client's to close."""
        twin = HeadroomClient.__new__(HeadroomClient)
        twin.__dict__.update(self.__dict__)
        twin._original = self._original.with_options(**options)
        twin._owns_sink = False
        twin._surface = twin._build_surface()
        return twin

    copy = with_options  # the SDKs' alias

    # -- metrics --------------------------------------------------------------------------

    @property
    def store(self) -> MetricsStore:
        """The open metrics store (StorageError if it could not be opened)."""
        return self._sink.require_store()

    def get_metrics(
        self, limit: int | None = 100, *, since: datetime | None = None, model: str | None = None
    ) -> list[RequestMetrics]:
        """Recorded requests, newest first (``limit=None``: all)."""
        return self.store.get_metrics(limit, since=since, model=model)

    def get_summary(self, *, since: datetime | None = None) -> Summary:
        """Totals over the recorded requests (at or after ``since``)."""
        return self.store.get_summary(since=since)

    def close(self) -> None:
        """Close the metrics store (the SDK client is the caller's to close). A client made
        by ``with_options`` leaves its parent's store open."""
        if self._owns_sink:
            self._sink.close()

    def __enter__(self) -> HeadroomClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"HeadroomClient({type(self._original).__name__}, provider={self.provider!r}, "
            f"default_mode={self.default_mode!r}, store_url={self.store_url!r})"
        )


def _provider_name(client: Any, provider: Any) -> str:
    """Which API the client speaks: from ``provider`` if given, else from its package."""
    root = type(client).__module__.split(".", 1)[0]
    detected = root if root in _SDKS else None
    if detected is None:  # a subclass or look-alike: go by shape
        if hasattr(client, "chat") and hasattr(getattr(client, "chat", None), "completions"):
            detected = "openai"
        elif hasattr(client, "messages") and hasattr(getattr(client, "messages", None), "create"):
            detected = "anthropic"
    name = getattr(provider, "name", provider)
    if name is None:
        if detected is None:
            raise ConfigError(
                f"HeadroomClient.provider: cannot tell which API {type(client).__name__} "
                "speaks; pass provider='openai' or provider='anthropic'"
            )
        return detected
    if name not in _SDKS:
        raise ConfigError(
            f"HeadroomClient.provider: expected 'openai', 'anthropic' or a provider object, "
            f"got {provider!r}"
        )
    if detected is not None and detected != name:
        raise ConfigError(
            f"HeadroomClient.provider: {provider!r} given for a {type(client).__name__}, "
            f"which speaks the {detected} API"
        )
    return str(name)


def _is_async(client: Any) -> bool:
    names = {c.__name__ for c in type(client).__mro__}
    return bool(names & {"AsyncAPIClient", "AsyncOpenAI", "AsyncAnthropic"})


def _config(base: HeadroomConfig | None, **parts: Any) -> HeadroomConfig:
    config = base or HeadroomConfig()
    update = {k: v for k, v in parts.items() if v is not None and k != "model_context_limits"}
    for name, value in update.items():
        expected = type(getattr(config, name))
        if not isinstance(value, expected):
            raise ConfigError(
                f"HeadroomClient.{name}_config: expected a {expected.__name__}, got {value!r}"
            )
    limits = parts.get("model_context_limits")
    if limits is not None:
        update["model_context_limits"] = {**config.model_context_limits, **limits}
    if not update:
        return config
    return HeadroomConfig(**{**config.model_dump(), **update})


__all__ = ["DEFAULT_STORE", "HeadroomClient"]

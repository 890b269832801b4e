"""``HeadroomChatModel``: a LangChain chat model that compresses its input, then calls yours.

::

    model = HeadroomChatModel(llm=ChatOpenAI(model="gpt-4o"), model="gpt-4o")
    model.invoke(history)                       # the wrapped model receives it compressed
    agent = create_agent(model=model, tools=[...])     # bind_tools goes through

Every call compresses the messages with :class:`~.runnable.HeadroomRunnable` (the same
engine, failure policy and ``"headroom_compression"`` custom event as in a chain), then
calls the wrapped model with the result. Both run as children of the wrapper's own run,
so a callback handler sees the event and then the wrapped model's call under one parent
(``HeadroomCallbackHandler`` attaches the stats to that inner call).

- ``invoke``/``ainvoke``/``batch``/``abatch``: the wrapped model's ``invoke``/``ainvoke``;
  whether it streams internally (for ``astream_events``, LangGraph's ``"messages"`` mode)
  is the wrapped model's decision, in its own run.
- ``stream``/``astream``: the wrapped model's chunks, passed through as they come.
- ``bind_tools(tools, **kw)``: a ``HeadroomChatModel`` around ``llm.bind_tools(tools, **kw)``.
- ``with_structured_output(schema, **kw)``: ``HeadroomRunnable | llm.with_structured_output(
  schema, **kw)``, so the output is exactly the wrapped model's.

``model`` is the name used to count tokens and find the context window; what the agent
factory and tracing see (``model_name``, ``profile``, LangSmith params) is the wrapped
model's. ``get_num_tokens`` / ``get_num_tokens_from_messages`` (what ``trim_messages``,
``SummarizationMiddleware`` and ``ContextEditingMiddleware`` can count with) use the core's
exact offline tokenizer for ``model``, tool definitions included.

- Tool definitions: the tools given to ``bind_tools`` are counted in every request and
  come off the window.
- ``retrieve_tool=True``: ``bind_tools`` adds the ``headroom_retrieve`` tool
  (:attr:`retrieval_tool`, reading ``store``, answers capped to the window) unless it is
  there already, so the model can read back what a cut left out. An agent runs tools it
  was given: ``create_agent(model, tools=[*tools, model.retrieval_tool])``.
- ``store``: where lossy cuts keep their originals (a store or its URL; None: the core's
  default), and what the retrieve tool reads.

Results of the ``headroom_retrieve`` tool are never compressed: they are what the model
asked to see whole (and already capped). Budget policy (``on_budget``): ``"fit"``
(default) never raises for the window (the hardest cut, else sent unfitted and reported
in the event's ``failures``); ``"raise"`` lets BudgetError propagate. Any other
compression error sends the messages unchanged and is reported in ``failures``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID

from langchain_core.caches import BaseCache
from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    BaseCallbackHandler,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput, ModelProfile
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig, ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils.uuid import uuid7
from pydantic import BaseModel, Field, field_validator
from typing_extensions import override

from headroom_core.ccr import RETRIEVE_TOOL_NAME, OriginalStore, resolve_store
from headroom_core.config import HeadroomConfig, Mode
from headroom_core.tokens import get_tokenizer

from .._compress import BudgetPolicy, retrieve_cap
from ._convert import to_neutral
from ._tools import count_tool_tokens, tool_specs
from .retrieve_tool import make_retrieve_tool
from .runnable import HeadroomRunnable

__all__ = ["HeadroomChatModel"]

# LangGraph's StreamMessagesHandler skips runs carrying this tag. While the wrapper
# streams, its own run emits every chunk; the tag keeps the inner run from emitting each
# chunk a second time in a graph's "messages" stream.
_NOSTREAM_TAG = "nostream"


@dataclass(frozen=True, slots=True)
class _Parent:
    """What the wrapper's inner calls inherit from its run: the run id and the callbacks,
    tags and metadata a run manager's ``get_child()`` would pass on."""

    run_id: UUID
    handlers: list[BaseCallbackHandler] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


# BaseChatModel.stream/astream open the run but call _stream/_astream without its run
# manager (on purpose upstream: langchain-ai/langchain#23500). Our stream/astream choose
# the run id, put it here for the first step of the iteration (when LangChain enters
# _stream) and take it away before handing out the first chunk.
_STREAM_PARENT: ContextVar[_Parent | None] = ContextVar("headroom_stream_parent", default=None)


class HeadroomChatModel(BaseChatModel):
    """A chat model that compresses the messages with headroom, then calls ``llm``."""

    llm: Runnable[LanguageModelInput, BaseMessage] = Field(
        description="The model to call: a chat model, or a Runnable such as llm.bind_tools(...)."
    )
    model: str = Field(
        "gpt-4o", description="Model name for token counting and the context window."
    )
    mode: Mode | None = Field(
        None, description="optimize, audit or off; None: the config's mode (optimize)."
    )
    config: HeadroomConfig | None = Field(
        None, description="Core settings; None: HeadroomConfig() defaults."
    )
    max_tokens: int | None = Field(
        None, description="Window the request must fit; None: the model's context limit."
    )
    store: Any = Field(
        None,
        exclude=True,
        description="Where lossy cuts keep their originals: an OriginalStore or its URL; "
        "None: the core's default store.",
    )
    retrieve_tool: bool = Field(
        False, description="bind_tools adds the headroom_retrieve tool (see retrieval_tool)."
    )
    on_budget: BudgetPolicy = Field(
        "fit", description="fit: never raise for the window; raise: BudgetError propagates."
    )
    bound_tools: list[Any] | None = Field(
        None, exclude=True, description="The tools given to bind_tools (counted)."
    )
    # The wrapped model sees the request that is actually sent, so it is the one to cache
    # (any global cache still applies to it); a cache here would key on the uncompressed input.
    cache: BaseCache | bool | None = Field(default=False, exclude=True)

    @field_validator("store")
    @classmethod
    def _open_store(cls, value: Any) -> OriginalStore | None:
        return None if value is None else resolve_store(value)

    # -- identity -----------------------------------------------------------------------

    @property
    @override
    def _llm_type(self) -> str:
        return "headroom"

    @property
    @override
    def _identifying_params(self) -> dict[str, Any]:
        inner = _chat_model(self.llm)
        return {
            "llm": inner._llm_type if inner is not None else type(self.llm).__name__,
            "model": self.model,
            "mode": self.mode,
            "max_tokens": self.max_tokens,
        }

    @property
    def model_name(self) -> str:
        """The wrapped model's name, which LangChain's agent factory reads (before ``model``)
        to choose a structured-output strategy; ``model`` is only for counting."""
        inner = _chat_model(self.llm)
        for attr in ("model_name", "model", "model_id"):
            value = getattr(inner, attr, None)
            if isinstance(value, str) and value:
                return value
        return inner._llm_type if inner is not None else type(self.llm).__name__

    @override
    def _resolve_model_profile(self) -> ModelProfile | None:
        inner = _chat_model(self.llm)
        return inner.profile if inner is not None else None

    @override
    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        # Tracing describes the model called; the base class would report `model` (the
        # counting name) and `max_tokens` (the window) as the call's model and output cap.
        inner = _chat_model(self.llm)
        if inner is not None:
            return inner._get_ls_params(stop=stop, **kwargs)
        return LangSmithParams(ls_provider="headroom", ls_model_type="chat")

    # -- derived models -----------------------------------------------------------------

    @override
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> HeadroomChatModel:
        bind = getattr(self.llm, "bind_tools", None)
        if bind is None:
            raise NotImplementedError(
                f"HeadroomChatModel.bind_tools: the wrapped {type(self.llm).__name__} has no "
                "bind_tools"
            )
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        tools = list(tools)
        names = {spec.get("function", {}).get("name") for spec in tool_specs(tools)}
        if self.retrieve_tool and RETRIEVE_TOOL_NAME not in names:
            tools.append(self.retrieval_tool)
        return self._rewrap(bind(tools, **kwargs), bound_tools=tools)

    @property
    def retrieval_tool(self) -> BaseTool:
        """The ``headroom_retrieve`` tool for this model: reads ``store``, answers capped to
        a quarter of the window left after the output buffer (at most 8,000 tokens)."""
        return make_retrieve_tool(
            self.store,
            max_tokens=retrieve_cap(self.model, self.config, self.max_tokens),
            model=self.model,
        )

    # -- counting ---------------------------------------------------------------------------

    @override
    def get_token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` in ``model``'s encoding (offline, never downloads)."""
        return get_tokenizer(self.model).encode(text)

    @override
    def get_num_tokens(self, text: str) -> int:
        return get_tokenizer(self.model).count_text(text)

    @override
    def get_num_tokens_from_messages(
        self,
        messages: list[BaseMessage],
        tools: Sequence[Any] | None = None,
    ) -> int:
        """Exact tokens of a request for ``model``: the messages with the chat framing,
        plus the tool definitions (``tools``, else the ones bound)."""
        counted = get_tokenizer(self.model).count_messages(to_neutral(messages))
        return counted + count_tool_tokens(
            tools if tools is not None else self.bound_tools, self.model
        )

    @override
    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        structured = getattr(self.llm, "with_structured_output", None)
        if structured is None:
            raise NotImplementedError(
                f"HeadroomChatModel.with_structured_output: the wrapped "
                f"{type(self.llm).__name__} has no with_structured_output"
            )
        model: Runnable[LanguageModelInput, dict[str, Any] | BaseModel]
        model = structured(schema, include_raw=include_raw, **kwargs)
        return self._compressor() | model

    def _rewrap(
        self, llm: Runnable[LanguageModelInput, BaseMessage], **changes: Any
    ) -> HeadroomChatModel:
        """This wrapper, same settings, around ``llm`` (the profile is re-read from it)."""
        settings = {
            name: getattr(self, name)
            for name in self.model_fields_set
            if name not in ("llm", "profile")
        }
        return type(self)(llm=llm, **{**settings, **changes})

    def _compressor(self) -> HeadroomRunnable:
        return HeadroomRunnable(
            model=self.model,
            mode=self.mode,
            config=keep_retrieved_whole(self.config),
            max_tokens=self.max_tokens,
            tools=self.bound_tools,
            store=self.store,
            on_budget=self.on_budget,
        )

    # -- calls --------------------------------------------------------------------------

    @override
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        config = _child_config(_parent_of(run_manager), CallbackManager)
        compressed = self._compressor().invoke(messages, config=config)
        message = self.llm.invoke(compressed, config=config, **_stop(stop), **kwargs)
        return ChatResult(generations=[ChatGeneration(message=message)])

    @override
    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        config = _child_config(_parent_of(run_manager), AsyncCallbackManager)
        compressed = await self._compressor().ainvoke(messages, config=config)
        message = await self.llm.ainvoke(compressed, config=config, **_stop(stop), **kwargs)
        return ChatResult(generations=[ChatGeneration(message=message)])

    @override
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        parent = _parent_of(run_manager) if run_manager is not None else _STREAM_PARENT.get()
        config = _child_config(parent, CallbackManager)
        compressed = self._compressor().invoke(messages, config=config)
        inner = _with_tag(config, _NOSTREAM_TAG)
        for chunk in self.llm.stream(compressed, config=inner, **_stop(stop), **kwargs):
            yield ChatGenerationChunk(message=_as_chunk(chunk))

    @override
    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        parent = _parent_of(run_manager) if run_manager is not None else _STREAM_PARENT.get()
        config = _child_config(parent, AsyncCallbackManager)
        compressed = await self._compressor().ainvoke(messages, config=config)
        inner = _with_tag(config, _NOSTREAM_TAG)
        async for chunk in self.llm.astream(compressed, config=inner, **_stop(stop), **kwargs):
            yield ChatGenerationChunk(message=_as_chunk(chunk))

    @override
    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        config, parent = self._stream_run(config, CallbackManager)
        token = _STREAM_PARENT.set(parent)
        try:
            chunks = super().stream(input, config, stop=stop, **kwargs)
            first = next(chunks, None)  # opens the run and enters _stream
        finally:
            _STREAM_PARENT.reset(token)
        if first is None:
            return
        yield first
        yield from chunks

    @override
    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        config, parent = self._stream_run(config, AsyncCallbackManager)
        token = _STREAM_PARENT.set(parent)
        chunks = cast(
            "AsyncGenerator[AIMessageChunk, None]",
            super().astream(input, config, stop=stop, **kwargs),
        )
        try:
            first = await anext(chunks, None)  # opens the run and enters _astream
        finally:
            _STREAM_PARENT.reset(token)
        if first is None:
            return
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    def _stream_run(
        self,
        config: RunnableConfig | None,
        manager_cls: type[CallbackManager] | type[AsyncCallbackManager],
    ) -> tuple[RunnableConfig, _Parent]:
        """The config for BaseChatModel's stream, with this call's run id fixed, and what
        that run passes on to its children.

        The caller's callbacks are configured here, once, and handed to the base class as
        the config's callbacks: the run and its children then share the same handler
        instances (a tracer added from the environment included), as under a run manager.
        """
        config = ensure_config(config)
        run_id = config.get("run_id") or uuid7()
        manager = manager_cls.configure(
            inheritable_callbacks=config.get("callbacks"),
            inheritable_tags=config.get("tags"),
            inheritable_metadata=config.get("metadata"),
        )
        parent = _Parent(
            run_id,
            list(manager.inheritable_handlers),
            list(manager.inheritable_tags),
            dict(manager.inheritable_metadata),
        )
        return {**config, "callbacks": manager, "run_id": run_id}, parent

    # Invoke never streams at this level: the wrapped model is called with invoke and
    # streams (or not) in its own run, for the handlers it inherits. Without this,
    # BaseChatModel would call _stream without the run manager when a streaming handler
    # is attached, and the inner call would lose its parent run.
    @override
    def _should_stream(
        self,
        *,
        async_api: bool,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> bool:
        if run_manager is not None:  # called from invoke/ainvoke
            return False
        return super()._should_stream(async_api=async_api, **kwargs)

    @override
    def _should_use_protocol_streaming(
        self,
        *,
        async_api: bool,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> bool:
        return False


# -- helpers ------------------------------------------------------------------------------


def keep_retrieved_whole(config: HeadroomConfig | None) -> HeadroomConfig:
    """``config`` with ``headroom_retrieve`` among the tools never compressed.

    What the model retrieved is the original it asked for; compressed again, it would be
    the same cut it already saw (same original, same ref), and the model could never get
    past it. Fitting still applies to it like to any message.
    """
    config = config or HeadroomConfig()
    crusher = config.smart_crusher
    if RETRIEVE_TOOL_NAME in crusher.never_compress_tools:
        return config
    skip = (*crusher.never_compress_tools, RETRIEVE_TOOL_NAME)
    return config.model_copy(
        update={"smart_crusher": crusher.model_copy(update={"never_compress_tools": skip})}
    )


def _chat_model(llm: Runnable[Any, Any]) -> BaseChatModel | None:
    """The chat model under any ``bind``/``bind_tools`` bindings, if there is one."""
    while isinstance(llm, RunnableBinding):
        llm = llm.bound
    return llm if isinstance(llm, BaseChatModel) else None


def _parent_of(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> _Parent | None:
    if run_manager is None:
        return None
    return _Parent(
        run_manager.run_id,
        list(run_manager.inheritable_handlers),
        list(run_manager.inheritable_tags),
        dict(run_manager.inheritable_metadata),
    )


def _child_config(
    parent: _Parent | None, manager_cls: type[CallbackManager] | type[AsyncCallbackManager]
) -> RunnableConfig:
    """The config that makes a call a child of the wrapper's run (a run manager's
    ``get_child()``, which LLM run managers lack). No parent: the ambient config."""
    if parent is None:
        return {}
    manager = manager_cls(handlers=[], parent_run_id=parent.run_id)
    manager.set_handlers(parent.handlers)
    manager.add_tags(parent.tags)
    manager.add_metadata(parent.metadata)
    return {"callbacks": manager}


def _with_tag(config: RunnableConfig, tag: str) -> RunnableConfig:
    return {**config, "tags": [*config.get("tags", ()), tag]}


def _stop(stop: list[str] | None) -> dict[str, Any]:
    # Passed only when given: a Runnable that is not a chat model may not take `stop`.
    return {"stop": stop} if stop is not None else {}


def _as_chunk(message: Any) -> BaseMessageChunk:
    """A streamed message as a chunk: a model that cannot stream yields one whole AIMessage."""
    if isinstance(message, BaseMessageChunk):
        return message
    if isinstance(message, AIMessage):  # the whole answer: the first and last chunk
        return AIMessageChunk(**message.model_dump(exclude={"type"}), chunk_position="last")
    raise TypeError(
        f"HeadroomChatModel: the wrapped model streamed a {type(message).__name__}, "
        "expected message chunks"
    )

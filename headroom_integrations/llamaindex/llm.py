"""``HeadroomLLM``: a LlamaIndex LLM that compresses the chat messages, then calls yours.

::

    llm = HeadroomLLM(llm=OpenAI(model="gpt-4o"))
    llm.chat(history)                          # the wrapped LLM receives it compressed
    agent = FunctionAgent(tools=[...], llm=llm)    # tool calling goes through

It is a real ``FunctionCallingLLM``, so anything that takes an LLM takes it (query
engines, chat engines, ``FunctionAgent``, ``AgentWorkflow``, structured prediction):

- ``chat``/``achat``/``stream_chat``/``astream_chat``: the messages go through
  ``to_neutral`` -> :func:`headroom_core.compress` -> ``from_neutral`` (CPU-bound work
  off the event loop in the async variants), then to the wrapped LLM's same method; what
  it returns is returned as is (a stream is the wrapped LLM's own generator). Tool calls
  and their results stay paired: the core never splits a tool unit.
- ``complete``/``acomplete``/``stream_complete``/``astream_complete``: passed through
  unchanged. A completion prompt is one string in which the core cannot tell tool output
  from instructions, so nothing is cut (``HeadroomNodePostprocessor`` is the place to
  shrink retrieved context before it is formatted into a prompt).
- Tool calling: ``_prepare_chat_with_tools``, ``_validate_chat_with_tools_response`` and
  ``get_tool_calls_from_response`` are the wrapped LLM's, so its own tool format and
  parsing apply; ``chat_with_tools`` and friends then chat through the wrapper (compressed).
- ``metadata`` is the wrapped LLM's (context window, ``is_chat_model``,
  ``is_function_calling_model``, model name); the prompt settings (``system_prompt``,
  ``messages_to_prompt``, ``completion_to_prompt``, ``query_wrapper_prompt``,
  ``output_parser``, ``pydantic_program_mode``) and the ``callback_manager`` are taken from
  it unless given, so ``predict``/``stream`` format prompts exactly as the wrapped LLM does.

Every compression dispatches a :class:`HeadroomCompressionEvent` on the instrumentation
dispatcher, inside the wrapper's span and right before the wrapped LLM's call, carrying
tokens before and after, the transforms, the model and the mode
(``HeadroomEventHandler`` attaches it to that call's metrics row).

Tool definitions: the ``tools`` a function-calling agent passes with every chat call
(``chat_with_tools`` puts the wrapped LLM's specs there) are counted: their tokens come
off the window and are in the event. ``store``: where lossy cuts keep their originals (a
store or its URL; None: the core's default); hand the agent
:func:`~headroom_integrations.llamaindex.retrieve_tool` with the same store so the model
can read them back. ``tokenizer`` / ``count_tokens`` count exactly with the core's offline
tokenizer (``HeadroomMemory`` uses them). ReAct observations (``Observation: ...`` in the
user role after an ``Action:``) and Python-repr tool results are compressed like any tool
output.

Budget policy (``on_budget``): ``"fit"`` (default) never fails a call for the window (tool
outputs capped, the hardest cut, else sent unfitted with the failure in the event, see
:mod:`headroom_integrations._compress`); ``"raise"`` lets
:class:`~headroom_core.errors.BudgetError` propagate. Any other error inside the
compression sends the messages unchanged, is logged (logger ``"headroom_integrations"``)
and reported in the event's ``failures``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.bridge.pydantic import Field, field_validator, model_validator
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection

from headroom_core.ccr import OriginalStore, resolve_store
from headroom_core.config import HeadroomConfig, Mode
from headroom_core.tokens import get_tokenizer

from .._compress import BudgetPolicy, compress_framework_messages, count_tools
from ._convert import from_neutral, to_neutral

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["HeadroomCompressionEvent", "HeadroomLLM"]

logger = logging.getLogger("headroom_integrations")
dispatcher = get_dispatcher(__name__)

_DEFAULT_MODEL = "gpt-4o"
_UNNAMED = frozenset({"", "unknown"})  # LLMMetadata.model_name when the LLM names none
# Settings taken from the wrapped LLM unless given to the wrapper.
_INHERITED = (
    "callback_manager",
    "system_prompt",
    "messages_to_prompt",
    "completion_to_prompt",
    "query_wrapper_prompt",
    "output_parser",
    "pydantic_program_mode",
)


class HeadroomCompressionEvent(BaseEvent):
    """What one ``HeadroomLLM`` call did to the messages before the wrapped LLM got them.

    ``span_id`` is the wrapper's span (the wrapped LLM's call is its child);
    ``messages`` (left out of ``model_dump``) are the very objects that were sent.
    """

    tokens_before: int = Field(description="Tokens of the messages the wrapper received.")
    tokens_after: int = Field(description="Tokens of the messages sent to the wrapped LLM.")
    tokens_saved: int = Field(description="max(0, tokens_before - tokens_after).")
    transforms_applied: list[str] = Field(default_factory=list)
    model: str = Field(description="Model name used to count tokens.")
    mode: str = Field(description="optimize, audit or off.")
    failures: list[str] = Field(default_factory=list, description="Errors passed through.")
    tools_tokens: int = Field(0, description="Tokens of the tool definitions (counted in both).")
    fallback: str | None = Field(None, description="The budget fallback taken, if any.")
    messages: list[ChatMessage] = Field(default_factory=list, exclude=True, repr=False)

    @classmethod
    def class_name(cls) -> str:
        return "HeadroomCompressionEvent"


class HeadroomLLM(FunctionCallingLLM):
    """An LLM that compresses the chat messages with headroom, then calls ``llm``."""

    llm: LLM = Field(description="The LLM to call (any LlamaIndex LLM).")
    model: str | None = Field(
        default=None,
        description="Model name for token counting and the context window; None: the "
        "wrapped LLM's metadata.model_name, or 'gpt-4o' when it names none.",
    )
    mode: Mode | None = Field(
        default=None, description="optimize, audit or off; None: the config's mode."
    )
    config: HeadroomConfig | None = Field(
        default=None, description="Core settings; None: HeadroomConfig() defaults."
    )
    query: str | None = Field(
        default=None,
        description="Relevance query for every cut; None: each tool output is ranked "
        "against the user turn it served.",
    )
    max_tokens: int | None = Field(
        default=None,
        gt=0,
        description="Window the request must fit; None: the model's context limit.",
    )
    store: Any = Field(
        default=None,
        exclude=True,
        description="Where lossy cuts keep their originals: an OriginalStore or its URL; "
        "None: the core's default store.",
    )
    on_budget: BudgetPolicy = Field(
        default="fit",
        description="fit: never raise for the window; raise: BudgetError propagates.",
    )

    @field_validator("store")
    @classmethod
    def _open_store(cls, value: Any) -> OriginalStore | None:
        return None if value is None else resolve_store(value)

    @model_validator(mode="before")
    @classmethod
    def _inherit_settings(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("llm"), LLM):
            inner = data["llm"]
            data = {**{k: getattr(inner, k) for k in _INHERITED if hasattr(inner, k)}, **data}
        return data

    @classmethod
    def class_name(cls) -> str:
        return "HeadroomLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return self.llm.metadata

    @property
    def counting_model(self) -> str:
        """The model name tokens are counted with."""
        if self.model:
            return self.model
        name = self.llm.metadata.model_name
        return name if name not in _UNNAMED else _DEFAULT_MODEL

    # -- counting -------------------------------------------------------------------

    @property
    def tokenizer(self) -> Callable[[str], list[int]]:
        """Token ids of a text in the counting model's encoding (offline): a
        ``tokenizer_fn`` for LlamaIndex's memories and ``Settings.tokenizer``."""
        return get_tokenizer(self.counting_model).encode

    def count_tokens(
        self, messages: Sequence[ChatMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Exact tokens of a chat request: the messages with the chat framing (tool calls
        included) plus the tool definitions (the wrapped LLM's specs, as ``chat`` gets them)."""
        model = self.counting_model
        return get_tokenizer(model).count_messages(to_neutral(messages)) + count_tools(tools, model)

    # -- compression ----------------------------------------------------------------

    def _compress(
        self, messages: Sequence[ChatMessage], tools: Any = None
    ) -> tuple[list[ChatMessage], HeadroomCompressionEvent]:
        """The messages to send and the event to dispatch. Only BudgetError escapes, and
        only with ``on_budget="raise"``."""
        model = self.counting_model
        mode = self.mode or (self.config.mode if self.config else "optimize")
        done = compress_framework_messages(
            lambda: to_neutral(messages),
            from_neutral,
            model=model,
            query=self.query,
            config=self.config,
            mode=mode,
            max_tokens=self.max_tokens,
            tools_tokens=count_tools(tools if isinstance(tools, (list, tuple)) else None, model),
            store=self.store,
            on_budget=self.on_budget,
        )
        out = list(messages) if done.messages is None else done.messages
        return out, HeadroomCompressionEvent(**done.report(model), messages=list(out))

    def _compressed(
        self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]
    ) -> list[ChatMessage]:
        out, event = self._compress(messages, kwargs.get("tools"))
        dispatcher.event(event)
        return out

    async def _acompressed(
        self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]
    ) -> list[ChatMessage]:
        # Tokenising and parsing large tool outputs is CPU-bound: off the event loop.
        out, event = await asyncio.to_thread(self._compress, messages, kwargs.get("tools"))
        dispatcher.event(event)
        return out

    # -- chat: compressed -----------------------------------------------------------

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self.llm.chat(self._compressed(messages, kwargs), **kwargs)

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self.llm.achat(await self._acompressed(messages, kwargs), **kwargs)

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self.llm.stream_chat(self._compressed(messages, kwargs), **kwargs)

    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        return await self.llm.astream_chat(await self._acompressed(messages, kwargs), **kwargs)

    # -- completion: passed through -------------------------------------------------

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self.llm.complete(prompt, formatted=formatted, **kwargs)

    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return await self.llm.acomplete(prompt, formatted=formatted, **kwargs)

    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        return self.llm.stream_complete(prompt, formatted=formatted, **kwargs)

    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        return await self.llm.astream_complete(prompt, formatted=formatted, **kwargs)

    # -- tool calling: the wrapped LLM's --------------------------------------------

    def _function_calling(self, what: str) -> FunctionCallingLLM:
        if isinstance(self.llm, FunctionCallingLLM):
            return self.llm
        raise NotImplementedError(
            f"HeadroomLLM.{what}: the wrapped {type(self.llm).__name__} is not a FunctionCallingLLM"
        )

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        # The compat entry point passes tool_required only to LLMs whose signature has it.
        return self._function_calling("chat_with_tools")._prepare_chat_with_tools_compat(
            tools,
            user_msg=user_msg,
            chat_history=chat_history,
            verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls,
            tool_required=tool_required,
            **kwargs,
        )

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        return self._function_calling("chat_with_tools")._validate_chat_with_tools_response(
            response, tools, allow_parallel_tool_calls=allow_parallel_tool_calls, **kwargs
        )

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        return self._function_calling("get_tool_calls_from_response").get_tool_calls_from_response(
            response, error_on_no_tool_call=error_on_no_tool_call, **kwargs
        )

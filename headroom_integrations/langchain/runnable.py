"""``HeadroomRunnable``: compress a chat model's input as one step of a LangChain chain.

::

    chain = prompt | HeadroomRunnable(model="gpt-4o") | model

It takes what a chat model takes (a ``PromptValue``, a string, or a list of messages or
message-likes) and returns the list of messages to send instead. Each call is its own
traced run (name ``HeadroomRunnable`` or ``with_config(run_name=...)``) and reports what it
did as the custom event ``"headroom_compression"`` with the data::

    {"tokens_before", "tokens_after", "tokens_saved", "transforms_applied", "model",
     "mode", "failures"}

(plus ``tools_tokens`` and ``fallback``, see :mod:`headroom_integrations._compress`), so
any callback handler's ``on_custom_event`` (``HeadroomCallbackHandler`` for one) sees it;
inside a LangGraph graph the same data is also written to the graph's custom stream, as
``{"headroom_compression": data}`` (``graph.stream(..., stream_mode="custom")``).
``mode="audit"`` (or ``"off"``) returns the messages unchanged and still reports.

``tools``: the tool definitions the model will be bound with (their tokens come off the
window and are counted in the event); ``store``: where lossy cuts keep their originals (a
store or its URL; None: the core's default store).

Failure policy (``on_budget``, see :mod:`headroom_integrations._compress`): ``"fit"``
(default) never raises for the budget: a request that cannot fit is fitted with the
hardest cut, else sent unfitted with the failure reported; ``"raise"`` lets
:class:`~headroom_core.errors.BudgetError` propagate. Any other error inside the
compression leaves the messages as they came and is reported in ``failures``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage, HumanMessage, convert_to_messages
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import run_in_executor
from pydantic import Field, field_validator
from typing_extensions import override

from headroom_core.ccr import OriginalStore, resolve_store
from headroom_core.config import HeadroomConfig, Mode
from headroom_core.messages import Message

from .._compress import BudgetPolicy, compress_framework_messages
from ._convert import from_neutral, to_neutral
from ._tools import count_tool_tokens, write_to_graph_stream

__all__ = ["EVENT_NAME", "HeadroomRunnable"]

logger = logging.getLogger("headroom_integrations")

#: The custom event every call dispatches; the data keys are listed in the module docstring.
EVENT_NAME = "headroom_compression"


class HeadroomRunnable(RunnableSerializable[LanguageModelInput, list[BaseMessage]]):
    """Compress chat-model input with ``headroom_core.compress``; a real LangChain Runnable.

    ``invoke``/``ainvoke``/``batch``/``abatch``/``stream``/``astream``, ``|``,
    ``with_config`` and callbacks all behave as for any Runnable.
    """

    model: str = Field("gpt-4o", description="Model the request is for: tokenizer, window.")
    mode: Mode | None = Field(
        "optimize", description="optimize, audit or off; None: the config's mode."
    )
    config: HeadroomConfig | None = Field(
        None, description="Core settings; None: HeadroomConfig() defaults."
    )
    query: str | None = Field(
        None,
        description="Relevance query for every cut; None: each tool output is ranked "
        "against the user turn it served.",
    )
    max_tokens: int | None = Field(
        None, description="Window the request must fit; None: the model's context limit."
    )
    tools: list[Any] | None = Field(
        None,
        description="Tool definitions the model is bound with (any bind_tools input): "
        "their tokens come off the window.",
    )
    store: Any = Field(
        None,
        exclude=True,
        description="Where lossy cuts keep their originals: an OriginalStore or its URL "
        "(memory://, sqlite:///originals.db); None: the core's default store.",
    )
    on_budget: BudgetPolicy = Field(
        "fit",
        description="fit: never raise for the budget (hardest cut, else sent unfitted and "
        "reported); raise: BudgetError propagates.",
    )

    @field_validator("store")
    @classmethod
    def _open_store(cls, value: Any) -> OriginalStore | None:
        return None if value is None else resolve_store(value)

    @override
    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[BaseMessage]:
        return self._call_with_config(self._run, input, config)

    @override
    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[BaseMessage]:
        return await self._acall_with_config(self._arun, input, config)

    # (input, run_manager, config): the signature _call_with_config passes the run's child
    # config to, so the event is filed under this run.
    def _run(
        self,
        input: LanguageModelInput,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> list[BaseMessage]:
        messages, report = self._compress(_to_messages(input))
        dispatch_custom_event(EVENT_NAME, report, config=config)
        write_to_graph_stream(EVENT_NAME, report)
        return messages

    async def _arun(
        self,
        input: LanguageModelInput,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> list[BaseMessage]:
        # CPU-bound work (tokenising, parsing large tool outputs) goes off the event loop.
        messages, report = await run_in_executor(config, self._compress, _to_messages(input))
        await adispatch_custom_event(EVENT_NAME, report, config=config)
        write_to_graph_stream(EVENT_NAME, report)
        return messages

    def _compress(self, messages: list[BaseMessage]) -> tuple[list[BaseMessage], dict[str, Any]]:
        """The messages to send and the event data. Only BudgetError escapes, and only
        with ``on_budget="raise"``."""
        mode = self.mode or (self.config.mode if self.config else "optimize")
        neutral: list[Message] = []

        def convert() -> list[Message]:
            neutral[:] = to_neutral(messages)
            return neutral

        done = compress_framework_messages(
            convert,
            lambda out: _rebuild(out, neutral, messages),
            model=self.model,
            query=self.query,
            config=self.config,
            mode=mode,
            max_tokens=self.max_tokens,
            tools_tokens=count_tool_tokens(self.tools, self.model),
            store=self.store,
            on_budget=self.on_budget,
        )
        sent = messages if done.messages is None else done.messages
        return sent, done.report(self.model)


def _to_messages(input: LanguageModelInput) -> list[BaseMessage]:
    """A chat model's input as messages, the way ``BaseChatModel`` reads it."""
    if isinstance(input, PromptValue):
        return input.to_messages()
    if isinstance(input, str):
        return [HumanMessage(content=input)]
    if isinstance(input, Sequence):
        return convert_to_messages(input)
    raise TypeError(
        f"HeadroomRunnable: invalid input type {type(input).__name__}; expected a "
        "PromptValue, a str, or a list of messages"
    )


def _rebuild(
    compressed: Sequence[dict[str, Any]],
    neutral: Sequence[dict[str, Any]],
    originals: Sequence[BaseMessage],
) -> list[BaseMessage]:
    """LangChain messages for the core's output: the original object where the core passed
    a message through untouched (same dict), a rebuilt one where it changed or added one."""
    unchanged = {id(d): m for d, m in zip(neutral, originals, strict=True)}
    out = []
    for d in compressed:
        original = unchanged.get(id(d))
        out.append(original if original is not None else from_neutral([d])[0])
    return out

"""``HeadroomMemory``: a LlamaIndex chat memory that stores tool results compressed and
counts tokens exactly.

LlamaIndex agents (``FunctionAgent``, ``ReActAgent``, ``AgentWorkflow``) read their history
from a memory before every turn; the default ``ChatMemoryBuffer`` keeps the newest
messages within ``token_limit`` (75% of the LLM's window) by its own rough count of the
raw history, and drops whole older turns to get there, before ``HeadroomLLM`` ever sees
them: one 2,000-line log in a turn and the whole previous turn is gone, although it would
fit once compressed. ``HeadroomMemory`` is a ``ChatMemoryBuffer`` that

- compresses every tool result as it is stored (``compress_tool_results=True``): the
  core's compressors with the user turn it served as the relevance query, lossy cuts
  retrievable by their ref in ``store`` (give the agent
  :func:`~headroom_integrations.llamaindex.retrieve_tool` with the same store), so the
  memory holds, and counts, what the model is sent;
- counts with the core's exact offline tokenizer for ``model`` (tool calls and the chat
  framing included), not a GPT-2 approximation of the raw text;
- by default keeps everything (``token_limit`` unset): fitting the request into the
  window is ``HeadroomLLM``'s job, where every cut stays retrievable; a ``token_limit``
  you set is honoured with the exact counts.

::

    llm = HeadroomLLM(llm=OpenAI(model="gpt-4o"), store="sqlite:///originals.db")
    memory = HeadroomMemory.from_defaults(llm=llm)
    agent = FunctionAgent(tools=[*tools, retrieve_tool(llm.store)], llm=llm)
    await agent.run("...", memory=memory)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.bridge.pydantic import Field, field_validator
from llama_index.core.llms.llm import LLM
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.storage.chat_store import BaseChatStore, SimpleChatStore

from headroom_core.boundary import fail_open
from headroom_core.ccr import OriginalStore, resolve_store, use_store
from headroom_core.config import HeadroomConfig
from headroom_core.pipeline import compress
from headroom_core.tokens import get_tokenizer

from .._compress import compressors_only
from ._convert import from_neutral, to_neutral
from .llm import HeadroomLLM

__all__ = ["UNLIMITED", "HeadroomMemory"]

#: ``token_limit`` when none is given: the memory keeps everything (the LLM wrapper fits).
UNLIMITED = 10**12


def _encoder(model: str) -> Callable[[str], list[int]]:
    return get_tokenizer(model).encode


class HeadroomMemory(ChatMemoryBuffer):
    """A ``ChatMemoryBuffer`` that stores tool results compressed and counts exactly."""

    model: str = Field(default="gpt-4o", description="Model name for counting and compression.")
    compress_tool_results: bool = Field(
        default=True, description="Compress each tool result as it is stored."
    )
    config: HeadroomConfig | None = Field(
        default=None, description="Core settings for the compressors; None: the defaults."
    )
    store: Any = Field(
        default=None,
        exclude=True,
        description="Where lossy cuts keep their originals: an OriginalStore or its URL; "
        "None: the core's default store.",
    )

    @field_validator("store")
    @classmethod
    def _open_store(cls, value: Any) -> OriginalStore | None:
        return None if value is None else resolve_store(value)

    @classmethod
    def class_name(cls) -> str:
        return "HeadroomMemory"

    @classmethod
    def from_defaults(  # type: ignore[override]
        cls,
        chat_history: list[ChatMessage] | None = None,
        llm: LLM | None = None,
        chat_store: BaseChatStore | None = None,
        chat_store_key: str = "chat_history",
        token_limit: int | None = None,
        tokenizer_fn: Callable[[str], list[Any]] | None = None,
        *,
        model: str | None = None,
        compress_tool_results: bool = True,
        config: HeadroomConfig | None = None,
        store: OriginalStore | str | None = None,
    ) -> HeadroomMemory:
        """A memory for ``llm`` (a ``HeadroomLLM`` lends its counting model, config and
        store). ``token_limit`` None keeps everything (the LLM wrapper fits the request)."""
        if isinstance(llm, HeadroomLLM):
            model = model or llm.counting_model
            config = config or llm.config
            store = store if store is not None else llm.store
        model = model or "gpt-4o"
        chat_store = chat_store or SimpleChatStore()
        memory = cls(
            token_limit=token_limit or UNLIMITED,
            tokenizer_fn=tokenizer_fn or _encoder(model),
            chat_store=chat_store,
            chat_store_key=chat_store_key,
            model=model,
            compress_tool_results=compress_tool_results,
            config=config,
            store=store,
        )
        if chat_history is not None:
            memory.set(chat_history)
        return memory

    # -- counting ---------------------------------------------------------------------

    def _token_count_for_messages(self, messages: list[ChatMessage]) -> int:
        """Exact tokens of ``messages`` for ``model``: text, tool calls, chat framing."""
        if not messages:
            return 0
        return get_tokenizer(self.model).count_messages(to_neutral(messages))

    # -- storing ----------------------------------------------------------------------

    def put(self, message: ChatMessage) -> None:
        super().put(self._stored(message))

    async def aput(self, message: ChatMessage) -> None:
        stored = await asyncio.to_thread(self._stored, message)
        await super().aput(stored)

    def set(self, messages: list[ChatMessage]) -> None:
        super().set(self._compressed(messages))

    async def aset(self, messages: list[ChatMessage]) -> None:
        stored = await asyncio.to_thread(self._compressed, messages)
        await super().aset(stored)

    def _stored(self, message: ChatMessage) -> ChatMessage:
        """``message`` as it is kept: a tool result compressed in the context it came in
        (the user turn it served, the call it answers)."""
        if not self.compress_tool_results or message.role != MessageRole.TOOL:
            return message
        history = self.get_all()
        context = _context_for(history, message)
        return self._compressed([*context, message])[-1]

    def _compressed(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        """``messages`` with their tool results compressed (compressors only: nothing is
        dropped or fitted here); on any failure, as they came (logged)."""
        if not self.compress_tool_results or not any(m.role == MessageRole.TOOL for m in messages):
            return list(messages)
        settings = compressors_only(self.config or HeadroomConfig())
        out = list(messages)
        with fail_open("HeadroomMemory"):
            with use_store(self.store):
                result = compress(to_neutral(messages), model=self.model, config=settings)
            out = from_neutral(result.messages)
        return out


def _context_for(history: Sequence[ChatMessage], result: ChatMessage) -> list[ChatMessage]:
    """The last user message and the assistant message that made the call ``result``
    answers (when found in ``history``), in order."""
    call_id = result.additional_kwargs.get("tool_call_id")
    user = next((m for m in reversed(history) if m.role == MessageRole.USER), None)
    caller = None
    for m in reversed(history):
        if m.role == MessageRole.ASSISTANT and call_id is not None:
            neutral = to_neutral([m])[0]
            ids = {c.get("id") for c in neutral.get("tool_calls") or ()}
            if call_id in ids:
                caller = m
                break
    return [m for m in (user, caller) if m is not None]

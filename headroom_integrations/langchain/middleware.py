"""``HeadroomMiddleware``: compress what a ``langchain.agents.create_agent`` agent sends.

::

    agent = create_agent(model, tools=[...], middleware=[HeadroomMiddleware()])

Each model call (``wrap_model_call`` / ``awrap_model_call``) compresses the request's
system message and messages with :class:`~.runnable.HeadroomRunnable` (the engine of every
adapter: same result as ``headroom_core.compress`` on the converted messages, same
``"headroom_compression"`` custom event, same failure policy) and calls the model with an
overridden request. The graph state is never touched: every turn compresses the full,
original history again, so what earlier turns sent is sent again byte for byte (a stable
prefix for the provider's prompt cache) and nothing is lost for later turns.

Every request counts the tool definitions it carries (``request.tools``: the agent's tools
and ``headroom_retrieve``): their tokens come off the window and are in the event.

Budget policy (``on_budget``): ``"fit"`` (default) never fails the agent's turn for the
window: a request that cannot fit is fitted with the hardest cut (the last user turn, every
tool unit droppable behind the fitter's note and its ref), and if even that cannot fit
(the system prompt and the last user turn alone are over the window) it is sent unfitted,
compressed, with a warning logged and the failure in the event; the provider decides.
``"raise"``: :class:`~headroom_core.errors.BudgetError` propagates out of the model call.
Any other compression error sends the request unchanged and is reported in the event's
``failures``.

Options:

- ``retrieval_tool=True``: registers the ``headroom_retrieve`` tool (``self.tools``) in
  ``optimize`` mode (in ``audit`` / ``off`` nothing is cut, so nothing is offered), so
  the model is bound with it and can read back what a cut left out, by the ref in the
  marker. It reads ``store``, where this middleware keeps the originals, and answers in
  pages capped to a quarter of the window left after the output buffer (at most 8,000
  tokens). Its results are never compressed (``smart_crusher.never_compress_tools`` gets
  the name): compressed again, a retrieved original would be the very cut the model tried
  to undo.
- ``store``: where lossy cuts keep their originals, a store or its URL
  (``"sqlite:///originals.db"`` survives restarts); None: the core's default store (in
  memory unless ``set_default_store`` says otherwise).
- ``compress_tool_results=False``: when True, ``wrap_tool_call`` / ``awrap_tool_call``
  also compress each tool result as it arrives, and THAT compressed result is what the
  tool node writes into the graph state (the original stays retrievable by its ref, not
  in the state). Use it when the state itself must stay small (checkpointers, long
  threads) and when other middleware counts the state: ``SummarizationMiddleware``
  then counts what the model is sent, not the raw outputs. Context fitting is left to
  the model call, so a result is never dropped here.

With other middleware (the first in the list wraps the others): put
``HeadroomMiddleware`` before ``ContextEditingMiddleware``, so the edits are decided on
the compressed request (placed after, tool outputs that would fit once compressed are
cleared first). ``SummarizationMiddleware`` runs before each model call on the state, so
what it counts is what ``compress_tool_results=True`` leaves there; give it
``token_counter=model.get_num_tokens_from_messages`` of a ``HeadroomChatModel`` (or
:func:`headroom_integrations.langchain.token_counter`) for exact counts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ContextT,
    ModelRequest,
    ModelResponse,
    ResponseT,
)
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command
from typing_extensions import override

from headroom_core.ccr import OriginalStore, resolve_store
from headroom_core.config import HeadroomConfig, Mode

from .._compress import BudgetPolicy, compressors_only, retrieve_cap
from .chat_model import keep_retrieved_whole
from .retrieve_tool import make_retrieve_tool
from .runnable import HeadroomRunnable

__all__ = ["HeadroomMiddleware"]

ModelHandler = Callable[[ModelRequest[ContextT]], ModelResponse[ResponseT]]
AsyncModelHandler = Callable[[ModelRequest[ContextT]], Awaitable[ModelResponse[ResponseT]]]
ToolResult = ToolMessage | Command[Any]


class HeadroomMiddleware(AgentMiddleware[AgentState[ResponseT], ContextT, ResponseT]):
    """Agent middleware that compresses every model request, never the state."""

    tools: Sequence[BaseTool]

    def __init__(
        self,
        *,
        model: str = "gpt-4o",
        mode: Mode | None = None,
        config: HeadroomConfig | None = None,
        max_tokens: int | None = None,
        compress_tool_results: bool = False,
        retrieval_tool: bool = True,
        store: OriginalStore | str | None = None,
        on_budget: BudgetPolicy = "fit",
    ) -> None:
        """
        Args:
            model: Model name for token counting and the context window.
            mode: ``optimize``, ``audit`` or ``off``; None: the config's mode.
            config: Core settings; None: ``HeadroomConfig()`` defaults.
            max_tokens: Window each request must fit; None: the model's context limit.
            compress_tool_results: Also compress each tool result into the state (see
                the module docstring).
            retrieval_tool: Register the ``headroom_retrieve`` tool (optimize mode only).
            store: Where the originals of lossy cuts are kept (a store or its URL);
                None: the core's default store.
            on_budget: ``"fit"`` (never fail a turn for the window) or ``"raise"``.
        """
        super().__init__()
        self.model = model
        self.mode = mode
        self.config = config
        self.max_tokens = max_tokens
        self.compress_tool_results = compress_tool_results
        self.on_budget = on_budget
        self.store = None if store is None else resolve_store(store)
        settings = keep_retrieved_whole(config)
        cuts = (mode or settings.mode) == "optimize"
        self.tools = (
            [
                make_retrieve_tool(
                    self.store, max_tokens=retrieve_cap(model, config, max_tokens), model=model
                )
            ]
            if retrieval_tool and cuts
            else []
        )
        self._settings = settings
        # A tool result alone: the compressors only. Fitting is the model call's job, and
        # the system prompt is not part of what is compressed here.
        self._results = HeadroomRunnable(
            model=model, mode=mode, config=compressors_only(settings), store=self.store
        )

    def _requests(self, request: ModelRequest[Any]) -> HeadroomRunnable:
        """The compression step for one model request (its tools are counted)."""
        return HeadroomRunnable(
            model=self.model,
            mode=self.mode,
            config=self._settings,
            max_tokens=self.max_tokens,
            tools=list(request.tools),
            store=self.store,
            on_budget=self.on_budget,
        )

    # -- model calls ------------------------------------------------------------------------

    @override
    def wrap_model_call(
        self,
        request: ModelRequest[ContextT],
        handler: ModelHandler[ContextT, ResponseT],
    ) -> ModelResponse[ResponseT]:
        sent = _sent(request)
        return handler(_override(request, sent, self._requests(request).invoke(sent)))

    @override
    async def awrap_model_call(
        self,
        request: ModelRequest[ContextT],
        handler: AsyncModelHandler[ContextT, ResponseT],
    ) -> ModelResponse[ResponseT]:
        sent = _sent(request)
        compressed = await self._requests(request).ainvoke(sent)
        return await handler(_override(request, sent, compressed))

    # -- tool calls -------------------------------------------------------------------------

    @override
    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolResult],
    ) -> ToolResult:
        result = handler(request)
        if not self.compress_tool_results or not isinstance(result, ToolMessage):
            return result
        return _with_content(result, self._results.invoke(_tool_context(request, result)))

    @override
    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        result = await handler(request)
        if not self.compress_tool_results or not isinstance(result, ToolMessage):
            return result
        compressed = await self._results.ainvoke(_tool_context(request, result))
        return _with_content(result, compressed)


# -- helpers ------------------------------------------------------------------------------


def _sent(request: ModelRequest[Any]) -> list[BaseMessage]:
    """What the agent sends the model: the system message (carried apart), then the rest."""
    head = [request.system_message] if request.system_message is not None else []
    return [*head, *request.messages]


def _override(
    request: ModelRequest[ContextT], sent: list[BaseMessage], compressed: list[BaseMessage]
) -> ModelRequest[ContextT]:
    """The request to send instead; the system message goes back where the agent keeps it."""
    if len(compressed) == len(sent) and all(a is b for a, b in zip(compressed, sent, strict=True)):
        return request
    if (
        request.system_message is not None
        and compressed
        and isinstance(compressed[0], SystemMessage)
    ):
        rest = cast("list[AnyMessage]", compressed[1:])
        return request.override(system_message=compressed[0], messages=rest)
    return request.override(system_message=None, messages=cast("list[AnyMessage]", compressed))


def _tool_context(request: ToolCallRequest, result: ToolMessage) -> list[BaseMessage]:
    """The result in the smallest valid request: the user turn it serves (the relevance
    query, as in the full history), the call, the result."""
    state = request.state
    history = state.get("messages", ()) if isinstance(state, Mapping) else ()
    user = next((m for m in reversed(history) if isinstance(m, HumanMessage)), None)
    call = AIMessage(content="", tool_calls=[{**request.tool_call, "id": result.tool_call_id}])
    return [*([user] if user is not None else []), call, result]


def _with_content(result: ToolMessage, compressed: list[BaseMessage]) -> ToolMessage:
    last = compressed[-1] if compressed else None
    if last is result or not isinstance(last, ToolMessage) or last.content == result.content:
        return result
    return result.model_copy(update={"content": last.content})

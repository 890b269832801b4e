"""Turn a compaction :class:`~._compaction.Plan` into the messages to send.

* a collapsed output becomes a one-line pointer naming why it is stale and its ref;
* a capped output is cut to its cap: by the router's compressor for its content type with
  ``ContentContext.budget_tokens`` set, and, when that returns nothing or more than the
  cap, by :func:`~._cut.cut_lines` (errors, question terms, head and tail);
* dropped messages go behind one system note after the system prompt.

Every original is put in the store of originals under its ref (the exact text the caller
gave), so ``headroom_retrieve`` returns it. Cuts of the same text to the same cap are
memoised: a history is re-planned on every call and must render the same bytes fast.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..ccr import ref_for
from ..messages import Message, content_text, tool_name_for
from ._compaction import Plan, dropped_tool_units
from ._content import ContentContext
from ._cut import cut_lines
from ._fit import marker_message

if TYPE_CHECKING:
    from ..ccr import OriginalStore
    from ..config import SmartCrusherConfig
    from ..tokens import Tokenizer
    from ._supersede import Stale

_CUTS: OrderedDict[tuple[str, int, str | None, str | None], str] = OrderedDict()
_CUTS_MAX = 512
_lock = threading.Lock()
_SUBJECT_CHARS = 80


class Renderer:
    """Renders plans of one history (pointer texts are shared with the planner's counts)."""

    def __init__(
        self,
        messages: Sequence[Message],
        originals: Sequence[Message],
        tokenizer: Tokenizer,
        store: OriginalStore,
        config: SmartCrusherConfig,
        query_for: Callable[[int], str | None],
    ) -> None:
        self.msgs = list(messages)
        self.orig = list(originals) if len(originals) == len(messages) else self.msgs
        self.tok = tokenizer
        self.store = store
        self.config = config
        self.query_for = query_for
        self._texts: dict[int, str] = {}

    def original_text(self, i: int) -> str:
        if i not in self._texts:
            self._texts[i] = content_text(self.orig[i])
        return self._texts[i]

    def pointer_text(self, stale: Stale, ref: str | None = None) -> str:
        subject = stale.subject.split(":", 1)[-1] if ":" in stale.subject else stale.subject
        subject = " ".join(subject.split())
        if len(subject) > _SUBJECT_CHARS:
            subject = subject[: _SUBJECT_CHARS - 3] + "..."
        ref = ref or ref_for(self.original_text(stale.index))
        return (
            f"[headroom: superseded output ({subject}): {stale.reason}; the headroom_retrieve "
            f"tool returns it with ref={ref}]"
        )

    def pointer_tokens(self, stale: Stale) -> int:
        return self.tok.count_text(self.pointer_text(stale))

    def render(self, plan: Plan) -> list[Message]:
        msgs = self.msgs
        head = 0
        while head < len(msgs) and head not in plan.dropped and _leading_system(msgs, head):
            head += 1
        out = list(msgs[:head])
        if plan.dropped:
            gone = [self.orig[i] for i in sorted(plan.dropped)]
            out.append(marker_message(gone, self.store, dropped_tool_units(msgs, plan.dropped)))
        for i in range(head, len(msgs)):
            if i in plan.dropped:
                continue
            stale = plan.collapsed.get(i)
            cap = plan.caps.get(i)
            if stale is not None:
                ref = self.store.put(
                    self.original_text(i), tool=tool_name_for(msgs, i), kind="text"
                )
                out.append({**msgs[i], "content": self.pointer_text(stale, ref)})
            elif cap is not None and self.tok.count_text(content_text(msgs[i])) > cap:
                out.append({**msgs[i], "content": self.cut(i, cap)})
            else:
                out.append(msgs[i])
        return out

    def cut(self, i: int, cap: int) -> str:
        """Output ``i`` (as the caller gave it) cut to at most ``cap`` tokens."""
        text = self.original_text(i)
        tool = tool_name_for(self.msgs, i)
        query = self.query_for(i)
        key = (ref_for(text), cap, query, tool)
        with _lock:
            hit = _CUTS.get(key)
            if hit is not None:
                _CUTS.move_to_end(key)
        if hit is not None:
            self.store.put(text, tool=tool, kind="text")  # a fresh store still gets the ref
            return hit
        ctx = ContentContext(self.tok.count_text, self.config, self.store, query, tool, cap)
        new = _routed(text, ctx)
        if new is None or self.tok.count_text(new) > cap:
            new = cut_lines(text, cap, ctx).text
        with _lock:
            _CUTS[key] = new
            while len(_CUTS) > _CUTS_MAX:
                _CUTS.popitem(last=False)
        return new


def _leading_system(msgs: Sequence[Message], i: int) -> bool:
    return all(m.get("role") in ("system", "developer") for m in msgs[: i + 1])


def _routed(text: str, ctx: ContentContext) -> str | None:
    """The router's compressor for this content, asked to stay within the budget."""
    from .router import ToolOutputRouter

    router = _router(ctx.config)
    result = router.compress_text(text, ctx) if isinstance(router, ToolOutputRouter) else None
    return None if result is None else result[1]


_routers: dict[int, object] = {}


def _router(config: SmartCrusherConfig) -> object:
    from .router import ToolOutputRouter

    key = id(config)
    router = _routers.get(key)
    if router is None or getattr(router, "config", None) is not config:
        router = ToolOutputRouter(config)
        _routers.clear()
        _routers[key] = router
    return router


__all__ = ["Renderer"]

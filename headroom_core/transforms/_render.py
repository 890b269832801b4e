"""Turn a compaction :class:`~._compaction.Plan` into the messages to send.

* a collapsed output becomes a one-line pointer naming why it is stale and its ref;
* a capped output is cut to its cap by :func:`~.router.fit_text` (the compressor for its
  content type with a hard budget, else the generic cut: errors, query matches, head and
  tail kept, the rest behind a ref);
* a run of dropped messages is named by its host call's result (the run's smallest tool
  call, kept as it was), or, for a run without a tool call, by one system note after the
  system prompt (see :mod:`._fitting`).

Every original is put in the store of originals under its ref (the exact text the caller
gave), so ``headroom_retrieve`` returns it. Cuts of the same text to the same cap are
memoised: a history is re-planned on every call and must render the same bytes fast.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import orjson

from ..ccr import ref_for
from ..messages import Message, content_text, tool_name_for
from ._compaction import dropped_tool_units
from ._fit import marker_message
from ._fitting import Region, extra_note, hosted_note, regions
from ._plan import Plan

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

    def render(self, plan: Plan, base: Sequence[int]) -> list[Message]:
        """The messages ``plan`` shows; ``base``: the planner's token count per message
        (which host a run of dropped messages gets depends on it)."""
        msgs = self.msgs
        head = 0
        while head < len(msgs) and head not in plan.dropped and _leading_system(msgs, head):
            head += 1
        runs = regions(msgs, plan.runs, base, plan.hosted)
        loose = sorted(i for r in runs if r.host is None for i in r.indices)
        out = list(msgs[:head])
        if loose:
            gone = [self.orig[i] for i in loose]
            out.append(marker_message(gone, self.store, dropped_tool_units(msgs, set(loose))))
        hosted = {r.host.call_index: r for r in runs if r.host is not None}
        for i in range(head, len(msgs)):
            run = hosted.get(i)
            if run is not None:
                out += self._hosted(run)
            elif i not in plan.dropped:
                out.append(self._shown(plan, i))
        return out

    def _shown(self, plan: Plan, i: int) -> Message:
        msg = self.msgs[i]
        stale = plan.collapsed.get(i)
        cap = plan.caps.get(i)
        if stale is not None:
            ref = self.store.put(
                self.original_text(i), tool=tool_name_for(self.msgs, i), kind="text"
            )
            return {**msg, "content": self.pointer_text(stale, ref)}
        if cap is not None and self.tok.count_text(content_text(msg)) > cap:
            return {**msg, "content": self.cut(i, cap)}
        return msg

    def _hosted(self, run: Region) -> list[Message]:
        """The host call as it was, its results standing for the whole run."""
        host = run.host
        assert host is not None  # noqa: S101 - only hosted runs come here
        gone = [self.orig[i] for i in run.indices]
        public = [{k: v for k, v in m.items() if not k.startswith("_")} for m in gone]
        ref = self.store.put(orjson.dumps(public, default=str).decode(), kind="messages")
        note = hosted_note(len(run.indices), dropped_tool_units(self.msgs, set(run.indices)), ref)
        out = [self.msgs[host.call_index]]
        for k, r in enumerate(host.result_indices):
            text = note if k == 0 else extra_note(ref)
            out.append({**self.msgs[r], "content": text})
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
        from .router import fit_text

        routed = fit_text(
            text,
            cap,
            count=self.tok.count_text,
            query=query,
            tool_name=tool,
            config=self.config,
            store=self.store,
        )
        new = routed.text
        if not routed.fits or self.tok.count_text(new) > cap:  # a cap under one marker line
            ref = self.store.put(text, tool=tool, kind="text")
            new = f"[headroom: output cut to fit the context window; ref={ref}]"
        with _lock:
            _CUTS[key] = new
            while len(_CUTS) > _CUTS_MAX:
                _CUTS.popitem(last=False)
        return new


def _leading_system(msgs: Sequence[Message], i: int) -> bool:
    return all(m.get("role") in ("system", "developer") for m in msgs[: i + 1])


__all__ = ["Renderer"]

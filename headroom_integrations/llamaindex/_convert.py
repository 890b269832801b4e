"""LlamaIndex chat messages <-> the core's neutral messages (OpenAI chat dicts), without loss.

``to_neutral`` gives the core what an OpenAI-style request would carry for each
``ChatMessage``:

- ``role``: the message's role; ``chatbot`` and ``model`` (Cohere's and Gemini's assistant)
  are sent as ``assistant``.
- ``content``: ``None`` without content blocks, the text of a single ``TextBlock``, else a
  list of parts, one per block: ``{"type": "text", "text": ...}`` for text (the only parts
  the core may rewrite, and only in tool messages), ``{"type": "image_url", ...}`` for an
  image (counted as an image, its bytes never copied), ``{"type": "thinking", ...}``,
  ``{"type": "citable"|"citation", "text": ...}`` (counted, never rewritten) and a
  ``{"type": <block_type>}`` marker for audio, video, documents and cache points.
- ``tool_calls`` on assistant messages, in OpenAI form (``function.arguments`` as JSON
  text), read from ``additional_kwargs["tool_calls"]`` (what LlamaIndex's OpenAI-style LLMs
  keep there: the SDK's tool-call objects or their dicts; Anthropic-style
  ``{"id", "name", "input"}`` dicts too) and from ``ToolCallBlock`` blocks, once per id.
- ``tool_call_id`` (tool messages) and ``name`` from ``additional_kwargs``.

Everything else rides along under ONE private key, ``"_li"``, whose value is a dict (never a
string, so the token counter skips it, and the context fitter leaves private keys out of
what it stores for retrieval)::

    {"message": <the original ChatMessage>, "role": ..., "content": ..., "fields": ...,
     "tool_calls": ...}

(the last four: what ``to_neutral`` emitted, to tell what the core changed).

``from_neutral`` returns the original message itself when the core left its dict as it
was, and otherwise a copy with the changed fields applied: a rewritten text part becomes a
``TextBlock`` with the new text, every other block comes back as the same object, in place.
A dict without ``"_li"`` (the core's own fitting note, or anything written by hand) becomes
a plain ``ChatMessage`` of its role.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from llama_index.core.base.llms.types import (
    AudioBlock,
    CachePoint,
    ChatMessage,
    CitableBlock,
    CitationBlock,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    VideoBlock,
)

__all__ = ["LI_KEY", "from_neutral", "to_neutral"]

#: The one private key of a neutral dict that holds the LlamaIndex-only state.
LI_KEY = "_li"

# LlamaIndex roles the core has no name for, sent as the role they play.
_CORE_ROLE = {MessageRole.CHATBOT: "assistant", MessageRole.MODEL: "assistant"}
_STRING_KWARGS = ("name", "tool_call_id")  # additional_kwargs an OpenAI request carries


# --- to the core -----------------------------------------------------------------------------


def to_neutral(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """The neutral (OpenAI chat) form of LlamaIndex chat messages, one dict per message.

    The input is not mutated; values are shared, not copied. Raises ``TypeError`` for
    anything that is not a ``ChatMessage``.
    """
    return [_message_to_neutral(m, i) for i, m in enumerate(messages)]


def _message_to_neutral(message: ChatMessage, index: int) -> dict[str, Any]:
    if not isinstance(message, ChatMessage):
        raise TypeError(
            f"to_neutral: messages[{index}] must be a llama_index ChatMessage, got "
            f"{type(message).__name__}"
        )
    role = _CORE_ROLE.get(message.role, message.role.value)
    content = _content(message.blocks)
    out: dict[str, Any] = {"role": role, "content": content}
    fields = _string_fields(message, role)
    out.update(fields)
    calls = _tool_calls(message) if role == "assistant" else []
    if calls:
        out["tool_calls"] = calls
    out[LI_KEY] = {
        "message": message,
        "role": role,
        "content": content,
        "fields": fields,
        "tool_calls": calls or None,
    }
    return out


def _string_fields(message: ChatMessage, role: str) -> dict[str, str]:
    """``name`` and, on a tool message, ``tool_call_id``, as an OpenAI request sends them."""
    kwargs = message.additional_kwargs
    fields = {}
    name = kwargs.get("name")
    if isinstance(name, str):
        fields["name"] = name
    call_id = kwargs.get("tool_call_id")
    if role == "tool" and isinstance(call_id, str):
        fields["tool_call_id"] = call_id
    return fields


def _visible(blocks: Sequence[Any]) -> list[Any]:
    """The blocks that make up the content (tool calls are sent as ``tool_calls``)."""
    return [b for b in blocks if not isinstance(b, ToolCallBlock)]


def _content(blocks: Sequence[Any]) -> str | list[dict[str, Any]] | None:
    visible = _visible(blocks)
    if not visible:
        return None
    if len(visible) == 1 and isinstance(visible[0], TextBlock):
        return visible[0].text
    return [_part(b) for b in visible]


def _part(block: Any) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageBlock):
        url = block.url or block.path or ""
        image: dict[str, Any] = {"url": str(url)}
        if block.detail:
            image["detail"] = block.detail
        return {"type": "image_url", "image_url": image}
    if isinstance(block, ThinkingBlock):
        return {"type": "thinking", "thinking": block.content or ""}
    if isinstance(block, CitableBlock):
        texts = [c.text for c in block.content if isinstance(c, TextBlock)]
        return {"type": "citable", "title": block.title, "text": "\n".join(texts)}
    if isinstance(block, CitationBlock):
        cited = block.cited_content
        return {"type": "citation", "text": cited.text if isinstance(cited, TextBlock) else ""}
    if isinstance(block, DocumentBlock):
        return {"type": "document", "title": block.title or ""}
    if isinstance(block, (AudioBlock, VideoBlock, CachePoint)):
        return {"type": block.block_type}
    return {"type": str(getattr(block, "block_type", type(block).__name__))}


def _tool_calls(message: ChatMessage) -> list[dict[str, Any]]:
    """OpenAI-form tool calls from ``additional_kwargs["tool_calls"]``, then from the
    ``ToolCallBlock`` blocks whose id was not among them."""
    calls: list[dict[str, Any]] = []
    for raw in message.additional_kwargs.get("tool_calls") or ():
        call = _openai_call(raw)
        if call is not None:
            calls.append(call)
    seen = {c["id"] for c in calls}
    for block in message.blocks:
        if isinstance(block, ToolCallBlock) and (block.tool_call_id or "") not in seen:
            calls.append(
                {
                    "id": block.tool_call_id or "",
                    "type": "function",
                    "function": {"name": block.tool_name, "arguments": _dumps(block.tool_kwargs)},
                }
            )
    return calls


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _openai_call(raw: Any) -> dict[str, Any] | None:
    """One stored tool call (OpenAI SDK object or dict, or Anthropic-style dict) in OpenAI
    form; None for something that is not a tool call."""
    fn = _get(raw, "function")
    if fn is not None:
        name, args = _get(fn, "name"), _get(fn, "arguments")
    elif _get(raw, "name") is not None:  # {"id", "name", "input"}: a tool_use block
        name, args = _get(raw, "name"), _get(raw, "input")
    else:
        return None
    call_id = _get(raw, "id")
    return {
        "id": "" if call_id is None else str(call_id),
        "type": "function",
        "function": {"name": str(name or ""), "arguments": _dumps(args)},
    }


def _dumps(args: Any) -> str:
    if isinstance(args, str):
        return args
    return json.dumps({} if args is None else args, ensure_ascii=False, default=str)


# --- back from the core ----------------------------------------------------------------------


def from_neutral(messages: Iterable[Mapping[str, Any]]) -> list[ChatMessage]:
    """LlamaIndex chat messages from neutral dicts: the inverse of :func:`to_neutral`.

    ``from_neutral(to_neutral(m)) == m`` for every message (the very objects come back). A
    dict whose ``content``, ``name``, ``tool_call_id``, ``tool_calls`` or ``role`` was
    changed comes back as a copy with the new value and every other field as before.
    """
    return [_message_from_neutral(d) for d in messages]


def _message_from_neutral(d: Mapping[str, Any]) -> ChatMessage:
    li = d.get(LI_KEY)
    original = li.get("message") if isinstance(li, Mapping) else None
    if not isinstance(original, ChatMessage):
        return _plain(d)
    li = cast("Mapping[str, Any]", li)
    update: dict[str, Any] = {}
    if d.get("role") != li["role"]:
        update["role"] = _role(d.get("role"))
    blocks = original.blocks
    content = d.get("content")
    if not _same(content, li["content"]):
        blocks = _with_content(blocks, content, li["content"])
    calls = d.get("tool_calls") or None
    calls_changed = not _same(calls, li["tool_calls"])
    if calls_changed:
        blocks = [b for b in blocks if not isinstance(b, ToolCallBlock)]
        blocks += [_call_block(c) for c in calls or ()]
    if blocks is not original.blocks:
        update["blocks"] = blocks
    kwargs = _with_kwargs(original.additional_kwargs, d, li["fields"])
    if calls_changed:
        kwargs = {k: v for k, v in kwargs.items() if k != "tool_calls"}
        if calls:
            kwargs["tool_calls"] = [dict(c) for c in calls]
    if kwargs is not original.additional_kwargs:
        update["additional_kwargs"] = kwargs
    return original.model_copy(update=update) if update else original


def _same(a: Any, b: Any) -> bool:
    return a is b or a == b


def _with_content(blocks: list[Any], content: Any, emitted: Any) -> list[Any]:
    """``blocks`` with their content replaced by the neutral ``content``: the same block
    object for every part the core passed through, a TextBlock for a rewritten text part."""
    old = _visible(blocks)
    old_parts = emitted if isinstance(emitted, list) else [None] * len(old)
    new = _blocks(content, list(zip(old_parts, old, strict=True)))
    if len(new) == len(old):  # in place: tool-call blocks keep their positions
        it = iter(new)
        return [b if isinstance(b, ToolCallBlock) else next(it) for b in blocks]
    return new + [b for b in blocks if isinstance(b, ToolCallBlock)]


def _blocks(content: Any, known: Sequence[tuple[Any, Any]] = ()) -> list[Any]:
    """Content blocks for neutral content; ``known`` pairs emitted parts with their blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [TextBlock(text=content)]
    out = []
    for part in content:
        block = next((b for p, b in known if p is part), None)
        if block is None:
            block = next((b for p, b in known if p is not None and p == part), None)
        if block is None:
            block = _block_from_part(part)
        if block is not None:
            out.append(block)
    return out


def _block_from_part(part: Any) -> Any:
    """A block for a part the core wrote or changed; parts it cannot hold are left out."""
    if isinstance(part, str):
        return TextBlock(text=part)
    if not isinstance(part, Mapping):
        return None
    kind = part.get("type")
    if kind == "thinking":
        return ThinkingBlock(content=str(part.get("thinking", "")))
    if kind == "image_url":
        image = part.get("image_url") or {}
        url = image.get("url") if isinstance(image, Mapping) else image
        return ImageBlock(url=str(url), detail=_get(image, "detail")) if url else None
    text = part.get("text")
    return TextBlock(text=text) if isinstance(text, str) else None


def _with_kwargs(
    kwargs: dict[str, Any], d: Mapping[str, Any], fields: Mapping[str, str]
) -> dict[str, Any]:
    """``additional_kwargs`` with the string fields the core changed (``fields``: what
    ``to_neutral`` emitted); the same dict when nothing changed."""
    changed: dict[str, Any] = {}
    removed: list[str] = []
    for key in _STRING_KWARGS:
        new = d.get(key)
        if new == fields.get(key):
            continue
        if new is None:
            removed.append(key)
        else:
            changed[key] = new
    if not changed and not removed:
        return kwargs
    out = {k: v for k, v in kwargs.items() if k not in removed}
    out.update(changed)
    return out


def _call_block(call: Mapping[str, Any]) -> ToolCallBlock:
    fn = call.get("function") or {}
    args = fn.get("arguments", "")
    try:
        parsed = json.loads(args) if isinstance(args, str) else args
    except ValueError:
        parsed = args
    return ToolCallBlock(
        tool_call_id=call.get("id"),
        tool_name=str(fn.get("name", "")),
        tool_kwargs=parsed if isinstance(parsed, (dict, str)) else str(args),
    )


def _role(role: Any) -> MessageRole:
    try:
        return MessageRole(role)
    except ValueError:
        return MessageRole.USER


def _plain(d: Mapping[str, Any]) -> ChatMessage:
    """A ChatMessage for a dict the core wrote (no ``_li``)."""
    kwargs: dict[str, Any] = {k: d[k] for k in _STRING_KWARGS if d.get(k) is not None}
    blocks = _blocks(d.get("content"))
    calls = d.get("tool_calls") or []
    if calls:
        kwargs["tool_calls"] = [dict(c) for c in calls]
        blocks += [_call_block(c) for c in calls]
    return ChatMessage(role=_role(d.get("role")), blocks=blocks, additional_kwargs=kwargs)

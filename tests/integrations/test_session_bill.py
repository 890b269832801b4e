"""Every adapter sees the whole history on every call, so a session replayed through it costs
what the core's requests cost: the same bill under prompt caching, compaction points and all.

One real Claude Code session (../shared/data/conversations_coding_agents), its first
:data:`REQUESTS` model calls, through the LangChain middleware, the LlamaIndex LLM wrapper
and ``HeadroomClient`` (the real ``openai`` SDK against a local server); each compared with
``headroom_core.compress`` on the same requests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from headroom_core import compress
from headroom_core.billing import ANTHROPIC_RATES, OPENAI_RATES, SessionBill, session_bill

SESSION = "spotter__8463c716-a2ea-4c14-9efa-87158ebd9f20__pre-compact"
REQUESTS = 24  # the first compaction points of this session fall inside
MODEL = "gpt-4o"
Messages = list[dict[str, Any]]


def _requests(coding_sessions: list[tuple[str, Messages]]) -> list[Messages]:
    messages = dict(coding_sessions).get(SESSION)
    if messages is None:
        pytest.skip(f"{SESSION} not in the shared data")
    ends = [
        i
        for i in range(1, len(messages))
        if messages[i]["role"] == "assistant" and messages[i - 1]["role"] in ("user", "tool")
    ]
    return [messages[:end] for end in ends[:REQUESTS]]


@pytest.fixture(scope="module")
def replay(coding_sessions: list[tuple[str, Messages]]) -> tuple[list[Messages], SessionBill]:
    requests = _requests(coding_sessions)
    outputs = [compress(r, model=MODEL).messages for r in requests]
    rewritten = [
        k for k in range(1, len(outputs)) if outputs[k][: len(outputs[k - 1])] != outputs[k - 1]
    ]
    assert rewritten, "the replay should cross a compaction point"
    return requests, session_bill(outputs, model=MODEL)


def _same_bill(sent: list[Messages], core: SessionBill) -> None:
    bill = session_bill(sent, model=MODEL)
    assert [r.tokens for r in bill.requests] == [r.tokens for r in core.requests]
    assert [r.cached for r in bill.requests] == [r.cached for r in core.requests]
    for rates in (ANTHROPIC_RATES, OPENAI_RATES):
        assert bill.cost(rates) == pytest.approx(core.cost(rates))


def test_langchain_middleware_bills_as_the_core(replay: tuple[list[Messages], SessionBill]) -> None:
    pytest.importorskip("langchain.agents")
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage

    from headroom_integrations.langchain._convert import from_neutral, to_neutral
    from headroom_integrations.langchain.middleware import HeadroomMiddleware

    from .test_langchain_middleware import ScriptedToolModel

    requests, core = replay
    middleware = HeadroomMiddleware(model=MODEL)
    sent = []
    for request in requests:
        model = ScriptedToolModel(script=[AIMessage("ok")])
        messages = [
            m.model_copy(update={"id": f"m{i}"}) for i, m in enumerate(from_neutral(request))
        ]
        create_agent(model, middleware=[middleware]).invoke({"messages": messages})
        sent.append(to_neutral(model.received[0]))
    _same_bill(sent, core)


def test_llamaindex_llm_bills_as_the_core(replay: tuple[list[Messages], SessionBill]) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.base.llms.types import ChatMessage

    from headroom_integrations.llamaindex._convert import from_neutral, to_neutral
    from headroom_integrations.llamaindex.llm import HeadroomLLM

    from .test_llamaindex_llm import ScriptedLLM

    requests, core = replay
    inner = ScriptedLLM(script=[ChatMessage(role="assistant", content="ok")])
    llm = HeadroomLLM(llm=inner, model=MODEL)
    for request in requests:
        llm.chat(from_neutral(request))
    _same_bill([to_neutral(received) for received in inner.received], core)


def test_headroom_client_bills_as_the_core(
    replay: tuple[list[Messages], SessionBill], tmp_path: Path
) -> None:
    openai = pytest.importorskip("openai")
    from headroom_integrations import HeadroomClient

    from .provider_server import ProviderServer

    requests, core = replay
    with ProviderServer() as srv:
        raw = openai.OpenAI(api_key="test", base_url=srv.openai_base_url, max_retries=0)
        client = HeadroomClient(
            raw, default_mode="optimize", store_url=f"sqlite:///{tmp_path / 'm.db'}"
        )
        for request in requests:
            client.chat.completions.create(model=MODEL, messages=request)
        sent = [json.loads(json.dumps(r.body["messages"])) for r in srv.requests]
    _same_bill(sent, core)

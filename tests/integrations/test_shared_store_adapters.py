"""The adapters take the shared stores' URLs like any other: metrics handlers and the
client write to PostgreSQL, the postprocessor and the retrieve tool keep and read
originals in Redis or PostgreSQL (real throwaway servers, tests/_servers.py)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")
pytest.importorskip("psycopg", reason="needs the postgres extra")
pytest.importorskip("redis", reason="needs the redis extra")

from langchain_core.language_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import HumanMessage  # noqa: E402
from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402

from headroom_core.ccr import open_original_store  # noqa: E402
from headroom_core.metrics import open_store  # noqa: E402
from headroom_integrations.langchain import HeadroomCallbackHandler  # noqa: E402
from headroom_integrations.langchain.retrieve_tool import make_retrieve_tool  # noqa: E402
from headroom_integrations.llamaindex import HeadroomNodePostprocessor  # noqa: E402
from headroom_integrations.llamaindex.postprocessor import REF_KEY  # noqa: E402


def test_langchain_callback_records_into_postgres(pg_url: str) -> None:
    handler = HeadroomCallbackHandler(pg_url)
    model = GenericFakeChatModel(messages=iter(["one", "two"]))
    for question in ("first?", "second?"):
        model.invoke([HumanMessage(question)], config={"callbacks": [handler]})
    assert handler.summary().requests == 2  # read back from PostgreSQL
    handler.close()
    with open_store(pg_url) as store:  # and visible to any other process
        rows = store.get_metrics()
    assert [r.source for r in rows] == ["langchain", "langchain"]
    assert all(r.tokens_input_before > 0 for r in rows)


@pytest.mark.parametrize("kind", ["redis", "postgresql"])
def test_postprocessor_and_retrieve_tool_take_a_store_url(
    request: pytest.FixtureRequest, kind: str
) -> None:
    url = str(request.getfixturevalue("redis_url" if kind == "redis" else "pg_url"))
    long_text = " ".join(
        f"Sentence {i} about the deploy pipeline of service {i}." for i in range(400)
    )
    nodes = [NodeWithScore(node=TextNode(id_="n1", text=long_text), score=0.9)]
    pp = HeadroomNodePostprocessor(token_budget=200, scorer="bm25", store=url)
    (out,) = pp.postprocess_nodes(nodes, query_str="service 7 deploy")
    ref = out.node.metadata[REF_KEY]
    assert len(out.node.get_content()) < len(long_text)
    tool: Any = make_retrieve_tool(url)  # another store object on the same server
    assert tool.invoke({"ref": ref}) == long_text
    with open_original_store(url) as other:
        assert other.get(ref) is not None

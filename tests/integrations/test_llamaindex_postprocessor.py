"""HeadroomNodePostprocessor in real LlamaIndex: VectorStoreIndex, query engines with MockLLM,
MockEmbedding and the bundled MiniLM behind a BaseEmbedding; budgets, cuts, refs, copies."""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import (
    MetadataMode,
    NodeRelationship,
    NodeWithScore,
    RelatedNodeInfo,
    TextNode,
)
from pydantic import ValidationError

import headroom_integrations.llamaindex as hli
from headroom_core.ccr import MemoryOriginalStore
from headroom_core.relevance import BM25Scorer, EmbeddingScorer, embedding_available
from headroom_core.tokens import count_tokens_text
from headroom_integrations.llamaindex import HeadroomNodePostprocessor
from headroom_integrations.llamaindex._plan import REF_PLACEHOLDER, cut_marker, dropped_marker
from headroom_integrations.llamaindex.postprocessor import (
    COMPRESSOR_KEY,
    DROPPED_KEY,
    DUPLICATES_KEY,
    LINKED_KEY,
    REF_KEY,
    RELEVANCE_KEY,
)

HEADROOM_KEYS = {RELEVANCE_KEY, REF_KEY, COMPRESSOR_KEY, DUPLICATES_KEY, DROPPED_KEY, LINKED_KEY}
CUT = re.compile(r"\[headroom: (\d+) chars cut; ref=([0-9a-f]{32})\]")
LEFT_OUT = re.compile(
    r"\[headroom: (\d+) nodes? left out to fit the token budget; ref=([0-9a-f]{32})\]"
)
CONTEXT = re.compile(r"-{21}\n(.*)\n-{21}", re.S)  # LlamaIndex's QA template's context block

needs_minilm = pytest.mark.skipif(
    not embedding_available(), reason='needs the embeddings extra: pip install ".[embeddings]"'
)


class MiniLMEmbedding(BaseEmbedding):
    """LlamaIndex embeddings from the bundled all-MiniLM-L6-v2 (through the core's cache)."""

    _scorer: EmbeddingScorer = PrivateAttr()

    def __init__(self) -> None:
        super().__init__(model_name="all-MiniLM-L6-v2")
        self._scorer = EmbeddingScorer()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._scorer.embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._scorer.embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._scorer.embed(texts)


def tokens(text: str) -> int:
    return count_tokens_text(text, model="gpt-4o")


def context_of(nodes: list[NodeWithScore]) -> str:
    """What a synthesizer puts in the prompt: LLM views joined by blank lines."""
    return "\n\n".join(n.node.get_content(metadata_mode=MetadataMode.LLM) for n in nodes)


def has_answer(text: str, answers: list[str]) -> bool:
    flat = " ".join(text.split()).lower()
    return any(" ".join(a.split()).lower() in flat for a in answers)


# ---- data ------------------------------------------------------------------------------


def load_nq(shared_data: Path, pos: int, n: int) -> list[dict[str, Any]]:
    path = (
        shared_data
        / "qa_lost_in_the_middle"
        / "derived"
        / f"nq_multidoc_20docs_gold_at_{pos}.jsonl"
    )
    if not path.exists():
        pytest.skip(f"{path} not found")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


@pytest.fixture(scope="module")
def nq(shared_data: Path) -> list[dict[str, Any]]:
    """Two questions per gold position (0, 9, 19), 20 passages each."""
    return [row for pos in (0, 9, 19) for row in load_nq(shared_data, pos, 2)]


def nodes_of(row: dict[str, Any], *, scores: bool = True) -> list[NodeWithScore]:
    out = []
    for i, ctx in enumerate(row["ctxs"]):
        node = TextNode(id_=f"p{i}", text=ctx["text"], metadata={"title": ctx["title"]})
        out.append(NodeWithScore(node=node, score=round(1 - i / 40, 3) if scores else None))
    return out


@pytest.fixture
def store() -> MemoryOriginalStore:
    return MemoryOriginalStore()


# ---- a real postprocessor --------------------------------------------------------------


def test_is_a_real_llamaindex_postprocessor() -> None:
    pp = HeadroomNodePostprocessor(token_budget=100, scorer="bm25")
    assert isinstance(pp, BaseNodePostprocessor)
    assert pp.class_name() == "HeadroomNodePostprocessor"
    assert pp.to_dict()["token_budget"] == 100 and pp.to_dict()["scorer"] == "bm25"
    assert "store" not in pp.to_dict()


@pytest.mark.parametrize(
    ("field", "value"),
    [("token_budget", 0), ("order", "newest"), ("scorer", "tfidf"), ("dedupe_threshold", 1.5)],
)
def test_a_wrong_setting_fails_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=field):
        HeadroomNodePostprocessor(**{field: value})


def test_an_embedding_scorer_without_the_extra_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import headroom_core.relevance.embedding as embedding

    monkeypatch.setattr(embedding, "_missing_libraries", lambda: ["torch"])
    hint = re.escape('pip install "headroom-context[embeddings]"')
    with pytest.raises(ValueError, match=f"scorer='embedding': .*{hint}"):
        HeadroomNodePostprocessor(scorer="embedding")


def test_any_scorer_object_is_accepted_and_serialised_by_name(store: MemoryOriginalStore) -> None:
    class Needle:
        def score_items(self, items: list[str], query: str) -> list[float]:
            return [1.0 if "needle" in item else 0.0 for item in items]

    nodes = [
        NodeWithScore(node=TextNode(id_=f"n{i}", text=t), score=0.5)
        for i, t in enumerate(["hay " * 30, "a needle here " * 10, "straw " * 30])
    ]
    pp = HeadroomNodePostprocessor(scorer=Needle(), order="score", store=store)
    out = pp.postprocess_nodes(nodes, query_str="anything")
    assert [n.node_id for n in out] == ["n1", "n0", "n2"]
    assert pp.to_dict()["scorer"] == "Needle"


def test_empty_input_gives_an_empty_list() -> None:
    pp = HeadroomNodePostprocessor(token_budget=50, scorer="bm25")
    assert pp.postprocess_nodes([], query_str="q") == []
    assert pp.postprocess_nodes([]) == []
    assert asyncio.run(pp.apostprocess_nodes([], query_str="q")) == []


# ---- in a query engine -----------------------------------------------------------------


def index_of(row: dict[str, Any], embed_model: BaseEmbedding) -> VectorStoreIndex:
    docs = [
        Document(text=c["text"], metadata={"title": c["title"]}, doc_id=f"d{i}")
        for i, c in enumerate(row["ctxs"])
    ]
    return VectorStoreIndex.from_documents(docs, embed_model=embed_model)


@pytest.mark.parametrize("scorer", ["bm25", pytest.param("hybrid", marks=needs_minilm)])
def test_query_engine_prompt_fits_the_budget_and_holds_the_gold_passage(
    nq: list[dict[str, Any]], scorer: str, store: MemoryOriginalStore
) -> None:
    for row in nq:
        full = context_of(nodes_of(row))
        budget = tokens(full) // 4
        pp = HeadroomNodePostprocessor(token_budget=budget, scorer=scorer, store=store)
        engine = index_of(row, MockEmbedding(embed_dim=8)).as_query_engine(
            llm=MockLLM(), similarity_top_k=20, node_postprocessors=[pp]
        )
        response = engine.query(row["question"])
        prompt = str(response.response)  # MockLLM answers with its prompt
        match = CONTEXT.search(prompt)
        assert match is not None, prompt
        context = match[1]
        assert tokens(context) <= budget, row["question"]
        assert has_answer(context, row["answers"]), row["question"]
        gold = next(c for c in row["ctxs"] if c["isgold"])
        assert gold["text"] in context
        assert 0 < len(response.source_nodes) < 20
        # the bookkeeping stays out of the prompt; the marker names a ref the store holds
        assert not any(key in prompt for key in HEADROOM_KEYS)
        left_out = LEFT_OUT.search(context)
        assert left_out is not None and store.get(left_out[2]) is not None


@needs_minilm
def test_minilm_retrieval_then_headroom_in_a_query_engine(
    nq: list[dict[str, Any]], store: MemoryOriginalStore
) -> None:
    row = nq[3]  # gold passage at position 9 of the file
    index = index_of(row, MiniLMEmbedding())
    budget = tokens(context_of(nodes_of(row))) // 2
    pp = HeadroomNodePostprocessor(token_budget=budget, scorer="hybrid", store=store)
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=10, node_postprocessors=[pp])
    response = engine.query(row["question"])
    retrieved = index.as_retriever(similarity_top_k=10).retrieve(row["question"])
    by_id = {n.node_id: n for n in retrieved}
    assert has_answer(str(response.response), row["answers"])
    for out in response.source_nodes:  # the retriever's score and identity survive
        assert out.score == pytest.approx(by_id[out.node_id].score)
        assert out.node.relationships == by_id[out.node_id].node.relationships
        assert 0.0 <= out.metadata[RELEVANCE_KEY] <= 1.0


def test_async_query_engine_and_apostprocess_match_the_sync_path(
    nq: list[dict[str, Any]], store: MemoryOriginalStore
) -> None:
    row = nq[1]
    nodes = nodes_of(row)
    budget = tokens(context_of(nodes)) // 3
    pp = HeadroomNodePostprocessor(token_budget=budget, scorer="bm25", store=store)
    sync = pp.postprocess_nodes(nodes, query_str=row["question"])
    asynchronous = asyncio.run(pp.apostprocess_nodes(nodes, query_str=row["question"]))
    assert [n.node.model_dump() for n in asynchronous] == [n.node.model_dump() for n in sync]
    assert [n.score for n in asynchronous] == [n.score for n in sync]

    engine = index_of(row, MockEmbedding(embed_dim=8)).as_query_engine(
        llm=MockLLM(), similarity_top_k=20, node_postprocessors=[pp]
    )
    response = asyncio.run(engine.aquery(row["question"]))
    context = CONTEXT.search(str(response.response))
    assert context is not None and tokens(context[1]) <= budget
    assert has_answer(context[1], row["answers"])


# ---- multi-hop evidence: HotpotQA through a real query engine --------------------------

# What tests/benchmarks/bench_llamaindex.py prints for "ours" on the 50 questions (both gold
# paragraphs' supporting sentences kept, out of 50), retrieval through the same
# VectorStoreIndex over the bundled MiniLM; README quotes the same numbers.
HOTPOT_BENCH = {("bm25", 0.5): 47, ("bm25", 0.25): 41, ("hybrid", 0.5): 47, ("hybrid", 0.25): 41}
HOTPOT_TARGET = {0.5: 0.9, 0.25: 0.65}


@pytest.fixture(scope="module")
def hotpot(shared_data: Path) -> list[dict[str, Any]]:
    path = shared_data / "qa_hotpotqa_multihop" / "rag_chunks.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def supporting_kept(row: dict[str, Any], text: str) -> bool:
    flat = " ".join(text.split())
    sentences = [s for c in row["chunks"] if c["is_gold"] for s in c["supporting_sentences"]]
    return all(" ".join(s.split()) in flat for s in sentences)


def hotpot_engine_run(
    rows: list[dict[str, Any]], embed_model: BaseEmbedding, scorer: str, store: MemoryOriginalStore
) -> dict[float, int]:
    """Per budget, the questions whose prompt (through RetrieverQueryEngine and MockLLM)
    holds every supporting sentence; checks each prompt against the budget, the engine's
    source nodes against the index's nodes and the postprocessor's direct output."""
    kept = dict.fromkeys(HOTPOT_TARGET, 0)
    for qi, row in enumerate(rows):
        nodes = [
            TextNode(id_=f"h{qi}-c{i}", text=c["text"], metadata={"title": c["title"]})
            for i, c in enumerate(row["chunks"])
        ]
        by_id = {n.node_id: n for n in nodes}
        index = VectorStoreIndex(nodes=nodes, embed_model=embed_model)
        retriever = index.as_retriever(similarity_top_k=len(nodes))
        retrieved = retriever.retrieve(row["question"])
        before = [n.node.model_dump() for n in retrieved]
        for frac in HOTPOT_TARGET:
            budget = int(tokens(context_of(retrieved)) * frac)
            pp = HeadroomNodePostprocessor(token_budget=budget, scorer=scorer, store=store)
            engine = RetrieverQueryEngine.from_args(
                retriever, llm=MockLLM(), node_postprocessors=[pp]
            )
            response = engine.query(row["question"])
            match = CONTEXT.search(str(response.response))
            assert match is not None
            prompt_context = match[1]
            assert tokens(prompt_context) <= budget, (row["question"], frac)
            direct = pp.postprocess_nodes(retrieved, query_str=row["question"])
            assert context_of(direct) == prompt_context
            for out in response.source_nodes:  # ids and metadata survive
                assert out.node.metadata["title"] == by_id[out.node_id].metadata["title"]
            kept[frac] += supporting_kept(row, prompt_context)
        assert [n.node.model_dump() for n in retrieved] == before  # inputs never mutated
    return kept


def test_hotpotqa_multihop_evidence_through_a_retriever_query_engine(
    hotpot: list[dict[str, Any]], store: MemoryOriginalStore
) -> None:
    """BM25 scorer, MockEmbedding retrieval (every retriever score equal): both gold
    paragraphs' supporting sentences are in the prompt for >= 90% of the questions at a
    50% budget and >= 65% at 25%."""
    kept = hotpot_engine_run(hotpot, MockEmbedding(embed_dim=8), "bm25", store)
    for frac, target in HOTPOT_TARGET.items():
        assert kept[frac] / len(hotpot) >= target, (frac, kept)


@needs_minilm
@pytest.mark.parametrize("scorer", ["bm25", "hybrid"])
def test_hotpotqa_numbers_of_the_benchmark_through_a_retriever_query_engine(
    hotpot: list[dict[str, Any]], scorer: str, store: MemoryOriginalStore
) -> None:
    """MiniLM retrieval, as in bench_llamaindex.py: the same numbers as the benchmark."""
    kept = hotpot_engine_run(hotpot, MiniLMEmbedding(), scorer, store)
    assert {(scorer, f): k for f, k in kept.items()} == {
        key: value for key, value in HOTPOT_BENCH.items() if key[0] == scorer
    }


def test_a_bridge_node_is_linked_and_keeps_its_evidence(store: MemoryOriginalStore) -> None:
    """The second hop shares few words with the question; the first hop names it."""
    texts = {
        "Midnight Harbor": "Midnight Harbor is a 1998 thriller film directed by Ann Lee. It "
        "is a remake of the 1954 film Dark Water Bay. Filming took place in Lisbon over "
        "three months, and the premiere was held in Porto.",
        "Harbor Lights (film)": "Harbor Lights is a 1962 film set in a harbor town. The film "
        "was directed by Paul Nun, who directed many films about a harbor at midnight. It "
        "was shot in black and white and released in the spring.",
        "Dark Water Bay": "Dark Water Bay is a 1954 mystery picture by Karl Weiss. It stars "
        "Grace Holm as a lighthouse keeper. The score was written by Otto Brand.",
        "Remake": "A remake is a film based on an earlier one. Directors have directed "
        "remakes of films since the silent era, and studios favour them.",
    }
    nodes = [
        NodeWithScore(node=TextNode(id_=f"n{i}", text=t, metadata={"title": title}), score=0.5)
        for i, (title, t) in enumerate(texts.items())
    ]
    question = "Who directed the film of which Midnight Harbor is a remake?"
    bm25 = BM25Scorer().score_items([n.node.get_content(MetadataMode.LLM) for n in nodes], question)
    assert sorted(range(4), key=lambda i: -bm25[i])[:2] == [0, 1]  # BM25 alone: n0, n1
    budget = tokens(context_of(nodes)) * 9 // 10  # room for two of the four and the markers
    pp = HeadroomNodePostprocessor(token_budget=budget, scorer="bm25", store=store)
    out = {n.node_id: n for n in pp.postprocess_nodes(nodes, query_str=question)}
    assert sorted(out) == ["n0", "n2"]
    assert out["n2"].metadata[LINKED_KEY] == "n0" and LINKED_KEY not in out["n0"].metadata
    assert out["n2"].node.get_content().startswith(texts["Dark Water Bay"])
    assert 0 < out["n2"].metadata[RELEVANCE_KEY] < out["n0"].metadata[RELEVANCE_KEY] == 1.0
    assert tokens(context_of(list(out.values()))) <= budget


# ---- budgets and cuts ------------------------------------------------------------------


@pytest.mark.parametrize("scorer", ["bm25", pytest.param("hybrid", marks=needs_minilm)])
def test_the_answer_sentence_survives_when_its_node_is_cut(
    nq: list[dict[str, Any]], scorer: str, store: MemoryOriginalStore
) -> None:
    """One long chunk (gold passage among seven others) and a budget of a quarter of it: the
    node is cut to its sentences that matter for the question, in their original order."""
    for row in nq:
        gold = next(c for c in row["ctxs"] if c["isgold"])
        others = [c["text"] for c in row["ctxs"] if not c["isgold"]][:7]
        text = "\n\n".join([*others[:4], gold["text"], *others[4:]])
        node = NodeWithScore(node=TextNode(id_="chunk", text=text), score=0.8)
        budget = tokens(text) // 4
        pp = HeadroomNodePostprocessor(token_budget=budget, scorer=scorer, store=store)
        [out] = pp.postprocess_nodes([node], query_str=row["question"])
        cut = out.node.get_content()
        assert tokens(cut) + 1 <= budget
        assert has_answer(cut, row["answers"]), (row["question"], cut)
        marker = CUT.search(cut)
        assert marker is not None and marker[2] == out.metadata[REF_KEY]
        stored = store.get(marker[2])
        assert stored is not None and stored.text == text
        body = cut[: marker.start()]
        pieces = [p for p in re.split(r"\s*\u2026\s*|\n+", body) if p.strip()]
        at = 0
        for piece in pieces:  # extractive, original order: each piece after the one before
            at = text.index(piece.strip(), at) + len(piece.strip())
        assert int(marker[1]) >= len(text) - len(body)


def test_every_budget_is_met_and_the_output_is_deterministic(
    nq: list[dict[str, Any]], store: MemoryOriginalStore
) -> None:
    for row in nq:
        nodes = nodes_of(row)
        full = context_of(nodes)
        for frac in (0.03, 0.07, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.8, 0.99, 1.0, 1.5):
            budget = max(1, int(tokens(full) * frac))
            pp = HeadroomNodePostprocessor(token_budget=budget, scorer="bm25", store=store)
            first = pp.postprocess_nodes(nodes, query_str=row["question"])
            again = pp.postprocess_nodes(nodes, query_str=row["question"])
            assert tokens(context_of(first)) <= budget, (row["question"], frac)
            assert context_of(first) == context_of(again)
            if frac >= 1.0:  # everything fits: nothing is cut, dropped or marked
                assert context_of(first) == full
            else:  # something was cut or left out, and its ref is on a node
                assert first, (row["question"], frac)
                assert any(REF_KEY in n.metadata or DROPPED_KEY in n.metadata for n in first)
            if frac >= 0.2:
                assert has_answer(context_of(first), row["answers"]), (row["question"], frac)


def test_the_room_kept_for_a_marker_covers_any_ref() -> None:
    rng = random.Random(0)
    for marker in (dropped_marker, cut_marker):
        worst = tokens(marker(20, REF_PLACEHOLDER))
        refs = [f"{rng.getrandbits(64):016x}" for _ in range(3000)]
        assert max(tokens(marker(20, ref)) for ref in refs) <= worst


def test_a_budget_too_small_for_any_sentence_keeps_nothing(nq: list[dict[str, Any]]) -> None:
    row = nq[0]
    pp = HeadroomNodePostprocessor(token_budget=3, scorer="bm25", store=MemoryOriginalStore())
    assert pp.postprocess_nodes(nodes_of(row), query_str=row["question"]) == []


def test_nodes_left_out_for_the_budget_are_kept_under_one_ref(
    nq: list[dict[str, Any]], store: MemoryOriginalStore
) -> None:
    row = nq[2]
    nodes = nodes_of(row)
    pp = HeadroomNodePostprocessor(
        token_budget=tokens(context_of(nodes)) // 4, scorer="bm25", store=store
    )
    out = pp.postprocess_nodes(nodes, query_str=row["question"])
    carriers = [n for n in out if DROPPED_KEY in n.metadata]
    assert len(carriers) == 1 and carriers[0] is out[-1]  # the last node in retrieval order
    marker = LEFT_OUT.search(out[-1].node.get_content())
    assert marker is not None and marker[2] == out[-1].metadata[DROPPED_KEY]
    kept_ids = {n.node_id for n in out}
    dropped = [n for n in nodes if n.node_id not in kept_ids]
    assert int(marker[1]) == len(dropped) > 0
    stored = store.get(marker[2])
    assert stored is not None
    for n in dropped:
        assert f"[node {n.node_id}]\n{n.node.get_content()}" in stored.text


# ---- identity and copies ---------------------------------------------------------------


def linked_nodes(row: dict[str, Any]) -> list[NodeWithScore]:
    """Nodes as a vector store returns them: source, prev/next links, embeddings, scores."""
    out = []
    for i, ctx in enumerate(row["ctxs"][:10]):
        rel = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc-{i // 3}")}
        if i:
            rel[NodeRelationship.PREVIOUS] = RelatedNodeInfo(node_id=f"p{i - 1}")
        rel[NodeRelationship.NEXT] = RelatedNodeInfo(node_id=f"p{i + 1}")
        node = TextNode(
            id_=f"p{i}",
            text=ctx["text"],
            metadata={"title": ctx["title"], "tags": ["nq", str(i)]},
            excluded_embed_metadata_keys=["tags"],
            relationships=rel,
            embedding=[float(i), 1.0, 0.5],
        )
        out.append(NodeWithScore(node=node, score=None if i == 3 else 0.9 - i / 100))
    # a near-copy of the gold passage, so dedupe has work to do
    gold = next(
        n
        for n in out
        if n.node.get_content() == next(c["text"] for c in row["ctxs"] if c["isgold"])
    )
    twin = gold.node.model_copy(
        update={"id_": "twin", "text": gold.node.get_content() + " Indeed."}
    )
    out.append(NodeWithScore(node=twin, score=0.1))
    return out


def test_input_nodes_are_never_changed_and_copies_keep_their_identity(
    nq: list[dict[str, Any]], store: MemoryOriginalStore
) -> None:
    row = nq[0]  # gold at 0: inside the first ten passages
    nodes = linked_nodes(row)
    before = [(n.score, n.node.model_dump()) for n in nodes]
    by_id = {n.node_id: n for n in nodes}
    full = tokens(context_of(nodes))
    outputs = []
    for budget in (None, full // 2, full // 3, full // 4, full // 5, full // 7):
        pp = HeadroomNodePostprocessor(token_budget=budget, scorer="bm25", store=store)
        outputs.append(pp.postprocess_nodes(nodes, query_str=row["question"]))

    assert [(n.score, n.node.model_dump()) for n in nodes] == before
    copies = [copy for out in outputs for copy in out]
    assert any(CUT.search(n.node.get_content()) for n in copies)  # something was cut ...
    assert any(DROPPED_KEY in n.metadata for n in copies)  # ... and something left out
    assert any(DUPLICATES_KEY in n.metadata for n in copies)  # ... and a twin dropped
    for copy in copies:
        original = by_id[copy.node_id]
        assert copy is not original and copy.node is not original.node
        assert copy.node.metadata is not original.node.metadata
        assert copy.node.relationships == original.node.relationships
        assert copy.node.embedding == original.node.embedding
        for key, value in original.node.metadata.items():
            assert copy.node.metadata[key] == value
        relevance = copy.metadata[RELEVANCE_KEY]
        assert copy.score == (original.score if original.score is not None else relevance)
        for mode in (MetadataMode.LLM, MetadataMode.EMBED):
            view = copy.node.get_content(metadata_mode=mode)
            assert not any(f"{key}:" in view for key in HEADROOM_KEYS)
        assert "tags" not in copy.node.get_content(metadata_mode=MetadataMode.EMBED)
        if REF_KEY in copy.metadata:
            stored = store.get(copy.metadata[REF_KEY])
            assert stored is not None and stored.text == original.node.get_content()
    assert any(copy.node_id == "p3" for copy in copies) and by_id["p3"].score is None


# ---- dedupe and order ------------------------------------------------------------------


def test_near_duplicates_are_dropped_keeping_the_more_relevant(store: MemoryOriginalStore) -> None:
    base = (
        "Delano Las Vegas (formerly known as THEhotel) is a 45-story 1,117 room luxury suite "
        "hotel. It is located within the Mandalay Bay complex on the Las Vegas Strip in "
        "Paradise, Nevada. It was renovated and rebranded as the Delano Las Vegas on September "
        "2, 2014, under a partnership between MGM and Morgans Hotel Group, and its rooms "
        "were redesigned with a desert palette. "
    )
    nodes = [
        NodeWithScore(node=TextNode(id_="a", text=base), score=0.9),
        NodeWithScore(node=TextNode(id_="other", text="Anatevka is a village. " * 10), score=0.8),
        # the same text plus a few words that make it the better match
        NodeWithScore(node=TextNode(id_="b", text=base + "Owned by MGM Resorts."), score=0.5),
    ]
    pp = HeadroomNodePostprocessor(scorer="bm25", store=store)
    out = pp.postprocess_nodes(nodes, query_str="who owns the Delano hotel, MGM Resorts?")
    assert [n.node_id for n in out] == ["other", "b"]
    [ref] = out[1].metadata[DUPLICATES_KEY]
    stored = store.get(ref)
    assert stored is not None and stored.text == base
    # without a query the retriever's score ranks: "a" survives
    assert [n.node_id for n in pp.postprocess_nodes(nodes)] == ["a", "other"]
    # below the threshold nothing is a duplicate; None turns dedupe off
    strict = HeadroomNodePostprocessor(scorer="bm25", dedupe_threshold=1.0, store=store)
    assert len(strict.postprocess_nodes(nodes, query_str="delano")) == 3
    off = HeadroomNodePostprocessor(scorer="bm25", dedupe_threshold=None, store=store)
    assert len(off.postprocess_nodes(nodes, query_str="delano")) == 3


def test_order_original_or_by_relevance(
    nq: list[dict[str, Any]], store: MemoryOriginalStore
) -> None:
    row = nq[3]
    nodes = nodes_of(row)
    kwargs: dict[str, Any] = {"scorer": "bm25", "store": store}
    original = HeadroomNodePostprocessor(**kwargs).postprocess_nodes(
        nodes, query_str=row["question"]
    )
    ranked = HeadroomNodePostprocessor(order="score", **kwargs).postprocess_nodes(
        nodes, query_str=row["question"]
    )
    assert [n.node_id for n in original] == [n.node_id for n in nodes]
    relevance = [n.metadata[RELEVANCE_KEY] for n in ranked]
    assert relevance == sorted(relevance, reverse=True) and relevance[0] == 1.0
    assert sorted(n.node_id for n in ranked) == sorted(n.node_id for n in nodes)
    assert ranked[0].node.get_content() == next(c["text"] for c in row["ctxs"] if c["isgold"])


def test_without_a_query_it_still_dedupes_and_fits_in_retrieval_order(
    nq: list[dict[str, Any]], store: MemoryOriginalStore
) -> None:
    row = nq[5]
    nodes = nodes_of(row)
    nodes.insert(3, NodeWithScore(node=nodes[7].node.model_copy(update={"id_": "dup"}), score=0.1))
    budget = tokens(context_of(nodes)) // 2
    pp = HeadroomNodePostprocessor(token_budget=budget, scorer="bm25", store=store)
    out = pp.postprocess_nodes(nodes)
    ids = [n.node_id for n in out]
    assert "dup" not in ids and tokens(context_of(out)) <= budget
    assert ids == [n.node_id for n in nodes if n.node_id in ids]  # retrieval order
    assert ids[: len(ids) - 1] == [f"p{i}" for i in range(len(ids) - 1)]  # best scores first
    assert all(RELEVANCE_KEY not in n.metadata for n in out)
    # a node cut without a query keeps its beginning, without holes
    text = "\n\n".join(c["text"] for c in row["ctxs"][:8])
    chunk = NodeWithScore(node=TextNode(id_="chunk", text=text), score=None)
    [cut] = HeadroomNodePostprocessor(
        token_budget=tokens(text) // 4, scorer="bm25", store=store
    ).postprocess_nodes([chunk])
    marker = CUT.search(cut.node.get_content())
    assert marker is not None and RELEVANCE_KEY not in cut.metadata
    body = cut.node.get_content()[: marker.start()].rstrip("\n")
    assert "\u2026" not in body and text.startswith(body)
    assert tokens(body) > tokens(text) // 8  # the budget is used, not left empty


# ---- content compression ---------------------------------------------------------------


def test_json_and_code_nodes_are_compressed_by_content_type(
    shared_data: Path, store: MemoryOriginalStore
) -> None:
    json_text = (
        shared_data
        / "api_octokit_fixtures"
        / "responses"
        / "add-and-remove-repository-collaborator__00_put_201.json"
    ).read_text("utf-8")
    code_text = (shared_data / "code_files" / "psf__requests" / "sessions.py.txt").read_text(
        "utf-8"
    )
    nodes = [
        NodeWithScore(node=TextNode(id_="json", text=json_text), score=0.7),
        NodeWithScore(node=TextNode(id_="code", text=code_text), score=0.6),
    ]
    pp = HeadroomNodePostprocessor(scorer="bm25", store=store)
    out = {n.node_id: n for n in pp.postprocess_nodes(nodes, query_str="repository invitation")}
    for node_id, original, compressor in (
        ("json", json_text, "smart_crusher"),
        ("code", code_text, "code"),
    ):
        copy = out[node_id]
        assert copy.metadata[COMPRESSOR_KEY] == compressor
        assert tokens(copy.node.get_content()) < tokens(original)
        stored = store.get(copy.metadata[REF_KEY])
        assert stored is not None and stored.text == original
    untouched = HeadroomNodePostprocessor(scorer="bm25", compress_content=False, store=store)
    assert [n.node.get_content() for n in untouched.postprocess_nodes(nodes, query_str="x")] == [
        json_text,
        code_text,
    ]


def test_prose_under_the_core_threshold_passes_through(nq: list[dict[str, Any]]) -> None:
    row = nq[0]
    nodes = nodes_of(row)
    out = HeadroomNodePostprocessor(scorer="bm25").postprocess_nodes(
        nodes, query_str=row["question"]
    )
    assert [n.node.get_content() for n in out] == [n.node.get_content() for n in nodes]
    assert all(REF_KEY not in n.metadata for n in out)


def test_documents_are_copied_and_cut_like_text_nodes(store: MemoryOriginalStore) -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(60))
    doc = Document(text=text, doc_id="doc", metadata={"source": "unit"})
    pp = HeadroomNodePostprocessor(token_budget=100, scorer="bm25", store=store)
    [out] = pp.postprocess_nodes([NodeWithScore(node=doc, score=1.0)], query_str="topic 42")
    assert isinstance(out.node, Document) and out.node_id == "doc"
    assert "topic 42." in out.node.get_content() and CUT.search(out.node.get_content())
    assert doc.text == text


# ---- package surface -------------------------------------------------------------------


def test_lazy_names_and_a_missing_module() -> None:
    assert hli.HeadroomNodePostprocessor is HeadroomNodePostprocessor
    assert set(hli.__all__) >= {"HeadroomNodePostprocessor", "HeadroomLLM", "to_neutral"}
    with pytest.raises(AttributeError):
        hli.Nope  # noqa: B018


def test_a_missing_adapter_module_is_an_attribute_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(hli._LAZY, "HeadroomFuture", "not_written_yet")
    with pytest.raises(AttributeError, match="not_written_yet is missing"):
        hli.HeadroomFuture  # noqa: B018


def test_without_llama_index_the_import_fails_with_the_install_hint() -> None:
    probe = (
        "import sys; sys.modules['llama_index'] = None\n"
        "try:\n"
        "    import headroom_integrations.llamaindex\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert 'pip install "headroom-context[llamaindex]"' in out.stdout

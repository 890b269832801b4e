"""The two question families of ``bench_llamaindex.py``: their retrieved nodes and what must
survive in the kept context.

- **nq**: ``qa_lost_in_the_middle/derived/nq_multidoc_20docs_gold_at_{0,9,19}.jsonl``
  (nelson-liu/lost-in-the-middle, MIT; NQ-Open and Wikipedia CC BY-SA 3.0): 20 passages per
  question in the file's order, scored by MiniLM cosine similarity; kept = one of the gold
  answers is in the context (lowercase, whitespace collapsed).
- **hotpotqa**: ``qa_hotpotqa_multihop/rag_chunks.jsonl`` (HotpotQA dev, distractor setting,
  CC BY-SA 4.0, Yang et al., EMNLP 2018): each question's ten paragraphs (two gold) go into a
  real ``VectorStoreIndex`` over the bundled MiniLM, and its retriever (``similarity_top_k``
  = all of them) returns them as a RAG app gets them: best MiniLM score first. Kept = every
  supporting sentence of both gold paragraphs is in the context (whitespace collapsed).

Nodes are ``TextNode(id_=..., text=<paragraph>, metadata={"title": <title>})``, so their LLM
view is ``title: <title>`` and the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

from headroom_core.relevance import EmbeddingScorer

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
NQ = DATA / "qa_lost_in_the_middle" / "derived"
HOTPOT = DATA / "qa_hotpotqa_multihop" / "rag_chunks.jsonl"
POSITIONS = (0, 9, 19)


@dataclass(frozen=True, slots=True)
class Case:
    """One question: its retrieved nodes and the strings the kept context must hold (all of
    ``required``, or one of ``any_of``)."""

    family: str
    question: str
    nodes: tuple[NodeWithScore, ...]
    required: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()

    def kept(self, text: str) -> bool:
        flat = collapse(text)
        if self.any_of:
            return any(collapse(a).lower() in flat.lower() for a in self.any_of)
        return all(collapse(s) in flat for s in self.required)

    def kept_share(self, text: str) -> tuple[int, int]:
        """(required strings present, required strings)."""
        flat = collapse(text)
        return sum(collapse(s) in flat for s in self.required), len(self.required)


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def nq_cases(limit: int, embedder: EmbeddingScorer) -> list[Case]:
    """The first ``limit`` questions of each gold position."""
    cases = []
    for pos in POSITIONS:
        with (NQ / f"nq_multidoc_20docs_gold_at_{pos}.jsonl").open(encoding="utf-8") as fh:
            for qi, line in zip(range(limit), fh, strict=False):
                row = json.loads(line)
                nodes = [
                    TextNode(id_=f"q{qi}-p{i}", text=c["text"], metadata={"title": c["title"]})
                    for i, c in enumerate(row["ctxs"])
                ]
                views = [n.get_content(metadata_mode=MetadataMode.LLM) for n in nodes]
                scores = embedder.score_items(views, row["question"])
                scored = tuple(
                    NodeWithScore(node=n, score=s) for n, s in zip(nodes, scores, strict=True)
                )
                cases.append(Case("nq", row["question"], scored, any_of=tuple(row["answers"])))
    return cases


def hotpot_rows(limit: int | None = None) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in HOTPOT.read_text("utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def hotpot_nodes(row: dict[str, object], qi: int) -> list[TextNode]:
    chunks: Sequence[dict[str, object]] = row["chunks"]  # type: ignore[assignment]
    return [
        TextNode(id_=f"h{qi}-c{i}", text=str(c["text"]), metadata={"title": str(c["title"])})
        for i, c in enumerate(chunks)
    ]


def hotpot_supporting(row: dict[str, object]) -> tuple[str, ...]:
    chunks: Sequence[dict[str, object]] = row["chunks"]  # type: ignore[assignment]
    return tuple(
        str(s).strip()
        for c in chunks
        if c["is_gold"]
        for s in c["supporting_sentences"]  # type: ignore[attr-defined]
    )


def hotpot_cases(limit: int | None, embed_model: BaseEmbedding) -> list[Case]:
    """Each question's paragraphs through a real VectorStoreIndex and its retriever."""
    cases = []
    for qi, row in enumerate(hotpot_rows(limit)):
        nodes = hotpot_nodes(row, qi)
        index = VectorStoreIndex(nodes=nodes, embed_model=embed_model)
        question = str(row["question"])
        retrieved = index.as_retriever(similarity_top_k=len(nodes)).retrieve(question)
        cases.append(Case("hotpotqa", question, tuple(retrieved), required=hotpot_supporting(row)))
    return cases

"""README's agent setups (LangChain and LlamaIndex: memory and the retrieve tool) run as
written. The blocks leave the model and the tools to the reader (``llm`` / ``your_llm``
and ``tools``); the test supplies the scripted fake models and real tools of the agent
tests, and runs each block in a temporary working directory (``sqlite:///originals.db``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain.agents")
pytest.importorskip("llama_index.core")

from langchain_core.messages import ToolMessage  # noqa: E402
from llama_index.core.tools import FunctionTool  # noqa: E402

from headroom_core.ccr import RETRIEVE_TOOL_NAME, SQLiteOriginalStore  # noqa: E402

from .agent_scenario import TOOLS, ScriptedToolModel, data_present, six_turn_step  # noqa: E402
from .test_agents_llamaindex import ScriptedLLM, fetch_logs, log_step  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = [
    pytest.mark.skipif(not data_present(), reason="../shared/data (loghub, Jira) not found"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect"),
]


def agent_block(section: str) -> str:
    text = README.read_text("utf-8")
    start = text.index(f"\n## {section}")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], re.DOTALL)
    (block,) = [b for b in blocks if "memory" in b.lower() and "retrieve" in b.lower()]
    return block


def run(block: str, namespace: dict[str, Any]) -> dict[str, Any]:
    exec(compile(block, str(README), "exec"), namespace)
    return namespace


def test_langchain_agent_setup_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    llm = ScriptedToolModel(step=six_turn_step())
    run(agent_block("LangChain"), {"__name__": "readme", "llm": llm, "tools": TOOLS})
    # three turns: two through the middleware, one through the chat-model wrapper
    questions = [m for m in llm.received if not isinstance(m[-1], ToolMessage)]
    assert len(questions) == 3 and len(llm.received) == 6
    names = [[t["function"]["name"] for t in tools] for tools in llm.received_tools]
    assert all(RETRIEVE_TOOL_NAME in n for n in names)  # offered on every call
    # the tool results went out compressed, their originals into ./originals.db
    results = [m for m in llm.received[-1] if isinstance(m, ToolMessage)]
    assert results and all(len(str(m.content)) < 120_000 for m in results)
    with SQLiteOriginalStore(str(tmp_path / "originals.db")) as store:
        assert len(store) >= 2


def test_llamaindex_agent_setup_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    your_llm = ScriptedLLM(step=log_step)
    tools = [FunctionTool.from_defaults(fetch_logs)]
    ns = run(
        agent_block("LlamaIndex"), {"__name__": "readme", "your_llm": your_llm, "tools": tools}
    )
    assert len(your_llm.received) == 4  # two turns, a tool call and an answer each
    second_turn = your_llm.received[2]
    assert "Which errors does the HDFS log show?" in [m.content for m in second_turn]
    assert RETRIEVE_TOOL_NAME in [t["function"]["name"] for t in your_llm.tools[0]]
    assert len(ns["memory"].get_all()) == 8  # every message of both turns kept
    with SQLiteOriginalStore(str(tmp_path / "originals.db")) as store:
        assert len(store) >= 2

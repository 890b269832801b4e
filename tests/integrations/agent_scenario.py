"""A six-turn LangChain agent over real tool outputs, shared by the agent tests and
``tests/benchmarks/bench_agents.py``.

``create_agent`` with a checkpointer (one thread), a scripted tool-calling model built on
LangChain's ``GenericFakeChatModel`` (it binds tools the way provider models do and
records every request it receives, tool definitions included), and real tools returning
real data from ``../shared/data``: four 2,000-line loghub logs and the 450 KB Jira project
list. Turn 6 asks for the whole project list again: the model calls ``headroom_retrieve``
with a ref it saw and no query, as the tool's own description suggests.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from headroom_core.ccr import RETRIEVE_TOOL_NAME
from headroom_core.tokens import count_tokens_messages, count_tokens_text

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LOGS = ("HDFS", "Apache", "OpenSSH", "Zookeeper")
PROJECTS = SHARED / "api_go_jira_mocks" / "all_projects.json"
BFCL_DOCS = SHARED / "fc_bfcl" / "multi_turn_func_doc"
SYSTEM = "You are an SRE assistant. Use the tools; cite log lines and project keys."
REF = re.compile(r"ref\W{1,4}([0-9a-f]{32})\b")


def data_present() -> bool:
    return PROJECTS.exists() and all(log_path(n).exists() for n in LOGS)


def log_path(name: str) -> Path:
    return SHARED / "logs_loghub" / name / f"{name}_2k.log"


@tool
def fetch_logs(service: str) -> str:
    """Fetch the last 2,000 log lines of a service (HDFS, Apache, OpenSSH, Zookeeper)."""
    return log_path(service).read_text("utf-8")


@tool
def list_projects() -> str:
    """List every Jira project (JSON)."""
    return PROJECTS.read_text("utf-8")


TOOLS: list[BaseTool] = [fetch_logs, list_projects]


def bfcl_tools() -> list[dict[str, Any]]:
    """The real BFCL multi-turn function docs as OpenAI tool definitions (BFCL writes
    ``"type": "dict"`` where JSON Schema says ``"object"``)."""

    def schema(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: ("object" if k == "type" and v == "dict" else schema(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [schema(v) for v in value]
        return value

    out = []
    for path in sorted(BFCL_DOCS.glob("*.json")):
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                doc = json.loads(line)
                out.append(
                    {
                        "type": "function",
                        "function": {
                            "name": doc["name"],
                            "description": doc["description"],
                            "parameters": schema(doc["parameters"]),
                        },
                    }
                )
    return out


Step = Callable[[list[BaseMessage]], AIMessage]


class ScriptedToolModel(GenericFakeChatModel):
    """GenericFakeChatModel as a provider tool-calling model: ``bind_tools`` binds the
    OpenAI definitions (as ChatOpenAI does, so they travel with every call and callbacks
    see them); each call records the messages and tools it received and answers with
    ``step(messages)``."""

    messages: Any = Field(default_factory=lambda: iter(()))
    step: Any = None
    received: list[list[BaseMessage]] = Field(default_factory=list)
    received_tools: list[list[dict[str, Any]]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.received.append(list(messages))
        self.received_tools.append(list(kwargs.get("tools") or ()))
        return ChatResult(generations=[ChatGeneration(message=self.step(messages))])


def call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


def refs_in(messages: Sequence[BaseMessage]) -> list[str]:
    """Every ref the model can see, newest message first."""
    found: list[str] = []
    for m in reversed(messages):
        found += [r for r in REF.findall(str(m.content)) if r not in found]
    return found


QUESTIONS = [
    *(f"Which errors does the {name} log show?" for name in LOGS),
    "List the Jira projects: which one has the key HADOOP?",
    "Show me the whole project list again.",
]


def six_turn_step() -> Step:
    """The model's script: a tool call for each question, an answer after each result."""
    calls = iter(range(1, 100))

    def step(messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return AIMessage(f"Read {len(str(last.content))} characters of {last.name}.")
        asked = next(
            (str(m.content) for m in reversed(messages) if isinstance(m, HumanMessage)), ""
        )
        n = next(calls)
        for name in LOGS:
            if f"the {name} log" in asked:
                return call("fetch_logs", {"service": name}, f"call_{n}")
        if "key HADOOP" in asked:
            return call("list_projects", {}, f"call_{n}")
        refs = refs_in(messages)
        if refs:  # no query: the whole original, as the tool's description suggests
            return call(RETRIEVE_TOOL_NAME, {"ref": refs[0]}, f"call_{n}")
        return AIMessage("I cannot find it any more.")

    return step


@dataclass
class TurnResult:
    """One user turn: whether it raised, and every request the model received in it."""

    question: str
    error: str | None = None
    requests: list[int] = field(default_factory=list)  # tokens: messages + tool schemas
    seconds: float = 0.0


def schema_tokens(tools: list[dict[str, Any]]) -> int:
    """Exact tokens of tool definitions: their canonical JSON (as the adapters count them)."""
    if not tools:
        return 0
    return count_tokens_text(
        json.dumps(tools, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    )


def request_tokens(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> int:
    """Exact tokens of one request as a provider bills it: messages and tool definitions."""
    from headroom_integrations.langchain import to_neutral

    return count_tokens_messages(to_neutral(messages)) + schema_tokens(tools)


def run_six_turns(agent: Any, model: ScriptedToolModel, thread: str = "t1") -> list[TurnResult]:
    """Run the six questions on one thread; a turn that raises is recorded, not fatal."""
    results = []
    config = {"configurable": {"thread_id": thread}}
    for question in QUESTIONS:
        turn = TurnResult(question)
        seen = len(model.received)
        start = time.perf_counter()
        try:
            agent.invoke({"messages": [HumanMessage(question)]}, config)
        except Exception as exc:  # measured: a turn that raises is the failure counted
            turn.error = f"{type(exc).__name__}: {exc}"
        turn.seconds = time.perf_counter() - start
        turn.requests = [
            request_tokens(m, t)
            for m, t in zip(model.received[seen:], model.received_tools[seen:], strict=True)
        ]
        results.append(turn)
    return results

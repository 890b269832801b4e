"""Conversations for ``bench_context.py``: whole histories, budgets and turn-by-turn replays.

The 18 histories in ``../shared/data/conversations`` (real agent runs in OpenAI chat format;
``index.json`` names their source) are read in place through ``_datasets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from _context_methods import MODEL, Messages
from _datasets import load_conversation_cases

from headroom_core.tokens import count_tokens_messages

BUDGET_FRACTIONS = (0.25, 0.5, 0.75)
REPLAY_FRACTION = 0.5
# Source -> label in the tables. tau-bench's trajectories are real gpt-4o runs (the user
# turns come from its LLM user simulator); only the database its tools read is generated.
SOURCE_LABELS = {
    "tau_bench_airline_gpt4o": "tau-bench airline (real trajectories)",
    "toolbench": "ToolBench",
    "swe_agent_gpt4": "SWE-agent",
    "openhands_multi_swe_bench": "OpenHands",
    "mini_swe_agent": "mini-swe-agent",
}
TAU_NOTE = (
    "tau-bench rows are real gpt-4o trajectories (user turns by tau-bench's LLM user "
    "simulator); only the tau-bench database their tool results come from is synthetic"
)


@dataclass(frozen=True, slots=True)
class Conversation:
    name: str
    source: str  # label from SOURCE_LABELS
    messages: Messages
    tokens: int  # the whole history, exact

    def budget(self, fraction: float) -> int:
        return int(self.tokens * fraction)


def load_conversations(data_dir: Path, limit: int | None = None) -> list[Conversation]:
    out = []
    for case in load_conversation_cases(data_dir):
        tokens = count_tokens_messages(case.messages, model=MODEL)
        out.append(
            Conversation(
                case.name, SOURCE_LABELS.get(case.group, case.group), case.messages, tokens
            )
        )
    if limit is not None and limit < len(out):  # evenly spread, so every source is sampled
        step = len(out) / limit
        out = [out[int(i * step)] for i in range(limit)]
    return out


def replay_requests(messages: Messages) -> list[Messages]:
    """Every request the recorded agent sent: the history before each assistant message that
    follows a user or tool message, plus the whole history when it ends on one (the next
    call). So request k ends on a user message or on the last result of a tool batch."""
    cut_points = [
        i
        for i in range(1, len(messages))
        if messages[i].get("role") == "assistant"
        and messages[i - 1].get("role") in ("user", "tool")
    ]
    if messages and messages[-1].get("role") in ("user", "tool"):
        cut_points.append(len(messages))
    return [messages[:i] for i in cut_points]

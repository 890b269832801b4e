from __future__ import annotations

import json
import logging

import pytest

from headroom_core import (
    BudgetError,
    ConfigError,
    HeadroomConfig,
    SmartCrusherConfig,
    Transform,
    TransformPipeline,
    compress,
    count_tokens_messages,
    simulate,
)
from headroom_core.pipeline import TransformContext, default_query
from headroom_core.transforms import JSONCompactor, json_codec

ROWS = [{"id": i, "name": f"item {i}", "tags": ["a", "b"], "price": i * 1.5} for i in range(12)]


def request(tool_text: str, tool_name: str = "search") -> list[dict]:
    return [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "find item 7"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": tool_name, "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": tool_text},
    ]


def test_compress_reencodes_short_json_tool_output_losslessly() -> None:
    msgs = request(json.dumps(ROWS, indent=2))
    r = compress(msgs, model="gpt-4o")
    assert r.mode == "optimize"
    assert r.transforms_applied == ("smart_crusher:1",)
    assert r.tokens_before == count_tokens_messages(msgs)
    assert r.tokens_after == count_tokens_messages(r.messages)
    assert r.tokens_saved == r.tokens_before - r.tokens_after > 0
    compact_tokens = count_tokens_messages(request(json.dumps(ROWS, separators=(",", ":"))))
    assert r.tokens_after < compact_tokens  # the table form beats compact JSON here
    assert json_codec.decode(json.loads(r.messages[3]["content"])) == ROWS
    assert r.messages[:3] == msgs[:3]


def test_compact_input_with_nothing_to_gain_is_left_alone() -> None:
    msgs = request(
        json.dumps({"id": 7, "status": "shipped", "items": [1, 2]}, separators=(",", ":"))
    )
    r = compress(msgs)
    assert r.messages == msgs and r.transforms_applied == () and r.tokens_saved == 0


def test_audit_and_off_modes_change_nothing() -> None:
    msgs = request(json.dumps(ROWS, indent=2))
    audit = compress(msgs, mode="audit")
    assert audit.messages == msgs and audit.tokens_saved == 0
    assert audit.waste_signals is not None and audit.waste_signals.json_bloat_tokens > 0
    off = compress(msgs, config=HeadroomConfig(mode="off"))
    assert off.messages == msgs and off.waste_signals is None


def test_never_compress_tools_are_untouched() -> None:
    text = json.dumps(ROWS, indent=2)
    cfg = HeadroomConfig(smart_crusher=SmartCrusherConfig(never_compress_tools=("read_file",)))
    assert compress(request(text, "read_file"), config=cfg).messages[3]["content"] == text
    assert compress(request(text, "search"), config=cfg).messages[3]["content"] != text


def test_simulate_reports_without_changing() -> None:
    msgs = request(json.dumps(ROWS, indent=2))
    sim = simulate(msgs, model="gpt-4o")
    assert sim.tokens_saved == sim.tokens_before - sim.tokens_after > 0
    assert sim.savings_percent == pytest.approx(100 * sim.tokens_saved / sim.tokens_before)
    assert sim.estimated_cost_saving == pytest.approx(sim.tokens_saved * 2.5 / 1_000_000)
    assert 0 < sim.waste_signals.json_bloat_tokens <= sim.tokens_saved
    assert msgs == request(json.dumps(ROWS, indent=2))
    assert simulate(msgs, model="unknown-model").estimated_cost_saving is None


def test_default_query_is_last_user_text() -> None:
    msgs = request("x") + [{"role": "user", "content": [{"type": "text", "text": "  second  "}]}]
    assert default_query(msgs) == "second"
    assert default_query([{"role": "system", "content": "s"}]) is None


class Explodes(Transform):
    name = "explodes"

    def apply(self, messages: list, ctx: TransformContext) -> list:
        ctx.record("explodes:1")
        raise RuntimeError("boom")


class Grows(Transform):
    name = "grows"

    def apply(self, messages: list, ctx: TransformContext) -> list:
        ctx.record("grows:1")
        return [*messages[:-1], {**messages[-1], "content": messages[-1]["content"] * 3}]


class Unpairs(Transform):
    name = "unpairs"

    def apply(self, messages: list, ctx: TransformContext) -> list:
        return messages[:-1]


class OverBudget(Transform):
    name = "over_budget"

    def apply(self, messages: list, ctx: TransformContext) -> list:
        raise BudgetError("too big", protected_tokens=10, budget_tokens=5)


def test_pipeline_fails_open_and_records(caplog: pytest.LogCaptureFixture) -> None:
    msgs = request(json.dumps(ROWS, indent=2))
    pipeline = TransformPipeline([Explodes(), Grows(), Unpairs(), JSONCompactor()])
    with caplog.at_level(logging.WARNING, logger="headroom_core"):
        r = pipeline.transform(msgs)
    assert r.transforms_applied == ("json_compact:1",)
    assert r.failures[0] == "explodes: RuntimeError: boom"
    assert r.failures[1].startswith("grows: undone, output grew")
    assert r.failures[2] == "unpairs: undone, output broke tool-call pairing"
    assert json.loads(r.messages[3]["content"]) == ROWS
    assert "explodes" in caplog.text


def test_budget_error_is_not_swallowed() -> None:
    with pytest.raises(BudgetError) as info:
        TransformPipeline([OverBudget()]).transform(request("x"))
    assert (info.value.protected_tokens, info.value.budget_tokens) == (10, 5)


def test_bad_messages_are_a_clear_error() -> None:
    from headroom_core import InputError

    with pytest.raises(InputError, match=r"messages\[0\] must be a dict"):
        compress(["hello"])  # type: ignore[list-item]


def test_anthropic_shaped_tool_results_are_compressed_in_place() -> None:
    rows = [{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(12)]
    text = json.dumps(rows, indent=2)
    msgs = [
        {"role": "user", "content": "find item 7"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Searching."},
                {"type": "tool_use", "id": "tu1", "name": "search", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "tu1", "content": text},
                {
                    "type": "tool_result",
                    "tool_use_id": "tu1",
                    "content": [{"type": "text", "text": text}],
                },
                {"type": "text", "text": json.dumps(rows, indent=2)},  # user text: never touched
            ],
        },
    ]
    r = compress(msgs)
    blocks = r.messages[2]["content"]
    assert json_codec.decode(json.loads(blocks[0]["content"])) == rows
    assert json_codec.decode(json.loads(blocks[1]["content"][0]["text"])) == rows
    assert blocks[2] == msgs[2]["content"][2]
    assert r.messages[:2] == msgs[:2] and r.tokens_saved > 0
    cfg = HeadroomConfig(smart_crusher=SmartCrusherConfig(never_compress_tools=("search",)))
    assert compress(msgs, config=cfg).messages == msgs


def test_configured_scorer_reaches_the_json_cuts() -> None:
    from headroom_core import RelevanceScorerConfig
    from headroom_core.relevance import EmbeddingScorer, embedding_available
    from headroom_core.transforms import build_transforms

    def crusher(kind: str) -> object:
        router = build_transforms(
            HeadroomConfig(relevance=RelevanceScorerConfig(scorer_type=kind))
        )[1]
        return router.compressors[0]

    assert crusher("auto").scorer is None and crusher("bm25").scorer is None  # BM25, no torch
    if not embedding_available():
        pytest.skip(
            'the embeddings extra is not installed (pip install "headroom-context[embeddings]")'
        )
    assert isinstance(crusher("embedding").scorer, EmbeddingScorer)


def test_what_the_model_fetched_back_is_never_cut_again() -> None:
    big = json.dumps([{"id": i, "name": f"n{i}", "v": "x" * 40} for i in range(300)], indent=2)
    msgs = [
        {"role": "user", "content": "show everything"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "r",
                    "type": "function",
                    "function": {"name": "headroom_retrieve", "arguments": '{"ref": "abc"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "r", "content": big},
    ]
    assert compress(msgs).messages[2]["content"] == big


def test_pipeline_refuses_what_is_not_a_transform() -> None:
    class NoAllowance:  # duck-typed, without grow_allowance
        name = "x"

        def apply(self, messages: list, ctx: TransformContext) -> list:
            return messages

    with pytest.raises(ConfigError, match=r"transform 1 \(NoAllowance\) is not a Transform"):
        TransformPipeline([JSONCompactor(), NoAllowance()])  # type: ignore[list-item]
    assert JSONCompactor().grow_allowance == 0


@pytest.mark.parametrize(
    "kwargs, fitter",
    [
        ({}, "rolling_window"),
        ({"intelligent_context": {"enabled": True}}, "intelligent_context"),
        ({"rolling_window": {"enabled": False}}, "none"),
        ({"fitter": "none"}, "none"),
        ({"fitter": "intelligent_context"}, "intelligent_context"),
        # an explicit choice wins over the reference's flags
        ({"fitter": "rolling_window", "intelligent_context": {"enabled": True}}, "rolling_window"),
    ],
)
def test_fitter_is_one_choice(kwargs: dict, fitter: str) -> None:
    from headroom_core.config import IntelligentContextConfig
    from headroom_core.transforms import build_transforms

    config = HeadroomConfig(**kwargs)
    assert config.fitter == fitter
    names = [t.name for t in build_transforms(config)]
    fitters = [n for n in names if n in ("rolling_window", "intelligent_context")]
    assert fitters == ([] if fitter == "none" else [fitter])
    again = HeadroomConfig(**config.model_dump())  # a dump round-trips to the same choice
    assert again.fitter == fitter
    flag = HeadroomConfig(intelligent_context=IntelligentContextConfig(enabled=True))
    assert flag.fitter == "intelligent_context"


def test_fitter_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="HeadroomConfig.fitter"):
        HeadroomConfig(fitter="trim")  # type: ignore[arg-type]


def test_max_tokens_is_honoured_without_a_fitter() -> None:
    """A budget is a budget: with fitter='none' an explicit max_tokens the request cannot meet
    is a BudgetError saying why, never a silently oversize request (issue 19)."""
    msgs = request(json.dumps(ROWS, indent=2))
    none = HeadroomConfig(fitter="none")
    fits = compress(msgs, config=none, max_tokens=10_000)
    assert fits.tokens_after <= 10_000
    with pytest.raises(BudgetError, match="fitter is 'none'") as info:
        compress(msgs, config=none, max_tokens=20)
    assert info.value.budget_tokens == 20 and info.value.protected_tokens > 20
    flags = HeadroomConfig(rolling_window={"enabled": False})  # the reference's way to say none
    with pytest.raises(BudgetError, match="max_tokens=20"):
        compress(msgs, config=flags, max_tokens=20)

"""The contract every transform honours (and the default pipeline as a whole).

Every run must also report no failure: the pipeline undoes a transform that raises (and a
tool output whose compressor raises stays as it was), so unchanged output alone would hide
a transform that fails on every input.

For each transform in the registry, on the bundled example, on the real conversations in
../shared/data and on generated histories:
- tool calls and their results stay paired and in order;
- user, assistant and system text is never changed;
- malformed tool output (broken JSON) passes through byte-for-byte;
- output tokens never exceed input tokens;
- the same input gives byte-identical output, and compressing the output changes nothing;
- the input list and its dicts are not mutated.

The answer-safe paths run through it too: a table over the lossless threshold with a
question, a colour build log, and an oversize output under a per-tool ``max_tokens``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headroom_core import (
    HeadroomConfig,
    SmartCrusherConfig,
    Tokenizer,
    TransformPipeline,
    TransformResult,
)
from headroom_core.messages import content_text, pairing_is_valid
from headroom_core.transforms import REGISTRY, CacheAligner, RollingWindow, json_codec
from headroom_core.transforms.smart_crusher import SmartCrusher

from ..conftest import load_conversations

CONFIG = HeadroomConfig()
TOKENIZER = Tokenizer("gpt-4o")


# Fitters drop whole messages under a budget; their contract is in test_fitting.py. Here
# (no window given) they must leave the request alone, which the default pipeline checks.
FITTERS = frozenset({"rolling_window", "intelligent_context"})


def _pipelines() -> dict[str, TransformPipeline]:
    out = {
        name: TransformPipeline([make(CONFIG)])
        for name, (_, make) in REGISTRY.items()
        if name not in FITTERS
    }
    out["default"] = TransformPipeline([make(CONFIG) for _, make in REGISTRY.values()])
    # SmartCrusher as a pipeline step of its own, and the reference API's pipeline.
    out["smart_crusher_step"] = TransformPipeline([SmartCrusher(CONFIG.smart_crusher)])
    out["reference"] = TransformPipeline([SmartCrusher(), CacheAligner(), RollingWindow()])
    return out


PIPELINES = _pipelines()
Run = Callable[[list[dict[str, Any]]], TransformResult]


def _runs() -> list[tuple[str, Run]]:
    return [
        (name, lambda msgs, p=p: p.transform(msgs, tokenizer=TOKENIZER, config=CONFIG))
        for name, p in PIPELINES.items()
    ]


SYSTEM_ROLES = ("system", "developer")
# The CacheAligner moves dynamic sentences within system messages, for a few tokens.
ALLOWANCE = CacheAligner(CONFIG.cache_aligner).grow_allowance


def _frozen_text(messages: list[dict[str, Any]]) -> list[Any]:
    return [
        (m.get("role"), m.get("content"), m.get("tool_calls"), m.get("name"))
        for m in messages
        if m.get("role") not in ("tool", *SYSTEM_ROLES)
    ]


def _system_words(messages: list[dict[str, Any]]) -> list[list[str]]:
    """The words of each system message, sorted: moving a sentence keeps every word."""
    words = []
    for m in messages:
        if m.get("role") in SYSTEM_ROLES:
            text = content_text(m).replace(CONFIG.cache_aligner.dynamic_tail_separator, " ")
            words.append(sorted(re.findall(r"[\w.:-]+", text)))
    return words


def _tool_ids(messages: list[dict[str, Any]]) -> list[Any]:
    return [(m.get("role"), m.get("tool_call_id")) for m in messages]


def check_contract(run: Run, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    snapshot = copy.deepcopy(messages)
    result = run(messages)
    assert result.failures == (), f"a transform failed: {result.failures}"
    out = result.messages
    assert messages == snapshot, "input was mutated"
    assert _tool_ids(out) == _tool_ids(messages), "tool pairing or order changed"
    if pairing_is_valid(messages, allow_pending=True):
        assert pairing_is_valid(out, allow_pending=True)
    assert _frozen_text(out) == _frozen_text(messages), "user/assistant text changed"
    assert _system_words(out) == _system_words(messages), "system text lost or gained words"
    assert TOKENIZER.count_messages(out) <= TOKENIZER.count_messages(messages) + ALLOWANCE
    again = run(copy.deepcopy(messages)).messages
    assert json.dumps(again, sort_keys=True) == json.dumps(out, sort_keys=True), "not deterministic"
    assert run(out).messages == out, "not idempotent"
    return out


@pytest.mark.parametrize("name,run", _runs())
def test_contract_on_bundled_example(name: str, run: Run, example_history: list) -> None:
    out = check_contract(run, example_history)
    if name != CacheAligner.name:  # which moves, never shrinks
        assert TOKENIZER.count_messages(out) < TOKENIZER.count_messages(example_history)


@pytest.mark.parametrize("name,run", _runs())
@pytest.mark.parametrize("conv", load_conversations() or [("absent", [])], ids=lambda c: c[0])
def test_contract_on_real_conversations(name: str, run: Run, conv: tuple[str, list]) -> None:
    if conv[0] == "absent":
        pytest.skip("../shared/data/conversations not found")
    check_contract(run, conv[1])


MALFORMED = [
    '{"items": [1, 2,',
    "{'single': 'quotes'}",
    '{"a": 1, "a": 2}',
    "[NaN, Infinity]",
    '{"big": 123456789012345678901234567890}',
    "plain text that mentions {braces} and [brackets]",
    "",
]


@pytest.mark.parametrize("name,run", _runs())
@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_tool_output_passes_through_unchanged(name: str, run: Run, text: str) -> None:
    messages = [
        {"role": "user", "content": '{"user": "json stays"}'},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "t", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": text},
    ]
    out = check_contract(run, messages)
    assert out[2]["content"] == text


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5)
    ),
    max_leaves=30,
)


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": draw(st.text(max_size=40))}]
    for turn in range(draw(st.integers(1, 4))):
        msgs.append({"role": "user", "content": draw(st.text(max_size=40))})
        ids = [f"call_{turn}_{k}" for k in range(draw(st.integers(0, 3)))]
        if ids:
            msgs.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": i,
                            "type": "function",
                            "function": {"name": "tool", "arguments": "{}"},
                        }
                        for i in ids
                    ],
                }
            )
            for i in ids:
                value = draw(json_values)
                indent = draw(st.sampled_from([None, 2]))
                text = draw(
                    st.sampled_from(
                        [json.dumps(value, indent=indent), json.dumps(value)[:-1] or "{"]
                    )
                )
                msgs.append({"role": "tool", "tool_call_id": i, "content": text})
        msgs.append({"role": "assistant", "content": draw(st.text(max_size=40))})
    return msgs


@pytest.mark.parametrize("name,run", _runs())
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(messages=histories())
def test_contract_on_generated_histories(name: str, run: Run, messages: list) -> None:
    out = check_contract(run, messages)
    for before, after in zip(messages, out, strict=True):
        if before.get("role") == "tool" and after["content"] != before["content"]:
            if "__headroom_truncated" in after["content"] or "chars cut; ref=" in after["content"]:
                continue  # a lossy cut: the marker-walk test checks its ref restores the original
            # otherwise a lossless form: the documented decoder restores the data exactly
            assert json_codec.decode(json.loads(after["content"])) == json.loads(before["content"])


class _Raises:
    name = "raises"

    def detect(self, text: str) -> bool:
        return True

    def compress(self, text: str, ctx: Any) -> Any:
        raise RuntimeError("boom")


def test_contract_sees_a_compressor_that_always_raises(example_history: list) -> None:
    """The pipeline keeps the output unchanged when every tool output fails; the contract
    must still fail the run, through its failures."""
    from headroom_core.transforms import ToolOutputRouter

    router = ToolOutputRouter(CONFIG.smart_crusher)
    router.compressors = [_Raises()]
    pipeline = TransformPipeline([router])

    def run(msgs: list[dict[str, Any]]) -> TransformResult:
        return pipeline.transform(msgs, tokenizer=TOKENIZER, config=CONFIG)

    assert run(example_history).messages == example_history
    with pytest.raises(AssertionError, match="a transform failed"):
        check_contract(run, example_history)


def test_one_failing_tool_output_leaves_the_others_compressed() -> None:
    """The fail-open boundary is per tool output: one text a compressor cannot handle stays
    as it was (recorded), the others are still compressed."""
    rows = [{"id": i, "status": "ok", "latency_ms": 40 + i} for i in range(60)]
    pretty = json.dumps(rows, indent=2)
    hostile = json.dumps({"poison": True, "rows": rows}, indent=2)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Which requests were slow?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": f"c{k}", "type": "function", "function": {"name": "q", "arguments": "{}"}}
                for k in range(3)
            ],
        },
        {"role": "tool", "tool_call_id": "c0", "content": pretty},
        {"role": "tool", "tool_call_id": "c1", "content": hostile},
        {"role": "tool", "tool_call_id": "c2", "content": pretty},
    ]
    crusher = SmartCrusher(CONFIG.smart_crusher)
    real = crusher.compress

    def compress(text: str, ctx: Any) -> Any:
        if "poison" in text:
            raise ValueError("cannot handle this value")
        return real(text, ctx)

    crusher.compress = compress  # type: ignore[method-assign]
    result = TransformPipeline([crusher]).transform(messages, tokenizer=TOKENIZER, config=CONFIG)
    out = result.messages
    assert out[3]["content"] == hostile
    assert len(out[2]["content"]) < len(pretty) and len(out[4]["content"]) < len(pretty)
    assert len(result.failures) == 1
    assert result.failures[0].startswith("tool output of message 3 (q): ValueError")
    assert result.transforms_applied == ("smart_crusher:2",)


# ---- the answer-safe paths (issue 12): a table over the lossless threshold with a question,
# a colour build log, an oversize output under a per-tool budget ---------------------------

BUILD_LOGS = Path(__file__).resolve().parents[1] / "data" / "build_logs"
BUDGET = 600
BUDGET_CONFIG = HeadroomConfig(
    smart_crusher=SmartCrusherConfig(tool_profiles={"fetch_logs": {"max_tokens": BUDGET}})
)


def _budget_runs() -> list[tuple[str, Run]]:
    pipelines = {
        "tool_outputs": TransformPipeline([REGISTRY["tool_outputs"][1](BUDGET_CONFIG)]),
        "default": TransformPipeline([make(BUDGET_CONFIG) for _, make in REGISTRY.values()]),
    }
    return [
        (name, lambda msgs, p=p: p.transform(msgs, tokenizer=TOKENIZER, config=BUDGET_CONFIG))
        for name, p in pipelines.items()
    ]


def _one_call(question: str, tool: str, output: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You answer from the tool results."},
        {"role": "user", "content": question},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": tool, "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": output},
    ]


def _race_table(n: int) -> str:
    riders = [
        {"Pos": str(i + 1), "Rider": f"Rider {i:03d}", "Team": ("Honda", "Yamaha")[i % 2],
         "Points": str(max(0, 60 - i))}
        for i in range(n)
    ]  # fmt: skip
    riders[41]["Rider"] = "Sebastian Porto"
    return json.dumps(riders, indent=2)


@pytest.mark.parametrize("name,run", _runs())
def test_contract_on_a_table_over_the_threshold_with_a_question(name: str, run: Run) -> None:
    table = _race_table(160)
    messages = _one_call("who came immediately after sebastian porto?", "query_table", table)
    out = check_contract(run, messages)
    if name in ("tool_outputs", "default"):
        rows = json_codec.decode(json.loads(out[3]["content"]))
        original = json.loads(table)
        assert original[41] in rows and original[42] in rows
        assert "omitted_stats" in out[3]["content"]


@pytest.mark.parametrize("name,run", _runs())
def test_contract_on_a_colour_build_log(name: str, run: Run) -> None:
    with (BUILD_LOGS / "pytest_tty.log").open(encoding="utf-8", newline="") as fh:
        log = fh.read()
    out = check_contract(run, _one_call("why did the tests fail?", "run_tests", log))
    if name in ("tool_outputs", "default"):
        assert "\x1b" not in out[3]["content"]


@pytest.mark.parametrize("name,run", _budget_runs())
def test_contract_on_an_oversize_output_with_a_budget(name: str, run: Run) -> None:
    with (BUILD_LOGS / "npm_install.log").open(encoding="utf-8", newline="") as fh:
        log = fh.read()
    assert TOKENIZER.count_text(log) > 20 * BUDGET
    out = check_contract(run, _one_call("which packages failed?", "fetch_logs", log))
    assert TOKENIZER.count_text(out[3]["content"]) <= BUDGET


# --- compaction points: a growing coding-agent session through the default pipeline ---

_POINTER = re.compile(r"^\[headroom: superseded output .*ref=([0-9a-f]{32})\]$")


def _edit_session(rounds: int) -> list[dict[str, Any]]:
    """Read a file, edit it, run the tests, again and again: stale reads pile up."""
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Make the tests pass."},
    ]
    for r in range(rounds):
        path = f"/src/mod{r % 3}.py"
        view = "\n".join(f"{n:>6}\u2192{path}:{r} = f({n})" for n in range(1, 300))
        for name, args, output in (
            ("Read", {"file_path": path}, view),
            ("Edit", {"file_path": path, "old_string": "f"}, f"The file {path} has been updated."),
            ("Bash", {"command": "pytest -q"}, f"{r} passed, 1 failed\nFAILED test_{r}"),
        ):
            cid = f"c{len(msgs)}"
            call = {
                "id": cid,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            msgs.append({"role": "assistant", "content": None, "tool_calls": [call]})
            msgs.append({"role": "tool", "tool_call_id": cid, "content": output})
    return msgs


def test_contract_between_and_at_compaction_points() -> None:
    """Every request of a growing session keeps the contract; between compaction points it
    repeats the previous request byte for byte; at one, the pipeline reports it; every
    pointer's ref gives back the exact original."""
    from headroom_core.ccr import retrieve
    from headroom_core.transforms._compaction import boundaries

    config = HeadroomConfig(compaction={"min_saving_tokens": 1500})
    pipeline = TransformPipeline([make(config) for _, make in REGISTRY.values()])

    def run(msgs: list[dict[str, Any]]) -> TransformResult:
        return pipeline.transform(msgs, tokenizer=TOKENIZER, config=config)

    session = _edit_session(9)
    previous: list[dict[str, Any]] | None = None
    points = 0
    for end in boundaries(session):
        request = session[:end]
        out = check_contract(run, request)
        if previous is not None and out[: len(previous)] != previous:
            assert any(t.startswith("superseded:") for t in run(request).transforms_applied)
            points += 1
        for i, m in enumerate(out):
            found = _POINTER.match(content_text(m))
            if found:
                assert retrieve(found.group(1)) == request[i]["content"]
        previous = out
    assert points >= 2

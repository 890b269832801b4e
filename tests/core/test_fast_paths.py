"""The shortcuts that make 50 MB inputs fast give the same answers as the plain code.

Each shortcut is checked against a straightforward reference written here (the code it
replaced), on generated inputs: BM25 scoring only the items that hold a query term, the
length of a text's terms without building them, the named-row prefilter on each row's
JSON, the quick refusals before number parsing, the table encoder's scalar-list path,
the change-point scores, the lower bounds that spare SmartCrusher exact counts, the
garbage collector paused over a large input, and the prose compressor's chunked sentence
scoring, must-keep search and abbreviation check.
"""

from __future__ import annotations

import gc
import math
from collections import Counter
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_core import text as text_module
from headroom_core.config import SmartCrusherConfig
from headroom_core.relevance import bm25
from headroom_core.relevance.bm25 import STOPWORDS, BM25Scorer, tokenize
from headroom_core.transforms import _conditions, _lossless, _select, json_codec, text_compressor
from headroom_core.transforms._conditions import Table, cell_number
from headroom_core.transforms._crush import value_texts
from headroom_core.transforms._question import parse_question
from headroom_core.transforms.smart_crusher import SmartCrusher

# Words that exercise the term rules: compound ids, separators at edges, case, accents,
# digits, floats, stopwords.
WORDS = [
    "alpha",
    "Beta",
    "dep-1027",
    "src/app.py",
    "us-east-1",
    "a.b.",
    "-x-",
    "v1.2.3",
    "Zürich",
    "zurich",
    "ÉCOLE",
    "the",
    "of",
    "error",
    "42",
    "3.14",
    "1e-05",
    "0.00001",
    "1,234",
    "$12",
    "user_7",
    "k:v",
    "::",
    "İstanbul",
    "ΟΔΟΣ",
    "naïve",
    "\n",
    '"q"',
]
texts = st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join)


def reference_bm25(items: list[str], query: str, k1: float = 1.5, b: float = 0.75) -> list[float]:
    """BM25 as it was: every item tokenised and counted."""
    q_terms = [t for t in dict.fromkeys(tokenize(query)) if t not in STOPWORDS]
    if not items or not q_terms:
        return [0.0] * len(items)
    docs = [Counter(tokenize(item)) for item in items]
    n = len(docs)
    avg_len = sum(sum(d.values()) for d in docs) / n or 1.0
    df = {t: sum(1 for d in docs if t in d) for t in q_terms}
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in q_terms}
    raw = []
    for doc in docs:
        length = sum(doc.values())
        score = 0.0
        for t in q_terms:
            tf = doc.get(t, 0)
            if tf:
                score += idf[t] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_len))
        raw.append(score)
    best = max(raw)
    return [s / best if best > 0 else 0.0 for s in raw]


@settings(max_examples=300, deadline=None)
@given(st.lists(texts, max_size=20), texts)
def test_bm25_scores_only_candidates_with_the_same_result(items: list[str], query: str) -> None:
    assert BM25Scorer().score_items(items, query) == reference_bm25(items, query)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_term_length_without_building_the_terms(text: str) -> None:
    low = text.lower()
    assert bm25._length(low) == len(bm25._terms(low)) == len(tokenize(text))


# ---- named rows: the prefilter on each row's JSON --------------------------------------

cell_values = st.one_of(
    st.sampled_from(WORDS),
    texts,
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([1e-05, -1e-07, 2.5e-06, 1e16, 1.5e17, 0.0001, 100.0]),
    st.booleans(),
    st.none(),
)
rows = st.lists(
    st.fixed_dictionaries(
        {"name": cell_values, "value": cell_values},
        optional={
            "tags": st.lists(cell_values, max_size=3),
            "meta": st.dictionaries(st.sampled_from(["a", "b"]), cell_values, max_size=2),
        },
    ),
    min_size=1,
    max_size=12,
)
questions = st.lists(
    st.sampled_from(
        [*WORDS, "which", "what is", "05", "07", "1e", "5e", "zurich", "user", "name", "meta", "a"]
    ),
    min_size=1,
    max_size=6,
).map(lambda ws: " ".join(ws) + "?")


@settings(max_examples=400, deadline=None)
@given(rows, questions)
def test_named_rows_prefilter_selects_the_same_rows(items: list[dict[str, Any]], q: str) -> None:
    question = parse_question(q)
    table = Table(items)
    row_texts = [orjson.dumps(it).decode() for it in items]
    plain = _conditions._named_rows(question, table)
    assert _conditions._named_rows(question, table, row_texts) == plain
    # SmartCrusher looks in the values alone (a column name in every row's keys is no hint)
    assert _conditions._named_rows(question, table, value_texts(items)) == plain


def test_small_floats_are_found_by_their_python_words() -> None:
    # str(1e-05) is "1e-05" (words 1e, 05); orjson writes 0.00001: the row must still be seen
    items = [{"x": 1e-05}, *({"x": float(i)} for i in range(1, 10))]
    question = parse_question("which row has 05?")
    texts_ = [orjson.dumps(it).decode() for it in items]
    assert _conditions._named_rows(question, Table(items), texts_) == {0}


# ---- numbers ---------------------------------------------------------------------------


def reference_as_number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and len(v) < 32:
        try:
            f = float(v)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


numberish = st.one_of(
    st.text(alphabet=" +-.0123456789eE_naifty\u2212$%,\u0663", max_size=8),
    st.sampled_from(["nan", "inf", "-Infinity", " 12 ", "1_000", "\u0663", ".5", "$12", "45%"]),
    st.integers(),
    st.floats(),
    st.booleans(),
)


@settings(max_examples=500, deadline=None)
@given(numberish)
def test_number_parsing_refuses_early_with_the_same_result(v: Any) -> None:
    got, want = _select._as_number(v), reference_as_number(v)
    assert got == want or (
        got is not None and want is not None and math.isnan(got) and math.isnan(want)
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(numberish, max_size=15))
def test_column_numbers_match_cell_number(values: list[Any]) -> None:
    table = Table([{"c": v} for v in values])
    for col in table.columns.values():
        want = {}
        for i, v in zip(col.at, col.values, strict=True):
            x = cell_number(v)
            if x is not None and math.isfinite(x):
                want[i] = x
        assert col.numbers == want


# ---- the table encoder and change points ----------------------------------------------

scalars = st.one_of(
    st.integers(-3, 3), st.sampled_from([0.0, -0.0, 1.0, True, False, None, "a", "b", ""])
)


def reference_repeats(items: list[Any]) -> list[Any]:
    """The repeat form as it was: runs found by comparing serialised values."""
    keys = [orjson.dumps(v) for v in items]
    out: list[Any] = []
    i = 0
    while i < len(items):
        j = i + 1
        while j < len(items) and keys[j] == keys[i]:
            j += 1
        if j - i >= 3:
            out.append({json_codec.REPEAT: j - i, "value": items[i]})
        else:
            out.extend(items[i:j])
        i = j
    return out


@settings(max_examples=500, deadline=None)
@given(st.lists(scalars, max_size=10))
def test_scalar_lists_encode_as_before(items: list[Any]) -> None:
    encoded = json_codec.encode(items)
    assert orjson.dumps(encoded) == orjson.dumps(reference_repeats(items))
    assert orjson.dumps(json_codec.decode(encoded)) == orjson.dumps(items)


def reference_shift_scores(nums: list[float], w: int, scale: float) -> list[tuple[int, float]]:
    out = []
    for j in range(w, len(nums) - w + 1):
        before, after = nums[j - w : j], nums[j : j + w]
        mb, ma = sum(before) / w, sum(after) / w
        var = (sum((x - mb) ** 2 for x in before) + sum((x - ma) ** 2 for x in after)) / (2 * w)
        out.append((j, abs(ma - mb) / (math.sqrt(var) + scale)))
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=11, max_size=60))
def test_change_point_scores_are_the_same_floats(nums: list[float]) -> None:
    scale = 1e-9 + 0.001 * (max(nums) - min(nums))
    assert _select._shift_scores(nums, 5, scale) == reference_shift_scores(nums, 5, scale)


# ---- SmartCrusher's counts: bounds first, exact counts only where they decide ----------

records = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.integers(0, 10**6),
            "status": st.sampled_from(["ok", "failed", "pending"]),
            "note": st.sampled_from(WORDS),
        }
    ),
    min_size=0,
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(records, st.sampled_from([None, "which id failed?", "pending dep-1027"]))
def test_lower_bounds_choose_what_exact_counts_choose(
    data: list[dict[str, Any]], query: str | None
) -> None:
    # thresholds low enough that the cut is in play on these small arrays
    crusher = SmartCrusher(SmartCrusherConfig(lossless_below_tokens=50, min_tokens_to_crush=20))
    bounded = crusher.crush(data, query)
    with mock.patch.object(_lossless, "MAX_TOKEN_CHARS", 10**12):  # bounds 0: always counted
        exact = crusher.crush(data, query)
    assert (bounded.text, bounded.tokens_after, bounded.lossy) == (
        exact.text,
        exact.tokens_after,
        exact.lossy,
    )


def test_the_cut_is_in_play_under_those_thresholds() -> None:
    data = [{"id": i * 7919 % 1000003, "status": "ok", "note": f"w{i}"} for i in range(80)]
    crusher = SmartCrusher(SmartCrusherConfig(lossless_below_tokens=50, min_tokens_to_crush=20))
    assert crusher.crush(data, "which id failed?").lossy


def test_a_bound_never_exceeds_the_count() -> None:
    forms = _lossless.LosslessForms([{"k": "x" * 5000}], '[{"k":"' + "x" * 5000 + '"}]', len)
    seen: list[int] = []
    forms.tokens_satisfy(lambda t: seen.append(t) or False)
    assert seen[0] <= seen[-1]


# ---- the collector, paused over a large input only -------------------------------------


def test_the_collector_is_paused_for_large_inputs_and_resumed_after() -> None:
    from headroom_core import _gc

    assert gc.isenabled()
    with _gc.paused(_gc.PAUSE_MIN_CHARS):
        assert not gc.isenabled()
    assert gc.isenabled()
    with _gc.paused(10):
        assert gc.isenabled()
    with pytest.raises(RuntimeError), _gc.paused(_gc.PAUSE_MIN_CHARS):
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with _gc.paused(_gc.PAUSE_MIN_CHARS):
            pass
        assert not gc.isenabled()  # the application's choice stays
    finally:
        gc.enable()


# ---- prose: sentence scoring, must-keep sentences, abbreviations ------------------------

PROSE_WORDS = [
    "The", "hotel", "is", "owned", "by", "MGM", "Resorts", "owner", "owns", "it", "was",
    "returned", "returns", "dep-1027", "us-east-1", "42", "3.5", "Dr.", "etc.", "J.", "e.g.",
    "approx.", "Paris", "İstanbul", "été", "Σίσυφος", "the", "and", "of", "will", "wills",
]  # fmt: skip

prose_sentences = st.lists(
    st.lists(st.sampled_from(PROSE_WORDS), min_size=1, max_size=12).map(
        lambda ws: " ".join(ws).capitalize() + "."
    ),
    min_size=1,
    max_size=700,  # more than two chunks
)
prose_queries = st.sampled_from(
    [None, "", "who owns the hotel?", "Which owner returned dep-1027?", "what of the", "İstanbul été",
     "Is MGM Resorts in Paris?", "wills"]
)  # fmt: skip


def reference_scores(sentences: list[str], units: list[Any], query: str | None) -> list[float]:
    terms = text_compressor._terms(query or "")
    if not terms:
        return [0.0] * len(sentences)
    base = BM25Scorer().score_items([text_compressor._terms(s) for s in sentences], terms)
    out = list(base)
    for i in range(1, len(units)):
        if units[i].block == units[i - 1].block:
            out[i] = max(out[i], text_compressor.NEIGHBOUR_WEIGHT * base[i - 1])
            out[i - 1] = max(out[i - 1], text_compressor.NEIGHBOUR_WEIGHT * base[i])
    return out


def reference_must_keep(sentences: list[str], units: list[Any], query: str | None) -> set[int]:
    must = {i for i, u in enumerate(units) if u.fixed}
    if query:
        needles = [p for _, p in text_compressor._query_needles(query)]
        must.update(i for i, s in enumerate(sentences) if any(n.search(s) for n in needles))
    return must


@settings(max_examples=80, deadline=None)
@given(prose_sentences, st.integers(1, 9), prose_queries)
def test_prose_scores_and_must_keep_match_the_plain_loops(
    sentences: list[str], per_block: int, query: str | None
) -> None:
    text = "\n\n".join(
        " ".join(sentences[a : a + per_block]) for a in range(0, len(sentences), per_block)
    )
    units = text_compressor._segment(text)
    spans = [text[u.start : u.end] for u in units]
    assert text_compressor._scores(spans, units, query) == reference_scores(spans, units, query)
    assert text_compressor._must_keep(spans, units, query) == reference_must_keep(
        spans, units, query
    )


def reference_is_abbreviation(text: str, begin: int, dot: int) -> bool:
    word_start = max(text.rfind(" ", begin, dot), text.rfind("\n", begin, dot)) + 1
    word = text[max(word_start, begin) : dot + 1].lstrip(text_module._OPENERS)
    return bool(text_module._ABBREVIATION.fullmatch(word[:-1])) or bool(
        text_module._INITIALS.fullmatch(word)
    )


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aeJDrStcſ\u212aİ.\"'( \n", max_size=30))
def test_the_abbreviation_shortcut_matches_the_patterns(text: str) -> None:
    for dot in (i for i, c in enumerate(text) if c == "."):
        assert text_module._is_abbreviation(text, 0, dot) == reference_is_abbreviation(text, 0, dot)


# ---- SmartCrusher's passes: flat records as they are, what passes share computed once ---

crush_rows = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.integers(0, 10**4),
            "status": st.sampled_from(["ok", "failed", "pending", "x" * 90]),
            "amount": st.floats(0, 100, allow_nan=False),
        },
        optional={
            "tags": st.lists(st.sampled_from(WORDS), max_size=4),
            "a_url": st.just("https://example.com/a"),
            "b_url": st.just("https://example.com/b"),
            "c_url": st.just("https://example.com/c"),
            "nested": st.fixed_dictionaries({"k": st.sampled_from(WORDS)}),
        },
    ),
    min_size=0,
    max_size=60,
)


def _fresh_memo(self: Any, what: str, owner: object, compute: Any) -> Any:
    return compute()


@settings(max_examples=60, deadline=None)
@given(
    crush_rows,
    st.sampled_from([None, "which id failed?", "What is the total amount?", "pending a_url"]),
    st.sampled_from([None, 150, 400]),
)
def test_crush_passes_match_the_plain_walk(
    data: list[dict[str, Any]], query: str | None, budget: int | None
) -> None:
    from headroom_core.tokens import get_tokenizer
    from headroom_core.transforms._content import ContentContext
    from headroom_core.transforms._crush import Crush

    cfg = SmartCrusherConfig(lossless_below_tokens=50, min_tokens_to_crush=20, max_string_chars=64)
    text = orjson.dumps(data).decode()

    def run() -> Any:
        crusher = SmartCrusher(cfg)
        ctx = ContentContext(get_tokenizer().count_text, cfg, crusher.store, query, None)
        ctx.budget_tokens = budget
        out = crusher.compress(text, ctx)
        return None if out is None else (out.text, out.lossy, out.dropped)

    fast = run()
    with (
        mock.patch.object(Crush, "_plain", lambda self, values: False),
        mock.patch.object(Crush, "_memo", _fresh_memo),
    ):
        assert run() == fast

"""The question-conditions parser (_question), the row matcher (_conditions), the marker's
column statistics, and what SmartCrusher keeps of a table above the lossless threshold:
one test per condition kind."""

from __future__ import annotations

import json
from typing import Any

import pytest

from headroom_core import SmartCrusherConfig
from headroom_core.ccr import MemoryOriginalStore, retrieve
from headroom_core.tokens import get_tokenizer
from headroom_core.transforms import json_codec
from headroom_core.transforms._conditions import Table, cell_number, select_rows
from headroom_core.transforms._content import ContentContext
from headroom_core.transforms._question import parse_question
from headroom_core.transforms._select import column_stats
from headroom_core.transforms.smart_crusher import SmartCrusher

TOK = get_tokenizer("gpt-4o")
RIDERS = [
    "Loris Capirossi", "Valentino Rossi", "Jeremy McWilliams", "Tohru Ukawa", "Shinya Nakano",
    "Ralf Waldmann", "Franco Battaini", "Stefano Perugini", "Jason Vincent", "Anthony West",
    "Alex Hofmann", "Sebastian Porto", "Tomomi Manako", "Masaki Tokudome", "Jarno Janssen",
    "Luca Boscoscuro", "Johann Stigefelt", "Julien Allemand", "Fonsi Nieto", "David Garcia",
]  # fmt: skip
MAKERS = ("Honda", "Aprilia", "Yamaha", "TSR-Honda")


def race(repeat: int = 1) -> list[dict[str, str]]:
    """A WikiTableQuestions-like table: every cell a string, as the data set has them."""
    rows = []
    for k in range(repeat):
        for i, rider in enumerate(RIDERS):
            pos = k * len(RIDERS) + i + 1
            rows.append(
                {
                    "Pos": str(pos),
                    "Rider": rider if k == 0 else f"{rider} {k}",
                    "Manufacturer": MAKERS[(i * 7 + k) % 4],
                    "Year": str(1990 + (i * 3 + k) % 25),
                    "Date": f"{1 + i % 28} {['March', 'June', 'August', 'October'][i % 4]} 2001",
                    "Points": str(max(0, 25 - i)) if i < 18 else "",
                    "Capacity": f"{(i * 3779 + k * 11) % 40000:,}",
                }
            )
    return rows


def selected(question: str, rows: list[dict[str, Any]]) -> set[int]:
    return set(select_rows(parse_question(question), rows).rows)


# ---- parser: one test per condition kind ------------------------------------------------


def test_named_value_selects_every_row_holding_it_case_insensitively() -> None:
    rows = race()
    assert selected("what manufacturer did SEBASTIAN PORTO ride?", rows) == {11}
    honda = {i for i, r in enumerate(rows) if r["Manufacturer"] == "Honda"}
    assert selected("how many riders rode a honda?", rows) >= honda


def test_a_rare_word_or_its_prefix_names_rows() -> None:
    rows = race()
    assert 11 in selected("where did porto finish?", rows)  # "Sebastian Porto"
    assert 4 in selected("how did nakan do?", rows)  # a prefix: "Nakano"


@pytest.mark.parametrize(
    "question, offsets",
    [
        ("who came immediately after sebastian porto in the race?", (1,)),
        ("who finished right before sebastian porto?", (-1,)),
        ("who was next to sebastian porto?", (-1, 1)),
    ],
)
def test_neighbours_of_a_named_row(question: str, offsets: tuple[int, ...]) -> None:
    rows = race()
    assert parse_question(question).neighbours
    got = selected(question, rows)
    assert {11 + d for d in offsets} <= got and 11 in got


def test_between_two_named_rows_selects_the_span() -> None:
    rows = race()
    got = selected("how many riders finished between ralf waldmann and alex hofmann?", rows)
    assert set(range(5, 11)) <= got


@pytest.mark.parametrize(
    "question, op, low, high, kind",
    [
        ("how many riders scored over 16 points?", ">", 16, None, "number"),
        ("which riders scored smaller than 107.7?", "<", 107.7, None, "number"),
        ("how many seasons came after 1936?", ">", 1936, None, "year"),
        ("what happened before 2010?", "<", 2010, None, "year"),
        ("who scored at least 10,000?", ">=", 10000, None, "number"),
        ("who scored 5 or more goals?", ">=", 5, None, "number"),
        ("at most 3 wins", "<=", 3, None, "number"),
        ("who scored between 3 and 5 goals?", "range", 3, 5, "number"),
        ("how many were released in the 1990s?", "range", 1990, 1999, "year"),
        ("how many races took place after august?", ">", 8, None, "month"),
    ],
)
def test_comparisons_are_parsed(
    question: str, op: str, low: float, high: float | None, kind: str
) -> None:
    comparisons = parse_question(question).comparisons
    assert any((c.op, c.low, c.high, c.kind) == (op, low, high, kind) for c in comparisons), (
        comparisons
    )


def test_numeric_comparison_on_the_named_column() -> None:
    rows = race()
    # a superset: "16" also names the rows whose cells are 16 (a named value)
    got = selected("how many riders scored over 16 points?", rows)
    over = {i for i, r in enumerate(rows) if r["Points"] and int(r["Points"]) > 16}
    assert over <= got and got - over <= {9, 15}
    big = selected("how many venues have at least 30,000 capacity?", rows)
    assert big == {i for i, r in enumerate(rows) if int(r["Capacity"].replace(",", "")) >= 30000}


def test_year_and_month_comparisons_read_dates() -> None:
    rows = race()
    after = selected("how many races were held after 2005?", rows)
    later = {i for i, r in enumerate(rows) if int(r["Year"]) > 2005}
    named = {i for i, r in enumerate(rows) if r["Year"] == "2005"}  # and "after" asks for
    assert later <= after and after - later <= {j for i in named for j in (i - 1, i, i + 1)}
    months = selected("how many races took place after august?", rows)
    assert {i for i, r in enumerate(rows) if "October" in r["Date"]} <= months
    assert not {i for i, r in enumerate(rows) if "March" in r["Date"]} <= months


@pytest.mark.parametrize(
    "question, expected",
    [
        ("which rider had the most points?", lambda rows: {0}),
        ("which rider had the least points?", lambda rows: {17}),  # 8 = 25 - 17
        ("who had the second highest points?", lambda rows: {0, 1}),
        ("what is the earliest year?", None),
    ],
)
def test_superlatives_and_ordinals_keep_the_extremes_of_the_named_column(
    question: str, expected: Any
) -> None:
    rows = race()
    got = selected(question, rows)
    if expected is not None:
        assert expected(rows) <= got
    else:
        years = [int(r["Year"]) for r in rows]
        assert {years.index(min(years))} <= got
    sel = select_rows(parse_question(question), rows)
    assert not sel.unresolved and len(got) < len(rows)


def test_first_and_last_without_a_column_are_positions() -> None:
    rows = race()
    assert {0, len(rows) - 1} <= selected("who was the last rider listed?", rows)
    assert {0, 1, 2} <= selected("who were the first 3 riders?", rows)


def test_an_extreme_over_a_count_is_unresolved() -> None:
    rows = race()
    sel = select_rows(parse_question("which manufacturer had the most riders?"), rows)
    assert sel.unresolved  # "most riders" is a count: no column holds it


def test_aggregation_is_flagged() -> None:
    for q in ("how many riders rode a honda?", "what is the total of points?", "average age"):
        assert parse_question(q).aggregate, q
    assert not parse_question("who rode the honda with number 7?").aggregate


def test_at_least_is_a_comparison_not_a_superlative() -> None:
    q = parse_question("how many teams have at least 10000 capacity?")
    assert not q.extremes and q.comparisons[0].op == ">="


def test_cell_numbers() -> None:
    assert cell_number("1,234") == 1234 and cell_number("$12.5") == 12.5
    assert cell_number("45%") == 45 and cell_number("+0.180") == 0.18 and cell_number("12[3]") == 12
    assert cell_number("38:04.730") is None and cell_number(True) is None


# ---- the marker's column statistics -----------------------------------------------------


def test_marker_states_count_min_max_sum_of_each_numeric_column_of_the_omitted_rows() -> None:
    rows = race()
    omitted = [3, 5, 18, 19]
    stats = column_stats(Table(rows), omitted)
    points = [int(rows[i]["Points"]) for i in omitted if rows[i]["Points"]]
    assert stats["Points"] == {"count": 2, "min": min(points), "max": max(points), "sum": 42}
    caps = [int(rows[i]["Capacity"].replace(",", "")) for i in omitted]
    assert stats["Capacity"] == {"count": 4, "min": min(caps), "max": max(caps), "sum": sum(caps)}
    assert "Rider" not in stats and "Manufacturer" not in stats


# ---- what SmartCrusher keeps of a table over the threshold ------------------------------


def crush(rows: list[dict[str, Any]], question: str | None) -> tuple[list[Any], str, Any]:
    store = MemoryOriginalStore()
    sc = SmartCrusher(SmartCrusherConfig(), store)
    text = json.dumps(rows, indent=2)
    result = sc.compress(text, ContentContext(TOK.count_text, sc.config, store, question))
    assert result is not None
    return json_codec.decode(json.loads(result.text)), text, store


def marker(out: list[Any]) -> dict[str, Any] | None:
    last = out[-1]
    return last if isinstance(last, dict) and "__headroom_truncated" in last else None


def test_a_small_table_stays_whole_whatever_the_question() -> None:
    rows = race()  # 20 rows: its table form is under lossless_below_tokens
    out, _, store = crush(rows, "who came immediately after sebastian porto?")
    assert out == rows and len(store) == 0


def test_a_large_table_keeps_the_neighbour_of_a_named_row_and_the_ref_restores_all() -> None:
    rows = race(repeat=8)  # 160 rows
    out, text, store = crush(rows, "who came immediately after sebastian porto?")
    m = marker(out)
    assert m is not None and rows[11] in out and rows[12] in out
    assert retrieve(m["ref"], store=store) == text
    kept = [r for r in out if "Pos" in r]
    assert m["__headroom_truncated"] == len(rows) - len(kept)
    omitted_points = [
        int(r["Points"]) for r in rows if r not in kept and r["Points"]
    ]  # the marker answers a total over what it cut
    assert m["omitted_stats"]["Points"]["sum"] == sum(omitted_points)


def test_a_count_over_a_condition_keeps_every_matching_row() -> None:
    rows = race(repeat=8)
    out, _, _ = crush(rows, "how many riders rode a yamaha?")
    yamaha = [r for r in rows if r["Manufacturer"] == "Yamaha"]
    assert all(r in out for r in yamaha) and marker(out) is not None


def test_a_count_with_no_narrowing_condition_is_not_cut() -> None:
    rows = race(repeat=8)
    out, _, _ = crush(rows, "how many riders are listed?")
    assert out == rows


def test_an_unresolved_extreme_is_not_cut() -> None:
    rows = race(repeat=8)
    out, _, _ = crush(rows, "which manufacturer had the most riders?")
    assert out == rows


def test_a_comparison_keeps_every_row_it_selects() -> None:
    rows = race(repeat=8)
    out, _, _ = crush(rows, "how many riders scored over 20 points?")
    wanted = [r for r in rows if r["Points"] and int(r["Points"]) > 20]
    assert wanted and all(r in out for r in wanted) and marker(out) is not None


def test_a_superlative_keeps_the_extreme_rows() -> None:
    rows = race(repeat=8)
    out, _, _ = crush(rows, "which venue has the largest capacity?")
    caps = [int(r["Capacity"].replace(",", "")) for r in rows]
    assert rows[caps.index(max(caps))] in out and rows[caps.index(min(caps))] in out

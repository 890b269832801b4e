"""Reports: the numbers, both formats, escaping, errors, and the page in a real browser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from headroom_core.errors import ConfigError, StorageError
from headroom_core.metrics import MemoryMetricsStore, RequestMetrics, open_store
from headroom_core.report import generate_report
from headroom_core.report.analysis import ReportData, analyze, bucket_start
from headroom_core.report.markdown import md_text
from headroom_core.report.svg import nice_scale
from tests._browser import open_in_chromium, requires_chromium

SCRIPT = '<script>alert("x")</script>'
IMG = "<img src=x onerror=alert(1)>"
DAY = datetime(2025, 3, 3, tzinfo=timezone.utc)  # a Monday


def _m(n: int, when: datetime, **kw: Any) -> RequestMetrics:
    base: dict[str, Any] = {
        "model": "gpt-4o",
        "mode": "optimize",
        "provider": "openai",
        "source": "client",
    }
    return RequestMetrics(request_id=f"r{n}", timestamp=when, **{**base, **kw})


def _client(prefix: str, aligned: str, **extra: Any) -> dict[str, Any]:
    return {"prefix_hash": prefix, "prefix_hash_aligned": aligned, **extra}


def sample_records() -> list[RequestMetrics]:
    """Nine requests over two ISO weeks, four days, three modes and four sources."""
    a = "a" * 16
    return [
        _m(1, DAY + timedelta(hours=9), tokens_input_before=10_000, tokens_input_after=6_000,
           cost_before=0.025, cost_after=0.015, cached_tokens=2048,
           waste_signals={"json_bloat_tokens": 3000, "whitespace_tokens": 200},
           extra=_client(a, a, prefix_tokens=2048, dynamic_values=0, usage_input_tokens=6000,
                         preview="list the files", latency_ms=812.5)),
        _m(2, DAY + timedelta(hours=10), tokens_input_before=8_000, tokens_input_after=5_000,
           cost_before=0.02, cost_after=0.0125, cached_tokens=4096,
           waste_signals={"json_bloat_tokens": 2000},
           extra=_client(a, a, prefix_tokens=2048, usage_input_tokens=5000)),
        _m(3, DAY + timedelta(days=1, hours=8), mode="audit", provider="anthropic",
           model="claude-sonnet-4-5", tokens_input_before=20_000, tokens_input_after=20_000,
           cached_tokens=0, waste_signals={"html_noise_tokens": 5000, "repetition_tokens": 1000},
           extra=_client("b1" * 8, "bb" * 8, prefix_tokens=3000, dynamic_values=2,
                         usage_input_tokens=20_000, projected_tokens_after=12_000,
                         preview=f"summarise this page {SCRIPT}")),
        _m(4, DAY + timedelta(days=1, hours=9), mode="audit", provider="anthropic",
           model="claude-sonnet-4-5", tokens_input_before=20_000, tokens_input_after=20_000,
           cached_tokens=0, waste_signals={"html_noise_tokens": 1000},
           extra=_client("b2" * 8, "bb" * 8, prefix_tokens=3000, dynamic_values=2,
                         usage_input_tokens=20_000, projected_tokens_after=15_000,
                         preview=f"and this one {IMG}")),
        _m(5, DAY + timedelta(days=1, hours=10), mode="audit", provider="anthropic",
           model="claude-sonnet-4-5", tokens_input_before=20_000, tokens_input_after=20_000,
           error="rate limited <429>",
           extra=_client("b3" * 8, "bc" * 8, prefix_tokens=3000, dynamic_values=2,
                         projected_tokens_after=20_000)),
        _m(6, DAY + timedelta(days=4, hours=1), model="gpt-4o-mini", provider="", source="langchain",
           tokens_input_before=120_000, tokens_input_after=110_000, tokens_output=2000,
           waste_signals={"dynamic_date_tokens": 50}),
        _m(7, DAY + timedelta(days=4, hours=2), mode="off", source="llamaindex",
           tokens_input_before=500, tokens_input_after=500,
           extra={"failures": ["smart_crusher: ValueError: boom"]}),
        _m(8, DAY + timedelta(days=4, hours=3), mode="simulate", source="cli",
           tokens_input_before=3000, tokens_input_after=2000,
           waste_signals={"json_bloat_tokens": 800, "whitespace_tokens": 100}),
        _m(9, DAY + timedelta(days=7, hours=12), tokens_input_before=4000, tokens_input_after=3000,
           cached_tokens=2048, waste_signals=dict.fromkeys(
               ["json_bloat_tokens", "html_noise_tokens", "whitespace_tokens",
                "dynamic_date_tokens", "repetition_tokens"], 0),
           extra=_client(a, a, prefix_tokens=2048, usage_input_tokens=3000)),
    ]  # fmt: skip


@pytest.fixture()
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    with open_store(url) as store:
        for m in sample_records():
            store.record(m)
    return url


def _data(period: str = "day", top: int = 10) -> ReportData:
    return analyze(sample_records(), period=period, top=top, store_label="test")


# --- the numbers -------------------------------------------------------------------------


def test_overview_totals() -> None:
    ov = _data().overview
    assert ov.requests == 9
    # r8, a simulate preview, is a request but no tokens or savings (issue 14)
    assert (ov.tokens_before, ov.tokens_after, ov.tokens_saved) == (202_500, 184_500, 18_000)
    assert ov.savings_percent == pytest.approx(100 * 18_000 / 202_500)
    assert {m.mode: m.requests for m in ov.modes} == {
        "audit": 3,
        "off": 1,
        "optimize": 4,
        "simulate": 1,
    }
    audit = next(m for m in ov.modes if m.mode == "audit")
    assert audit.projected_saved == 8000 + 5000 + 0
    preview = next(m for m in ov.modes if m.mode == "simulate")
    assert (preview.tokens_saved, preview.projected_saved) == (0, 1000)
    assert ov.cost_before == pytest.approx(0.045) and ov.cost_saved == pytest.approx(0.0175)
    assert ov.priced_requests == 2
    # cached share: r1, r2, r9 (usage 6000, 5000, 3000) and r3, r4 (20,000 each, nothing cached)
    assert (ov.cached_tokens, ov.cache_base_tokens) == (8192, 54_000)
    assert ov.errors == 1
    assert (ov.first, ov.last) == (DAY + timedelta(hours=9), DAY + timedelta(days=7, hours=12))
    assert dict(ov.sources) == {"client": 6, "langchain": 1, "llamaindex": 1, "cli": 1}


def test_waste_histogram_sums_categories() -> None:
    w = _data().waste
    tokens = {b.category: b.tokens for b in w.bars}
    assert tokens == {
        "json_bloat_tokens": 5800,
        "html_noise_tokens": 6000,
        "whitespace_tokens": 300,
        "dynamic_date_tokens": 50,
        "repetition_tokens": 1000,
    }
    assert w.total == 13_150
    # r5 and r7 recorded no waste signals; r9 recorded zeros and counts as measured
    assert w.measured_requests == 7 and w.measured_input_tokens == 185_000
    html = next(b for b in w.bars if b.category == "html_noise_tokens")
    assert html.percent == pytest.approx(100 * 6000 / 185_000)


@pytest.mark.parametrize(
    "period,expected",
    [
        # r8 is a simulate preview: counted as a request, never in tokens or savings
        ("day", [("2025-03-03", 2, 18_000, 11_000, 0), ("2025-03-04", 3, 60_000, 60_000, 13_000),
                 ("2025-03-07", 3, 120_500, 110_500, 0), ("2025-03-10", 1, 4000, 3000, 0)]),
        ("week", [("2025-W10 (2025-03-03)", 8, 198_500, 181_500, 13_000),
                  ("2025-W11 (2025-03-10)", 1, 4000, 3000, 0)]),
        ("month", [("2025-03", 9, 202_500, 184_500, 13_000)]),
        ("hour", None),
    ],
)  # fmt: skip
def test_buckets_per_period(
    period: str, expected: list[tuple[str, int, int, int, int]] | None
) -> None:
    got = _data(period).buckets
    if expected is None:  # hour: one bucket per request here, labelled by the hour
        assert [b.requests for b in got] == [1] * 9
        assert got[0].label == "2025-03-03 09:00"
        return
    assert [
        (b.label, b.requests, b.tokens_before, b.tokens_after, b.projected_saved) for b in got
    ] == expected
    assert sum(b.tokens_saved for b in got) == 18_000


def test_bucket_start_edges() -> None:
    late_sunday = datetime(
        2025, 3, 9, 23, 59, tzinfo=timezone(timedelta(hours=-2))
    )  # Mon 01:59 UTC
    assert bucket_start(late_sunday, "week") == datetime(2025, 3, 10, tzinfo=timezone.utc)
    assert bucket_start(late_sunday, "day") == datetime(2025, 3, 10, tzinfo=timezone.utc)
    assert bucket_start(late_sunday, "month") == datetime(2025, 3, 1, tzinfo=timezone.utc)


def test_top_requests_by_waste() -> None:
    top = _data(top=3).top
    assert [r.request_id for r in top] == ["r3", "r1", "r2"]
    assert (top[0].waste_total, top[0].top_category, top[0].top_category_tokens) == (
        6000,
        "HTML noise",
        5000,
    )
    assert top[0].projected_saved == 8000 and SCRIPT in top[0].preview
    assert top[1].preview == "list the files" and top[2].preview == ""


def test_cache_alignment_counts_changes_per_group() -> None:
    cache = _data().cache
    groups = {(g.source, g.provider, g.model): g for g in cache.groups}
    assert set(groups) == {
        ("client", "openai", "gpt-4o"),
        ("client", "anthropic", "claude-sonnet-4-5"),
    }
    claude = groups[("client", "anthropic", "claude-sonnet-4-5")]
    assert (claude.requests, claude.raw_changes, claude.aligned_changes) == (3, 2, 1)
    assert (claude.distinct_raw, claude.distinct_aligned, claude.dynamic_values) == (3, 2, 6)
    assert claude.avoidable_tokens == 3000 and claude.removable_changes == 1
    assert claude.cached_share == 0.0  # r5 reported no cached tokens: left out
    gpt = groups[("client", "openai", "gpt-4o")]
    assert (gpt.requests, gpt.raw_changes, gpt.aligned_changes, gpt.distinct_raw) == (3, 0, 0, 1)
    assert gpt.cached_share == pytest.approx(8192 / 14_000)
    assert (cache.requests, cache.raw_changes, cache.aligned_changes, cache.avoidable_tokens) == (
        6,
        2,
        1,
        3000,
    )


def test_recommendations_fire_on_their_numbers() -> None:
    data = _data()
    recs = {r.key: r for r in data.recommendations}
    assert set(recs) == {
        "switch_to_optimize",
        "enable_cache_aligner",
        "waste_html_noise",
        "context_limit",
        "transform_failures",
        "provider_errors",
    }
    assert (
        "2 audit requests would have sent 13,000 fewer input tokens (32.5% of 40,000)"
        in recs["switch_to_optimize"].detail
    )
    assert "$0.0390" in recs["switch_to_optimize"].detail  # 13,000 x $3 / M (claude-sonnet-4-5)
    assert "1 of 2 prefix changes across 6 requests" in recs["enable_cache_aligner"].detail
    assert "6,000 tokens (3.2% of input tokens" in recs["waste_html_noise"].detail
    assert "gpt-4o-mini (1, window 128,000)" in recs["context_limit"].detail
    assert "87.5%" in recs["context_limit"].detail
    assert "smart_crusher: ValueError: boom (x1)" in recs["transform_failures"].detail
    assert "rate limited <429> (x1)" in recs["provider_errors"].detail
    assert data.no_recommendations == ""


def _rec_keys(records: list[RequestMetrics]) -> set[str]:
    return {r.key for r in analyze(records, period="day", top=5, store_label="t").recommendations}


def test_provider_caching_recommended_only_for_stable_uncached_prefixes() -> None:
    p = "c" * 16

    def rows(cached: int, prefix_tokens: int, hashes: list[str]) -> list[RequestMetrics]:
        return [_m(i, DAY + timedelta(minutes=i), tokens_input_before=5000, tokens_input_after=5000,
                   cached_tokens=cached, extra=_client(h, h, prefix_tokens=prefix_tokens))
                for i, h in enumerate(hashes)]  # fmt: skip

    assert "provider_prompt_caching" in _rec_keys(rows(0, 4000, [p] * 4))
    assert "provider_prompt_caching" not in _rec_keys(rows(4000, 4000, [p] * 4))  # cached well
    assert "provider_prompt_caching" not in _rec_keys(rows(0, 500, [p] * 4))  # too short to cache
    assert "provider_prompt_caching" not in _rec_keys(rows(0, 4000, [p, "d" * 16, p, "e" * 16]))


def test_no_recommendations_when_nothing_supports_one() -> None:
    clean = [_m(1, DAY, tokens_input_before=1000, tokens_input_after=900,
                waste_signals={"whitespace_tokens": 5})]  # fmt: skip
    data = analyze(clean, period="day", top=5, store_label="t")
    assert data.recommendations == ()
    assert data.no_recommendations.startswith("No recommendations: 1 request with no projected")
    # the same request in audit mode with a projection does trigger one
    audit = [_m(1, DAY, mode="audit", tokens_input_before=1000, tokens_input_after=1000,
                extra={"projected_tokens_after": 900})]  # fmt: skip
    assert _rec_keys(audit) == {"switch_to_optimize"}


def test_bad_extra_values_are_ignored() -> None:
    odd = [_m(1, DAY, tokens_input_before=10, tokens_input_after=10, mode="audit",
              extra={"projected_tokens_after": "lots", "prefix_hash": 7, "failures": "boom",
                     "preview": ["x"], "usage_input_tokens": float("inf")})]  # fmt: skip
    data = analyze(odd, period="day", top=5, store_label="t")
    assert data.cache.groups == () and data.failures == () and data.recommendations == ()


# --- rendering ------------------------------------------------------------------------------


def test_html_report_is_self_contained_and_escaped(db: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    html = generate_report(db, "html", "day", out, top=5)
    assert out.read_text("utf-8") == html
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "rate limited &lt;429&gt;" in html
    assert '<meta charset="utf-8">' in html and 'name="viewport"' in html
    assert "<title>Headroom report: 9 requests" in html
    for text in (
        "202,500",
        "184,500",
        "13,150",
        "2025-03-04",
        "rec-switch_to_optimize",
        "prompt cache is lost",
        "<svg",
    ):
        assert text in html, text
    assert html.count("<svg") == 2


def test_svg_text_is_escaped() -> None:
    evil = [_m(1, DAY, tokens_input_before=100, tokens_input_after=100,
               waste_signals={"<b onmouseover=x>_tokens": 7})]  # fmt: skip
    store = MemoryMetricsStore()
    store.record(evil[0])
    html = generate_report(format="html", store=store)
    assert "<b onmouseover" not in html and "&lt;b onmouseover=x&gt;" in html


def test_markdown_report_same_numbers(db: str) -> None:
    md = generate_report(db, "markdown", "week", top=3)
    assert md.startswith("# Headroom report\n")
    for heading in (
        "## 1. Summary",
        "## 2. Waste by category",
        "## 3. Savings over time (per week, UTC)",
        "## 4. Top 3 high-waste requests",
        "## 5. Cache alignment",
        "## 6. Recommendations",
    ):
        assert heading in md
    assert "| 2025-W10 (2025-03-03) | 8 | 198,500 | 181,500 | 17,000 | 8.6% |" in md
    assert "| HTML noise | 6,000 | 3.2% |" in md and "| **Total** | 13,150 | 7.1% |" in md
    assert "| client | anthropic | claude-sonnet-4-5 | 3 | 2 | 1 | 3 / 2 | 6 | 3,000 | 0.0% |" in md
    assert "**Switch audit traffic to mode='optimize'**" in md
    # untrusted content is inert: no raw tags, no table-breaking pipes or newlines
    assert "<script" not in md and "<img" not in md
    assert '&lt;script&gt;alert("x")&lt;/script&gt;' in md
    table_rows = [
        line for line in md.splitlines() if line.startswith("| ") and "2025-03-04 08:00" in line
    ]
    assert len(table_rows) == 1 and table_rows[0].count(" | ") == 8


def test_md_text_escapes_markup_and_folds_lines() -> None:
    assert md_text("a|b\n<i>*c*</i> [l](u) `x`") == r"a\|b &lt;i&gt;\*c\*&lt;/i&gt; \[l\](u) \`x\`"


@pytest.mark.parametrize(
    "peak,expected",
    [(0, (1.0, 1)), (1, (1.0, 1)), (3, (3.0, 3)), (5700, (6000.0, 3)), (123_500, (150_000.0, 3)),
     (100_000, (100_000.0, 4)), (4001, (6000.0, 3))],
)  # fmt: skip
def test_chart_axis_is_round(peak: float, expected: tuple[float, int]) -> None:
    assert nice_scale(peak) == expected


def test_md_alias_and_case() -> None:
    store = MemoryMetricsStore()
    store.record(sample_records()[0])

    def body(text: str) -> str:
        return re.sub(r"generated [^\n]*", "", text)

    alias = generate_report(format="MD", period="Month", store=store)
    assert body(alias) == body(generate_report(format="markdown", period="month", store=store))
    assert "| 2025-03 | 1 | 10,000 | 6,000 | 4,000 | 40.0% | $0.0100 |  |" in alias


@pytest.mark.parametrize("fmt", ["html", "markdown"])
def test_empty_store_says_no_requests(fmt: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).close()
    text = generate_report(url, fmt)
    assert "There are no requests in this store" in text
    assert "No recommendations: there are no requests" in text


def test_jsonl_store_and_since(tmp_path: Path) -> None:
    url = f"jsonl:///{tmp_path / 'm.jsonl'}"
    with open_store(url) as store:
        for m in sample_records():
            store.record(m)
    md = generate_report(url, "md", since=DAY + timedelta(days=4))
    assert "- Requests: 4 (off 1, optimize 2, simulate 1)" in md
    assert "since 2025-03-07 00:00 UTC" in md


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"format": "pdf"}, "format: expected one of 'html', 'markdown', 'md', got 'pdf'"),
        ({"period": "year"}, "period: expected one of 'hour', 'day', 'week', 'month', got 'year'"),
        ({"top": -1}, "top: expected an int >= 0, got -1"),
        ({"since": datetime(2025, 1, 1)}, "since: expected a timezone-aware datetime"),
        ({"store_url": "memory://", "store": MemoryMetricsStore()}, "pass one, not both"),
        ({"store_url": "ftp://x"}, "unknown scheme"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("store", None if "store_url" in kwargs else MemoryMetricsStore())
    with pytest.raises(ConfigError, match=re.escape(message)):
        generate_report(**kwargs)


def test_missing_store_file_gives_an_empty_report_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    text = generate_report(f"sqlite:///{missing}", "md")
    assert f"sqlite:///{missing} (no such file yet: nothing recorded)" in text
    assert "There are no requests in this store." in text
    assert not missing.exists()
    with pytest.raises(StorageError, match="no such file"):
        generate_report(f"sqlite:///{missing}", "md", missing_ok=False)
    assert not missing.exists()


def test_markdown_needs_no_jinja2() -> None:
    code = (
        "import json, sys, headroom_core\n"
        "from headroom_core.metrics import MemoryMetricsStore\n"
        "text = headroom_core.generate_report(format='md', store=MemoryMetricsStore())\n"
        "print(json.dumps(['jinja2' in sys.modules, text.startswith('# Headroom report')]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [False, True]


def test_html_without_jinja2_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jinja2", None)  # makes `import jinja2` fail
    with pytest.raises(ImportError, match=re.escape('pip install "headroom-context[reports]"')):
        generate_report(format="html", store=MemoryMetricsStore())


# --- in a real browser ----------------------------------------------------------------------


@requires_chromium
def test_html_report_in_chromium(db: str, tmp_path: Path) -> None:
    page_path = tmp_path / "report.html"
    generate_report(db, "html", "day", page_path)
    shot = tmp_path / "report.png"
    page = open_in_chromium(page_path, shot)
    assert page.console_of("error", "warning") == ()
    assert page.page_errors == () and page.dialogs == ()
    assert page.external_requests == () and page.failed_requests == ()
    assert page.requests == (page_path.resolve().as_uri(),)
    assert page.title.startswith("Headroom report: 9 requests")
    assert SCRIPT in page.body_text and IMG in page.body_text
    assert "6. Recommendations" in page.body_text
    assert shot.stat().st_size > 10_000

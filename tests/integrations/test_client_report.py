"""End to end: real SDK clients -> HeadroomClient -> local API server -> SQLite store ->
``generate_report`` / ``headroom report`` -> the HTML opened in headless Chromium.

The store is filled by real calls (OpenAI and Anthropic, sync and async, streams, a
provider error, audit and optimize), one of them carrying ``<script>`` in the user's text.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

openai = pytest.importorskip("openai", reason="the openai SDK is needed: pip install -e '.[dev]'")
anthropic = pytest.importorskip(
    "anthropic", reason="the anthropic SDK is needed: pip install -e '.[dev]'"
)
pytest.importorskip("jinja2", reason="HTML reports need the reports extra")

from click.testing import CliRunner  # noqa: E402

from headroom_core.cli import main  # noqa: E402
from headroom_core.messages import to_anthropic  # noqa: E402
from headroom_core.report import generate_report  # noqa: E402
from headroom_integrations import HeadroomClient  # noqa: E402
from tests._browser import open_in_chromium, requires_chromium  # noqa: E402

from .provider_server import ProviderServer  # noqa: E402

SCRIPT = '<script>alert("pwned")</script> why did the deploy fail?'


@pytest.fixture(scope="module")
def filled_store(
    tmp_path_factory: pytest.TempPathFactory, example_history: list[dict[str, Any]]
) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'headroom.db'}"
    with ProviderServer(cached_tokens=512) as server:
        _openai_calls(server, url, example_history)
        _anthropic_calls(server, url, example_history)
    return url


def _openai_calls(server: ProviderServer, url: str, history: list[dict[str, Any]]) -> None:
    raw = openai.OpenAI(api_key="test", base_url=server.openai_base_url, max_retries=0)
    client = HeadroomClient(raw, store_url=url)
    client.chat.completions.create(model="gpt-4o", messages=history)  # audit
    client.chat.completions.create(model="gpt-4o", messages=history, headroom_mode="optimize")
    hostile = [*history[:-1], {"role": "user", "content": SCRIPT}]
    client.chat.completions.create(model="gpt-4o", messages=hostile)
    for _ in client.chat.completions.create(
        model="gpt-4o",
        messages=history,
        stream=True,
        stream_options={"include_usage": True},
        headroom_mode="optimize",
    ):
        pass
    server.queue_error(429, message="rate limited")
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o", messages=history)
    aclient = HeadroomClient(
        openai.AsyncOpenAI(api_key="test", base_url=server.openai_base_url, max_retries=0),
        default_mode="optimize",
        store_url=url,
    )
    asyncio.run(aclient.chat.completions.create(model="gpt-4o-mini", messages=history))
    client.close()
    aclient.close()


def _anthropic_calls(server: ProviderServer, url: str, history: list[dict[str, Any]]) -> None:
    body = to_anthropic(history)
    raw = anthropic.Anthropic(api_key="test", base_url=server.base_url, max_retries=0)
    client = HeadroomClient(raw, store_url=url)
    for minute in ("14:32", "14:47", "15:05"):  # a clock in the system prompt, as agents do
        system = f"You are DeployBot. Current time: 2026-11-21 {minute} UTC. Cite deploy ids."
        client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=1024,
            system=system,
            messages=body["messages"],
        )
    with client.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=1024,
        messages=body["messages"],
        headroom_mode="optimize",
    ) as stream:
        stream.until_done()
    client.close()


def test_store_holds_one_record_per_call(filled_store: str) -> None:
    report = generate_report(store_url=filled_store, format="markdown", period="day")
    assert "10 requests" in report or "| 10 |" in report
    assert "gpt-4o" in report and "claude-haiku-4-5" in report


@requires_chromium
def test_html_report_in_chromium(filled_store: str, tmp_path: Path) -> None:
    page_path = tmp_path / "report.html"
    html = generate_report(
        store_url=filled_store, format="html", period="day", output_path=page_path
    )
    assert page_path.read_text("utf-8") == html
    assert "<script>alert" not in html  # escaped in the file ...
    shot = tmp_path / "report.png"
    page = open_in_chromium(page_path, shot)
    assert SCRIPT[:40] in page.body_text  # ... and shown as text in the browser
    assert page.console_of("error", "warning") == ()
    assert page.page_errors == () and page.dialogs == ()
    assert page.external_requests == () and page.failed_requests == ()
    assert page.title.startswith("Headroom report: 10 requests")
    text = page.body_text
    for section in ("Waste by category", "Savings over time", "high-waste requests"):
        assert section in text
    # Recommendations drawn from these calls: audit traffic would have saved tokens, and
    # the clock in the Anthropic system prompt changed the prefix on every call.
    assert "Switch audit traffic to mode='optimize'" in text
    assert "Enable CacheAligner" in text
    assert "RateLimitError" in text or "rate limited" in text
    assert shot.stat().st_size > 20_000


def test_cli_report_from_the_same_store(filled_store: str, tmp_path: Path) -> None:
    out = tmp_path / "cli-report.html"
    result = CliRunner().invoke(main, ["report", "--store", filled_store, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text("utf-8").lstrip().lower().startswith("<!doctype html>")
    md = CliRunner().invoke(main, ["report", "--store", filled_store, "--format", "markdown"])
    assert md.exit_code == 0 and "Recommendations" in md.output
    assert "&lt;script&gt;" in md.output or "\\<script\\>" in md.output

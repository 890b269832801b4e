"""README's provider-client section runs as written, against a local API server.

The SDK clients in README are built with no arguments (``OpenAI()``, ``Anthropic()``); they
read ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` and the API keys from the environment,
which the test points at a server on 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("openai", reason="the openai SDK is needed: pip install -e '.[dev]'")
pytest.importorskip("anthropic", reason="the anthropic SDK is needed: pip install -e '.[dev]'")

from headroom_core.metrics import open_store  # noqa: E402

from .provider_server import ProviderServer  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"


def _section_blocks(title: str) -> list[str]:
    text = README.read_text("utf-8")
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else None]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        yield server


def test_provider_client_section_runs_as_written(
    env: ProviderServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = _section_blocks("Provider clients")
    assert len(blocks) == 3, "README's provider-client section changed shape"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert out.startswith("echo: 1 messages, last user: Hello!")
    assert "echo: 1 messages, last user: Summarise today's deploys." in out
    # quick start + audit + optimize + stream, then the Anthropic stream
    assert [r.path for r in env.requests] == ["/v1/chat/completions"] * 4 + ["/v1/messages"]
    with open_store(f"sqlite:///{tmp_path / 'headroom.db'}") as store:
        modes = [m.mode for m in store.get_metrics(limit=None)]
    # quick start (optimize), audit, optimize, audit stream, Anthropic (optimize)
    assert sorted(modes) == ["audit", "audit", "optimize", "optimize", "optimize"]
    report = (tmp_path / "report.html").read_text("utf-8")
    assert report.lstrip().lower().startswith("<!doctype html>")

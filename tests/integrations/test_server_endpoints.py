"""The server's own endpoints over real HTTP (httpx): /v1/compress (the reference's wire
format), /v1/retrieve, /health, /metrics, /stats; the token check; the command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette", reason='the server extra is needed: pip install ".[server]"')

from click.testing import CliRunner  # noqa: E402

from headroom_core import ConfigError  # noqa: E402
from headroom_core.ccr import ref_for  # noqa: E402
from headroom_core.cli import main  # noqa: E402
from headroom_core.tokens import get_tokenizer  # noqa: E402
from headroom_core.transforms import json_codec  # noqa: E402
from headroom_integrations.server import ServerSettings, create_app  # noqa: E402
from headroom_integrations.server.cli import serve  # noqa: E402

from .provider_server import ProviderServer  # noqa: E402
from .server_harness import RunningServer, run_app, serve_process  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ROWS = [{"id": i, "status": "ok" if i % 11 else "error", "ms": 40 + i} for i in range(600)]
TOOL_TEXT = json.dumps(ROWS, indent=2)
TOKEN = "server-token-7c1e"


def chat() -> list[dict[str, Any]]:
    call = {"id": "c1", "type": "function", "function": {"name": "query", "arguments": "{}"}}
    return [
        {"role": "system", "content": "You are an SRE assistant."},
        {"role": "user", "content": "Which requests failed?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": TOOL_TEXT},
        {"role": "assistant", "content": "Several failed."},
        {"role": "user", "content": "Which were slow?"},
        {"role": "assistant", "content": None, "tool_calls": [{**call, "id": "c2"}]},
        {"role": "tool", "tool_call_id": "c2", "content": TOOL_TEXT.replace('"ok"', '"fine"')},
    ]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("server")
    settings = ServerSettings(store=f"sqlite:///{folder / 'metrics.db'}")
    with run_app(create_app(settings)) as running:
        yield running


def _post(srv: RunningServer, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{srv.base_url}{path}", json=body, timeout=60, **kwargs)


# -- /v1/compress ------------------------------------------------------------------------------


def test_namespaces_keep_tenants_originals_apart(srv: RunningServer) -> None:
    """``x-headroom-namespace``: a cut made in one namespace is retrieved in that namespace
    only; neither another namespace nor a request without one reads it."""
    body = {"messages": chat(), "model": "gpt-4o", "config": {"mode": "ccr"}}
    a = {"x-headroom-namespace": "tenant-a"}
    made = _post(srv, "/v1/compress", body, headers=a).json()
    (ref, *_) = made["ccr_hashes"]
    assert ref != ref_for(TOOL_TEXT)  # the namespace's own ref
    url = f"{srv.base_url}/v1/retrieve/{ref}"
    assert httpx.get(url, headers=a, timeout=30).json()["original_content"] == TOOL_TEXT
    for headers in ({"x-headroom-namespace": "tenant-b"}, {}):
        assert httpx.get(url, headers=headers, timeout=30).status_code == 404
        posted = _post(srv, "/v1/retrieve", {"ref": ref}, headers=headers)
        assert posted.status_code == 404
    bad = _post(srv, "/v1/compress", body, headers={"x-headroom-namespace": "x" * 201})
    assert bad.status_code == 400 and "namespace" in bad.json()["error"]["message"]


def test_compress_default_mode_makes_only_cuts_that_need_no_retrieval(srv: RunningServer) -> None:
    r = _post(srv, "/v1/compress", {"messages": chat(), "model": "gpt-4o"})
    assert r.status_code == 200
    out = r.json()
    assert set(out) == {
        "messages",
        "tokens_before",
        "tokens_after",
        "tokens_saved",
        "compression_ratio",
        "transforms_applied",
        "ccr_hashes",
    }
    tool = out["messages"][3]["content"]
    assert "ref" not in tool and json_codec.decode(json.loads(tool)) == ROWS  # lossless
    tok = get_tokenizer("gpt-4o")
    assert out["tokens_before"] == tok.count_messages(chat())
    assert out["tokens_after"] == tok.count_messages(out["messages"]) < out["tokens_before"]
    assert out["tokens_saved"] == out["tokens_before"] - out["tokens_after"]
    assert out["compression_ratio"] == pytest.approx(out["tokens_after"] / out["tokens_before"])
    assert out["ccr_hashes"] == [] and out["transforms_applied"]


def test_compress_ccr_mode_lists_refs_that_retrieve_the_originals(srv: RunningServer) -> None:
    out = _post(
        srv, "/v1/compress", {"messages": chat(), "model": "gpt-4o", "config": {"mode": "ccr"}}
    ).json()
    ref = ref_for(TOOL_TEXT)
    assert ref in out["ccr_hashes"] and ref in out["messages"][3]["content"]
    assert out["tokens_after"] < out["tokens_before"] / 3

    got = httpx.get(f"{srv.base_url}/v1/retrieve/{ref}", timeout=30)
    assert got.status_code == 200
    body = got.json()
    assert body["original_content"] == TOOL_TEXT and body["ref"] == body["hash"] == ref
    assert body["tool_name"] == "query" and body["kind"] == "json"

    queried = _post(srv, "/v1/retrieve", {"ref": ref, "query": "error"}).json()
    assert queried["original_content"].startswith("[headroom: 55 of 600 items")
    by_hash = _post(srv, "/v1/retrieve", {"hash": ref}).json()  # the reference's field name
    assert by_hash["original_content"] == TOOL_TEXT

    missing = httpx.get(f"{srv.base_url}/v1/retrieve/{'0' * 32}", timeout=30)
    assert missing.status_code == 404 and "no original" in missing.json()["error"]["message"]
    bad = _post(srv, "/v1/retrieve", {"ref": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("ref:")


def test_compress_frozen_messages_come_back_byte_identical(srv: RunningServer) -> None:
    free = _post(srv, "/v1/compress", {"messages": chat(), "model": "gpt-4o"}).json()
    body = {"messages": chat(), "model": "gpt-4o", "config": {"frozen_message_count": 5}}
    out = _post(srv, "/v1/compress", body).json()
    assert json.dumps(out["messages"][:5]) == json.dumps(chat()[:5])
    assert out["messages"][3]["content"] == TOOL_TEXT  # frozen: not compressed
    assert out["messages"][7] == free["messages"][7]  # the rest as without freezing


def test_compress_anthropic_body_with_system(srv: RunningServer) -> None:
    messages = [
        {"role": "user", "content": "Which requests failed?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "tu1", "name": "query", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "tu1", "content": TOOL_TEXT},
                {"type": "text", "text": "Also: which were slow?"},
            ],
        },
    ]
    body = {"model": "claude-haiku-4-5", "system": "Be terse.", "messages": messages}
    out = _post(srv, "/v1/compress", {**body, "config": {"mode": "ccr"}}).json()
    assert out["system"] == "Be terse."
    assert out["messages"][:2] == messages[:2]
    blocks = out["messages"][2]["content"]
    assert blocks[1] == messages[2]["content"][1]
    assert blocks[0]["tool_use_id"] == "tu1" and len(blocks[0]["content"]) < len(TOOL_TEXT) / 3
    assert out["ccr_hashes"] == [ref_for(TOOL_TEXT)]

    frozen = _post(srv, "/v1/compress", {**body, "config": {"frozen_message_count": 2}}).json()
    assert frozen["messages"] == messages  # the tool_use's results are frozen with it


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "gpt-4o"}, "messages"),
        ({"messages": "hi", "model": "gpt-4o"}, "messages"),
        ({"messages": []}, "model"),
        ({"messages": [], "model": "gpt-4o", "config": []}, "config"),
        ({"messages": [], "model": "gpt-4o", "config": {"mode": "lossless"}}, "config.mode"),
        (
            {"messages": [], "model": "gpt-4o", "config": {"frozen_message_count": -1}},
            "config.frozen_message_count",
        ),
        ({"messages": [], "model": "gpt-4o", "token_budget": "big"}, "token_budget"),
        ({"messages": [], "model": "claude-x", "system": 3}, "system"),
        ([1, 2], "body"),
    ],
)
def test_compress_bad_body_is_a_400_naming_the_field(
    srv: RunningServer, body: Any, field: str
) -> None:
    r = _post(srv, "/v1/compress", body)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith(f"{field}:")


def test_compress_invalid_json_and_fail_open(srv: RunningServer) -> None:
    r = httpx.post(f"{srv.base_url}/v1/compress", content=b"{nope", timeout=30)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("body:")
    # a window the protected part cannot fit: our failure, so the messages come back as given
    body = {"messages": chat(), "model": "gpt-4o", "token_budget": 50}
    out = _post(srv, "/v1/compress", body).json()
    assert out["messages"] == chat() and out["compression_ratio"] == 1.0
    assert out["tokens_before"] == out["tokens_after"] > 0


# -- health, metrics, stats ----------------------------------------------------------------------


def test_health_metrics_and_stats(srv: RunningServer) -> None:
    _post(srv, "/v1/compress", {"messages": chat(), "model": "gpt-4o"})
    assert httpx.get(f"{srv.base_url}/health", timeout=30).json() == {"status": "ok"}
    text = httpx.get(f"{srv.base_url}/metrics", timeout=30).text
    assert 'headroom_requests_total{mode="optimize",route="compress",status="200"}' in text
    assert "headroom_tokens_before_total" in text and "headroom_request_seconds_bucket" in text
    stats = httpx.get(f"{srv.base_url}/stats", timeout=30).json()
    assert stats["requests"] >= 1 and stats["tokens_saved"] > 0
    assert stats["by_mode"]["optimize"] == stats["requests"]


# -- the token ---------------------------------------------------------------------------------


def test_a_token_is_checked_on_every_request(tmp_path: Path) -> None:
    with ProviderServer() as up:
        settings = ServerSettings(
            store="",
            openai_base_url=up.openai_base_url,
            anthropic_base_url=up.base_url,
            token=TOKEN,
        )
        with run_app(create_app(settings)) as srv:
            body = {"messages": chat(), "model": "gpt-4o"}
            assert _post(srv, "/v1/compress", body).status_code == 401
            wrong = {"authorization": "Bearer not-it"}
            assert _post(srv, "/v1/compress", body, headers=wrong).status_code == 401
            ok = _post(srv, "/v1/compress", body, headers={"authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200
            assert httpx.get(f"{srv.base_url}/health", timeout=30).status_code == 401
            # provider routes: the provider key rides in Authorization, ours beside it
            request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            key = {"authorization": "Bearer sk-provider"}
            denied = _post(srv, "/v1/chat/completions", request, headers=key)
            assert denied.status_code == 401 and "x-headroom-token" in denied.text
            assert not up.requests
            allowed = _post(
                srv, "/v1/chat/completions", request, headers={**key, "x-headroom-token": TOKEN}
            )
            assert allowed.status_code == 200
            assert "x-headroom-token" not in up.requests[-1].headers
            assert up.requests[-1].headers["authorization"] == "Bearer sk-provider"


def test_binding_beyond_loopback_requires_a_token() -> None:
    with pytest.raises(ConfigError, match="HEADROOM_SERVER_TOKEN"):
        create_app(ServerSettings(host="0.0.0.0", store=""))
    create_app(ServerSettings(host="::1", store=""))  # loopback: fine without
    create_app(ServerSettings(host="0.0.0.0", store="", token=TOKEN))
    result = CliRunner().invoke(serve, ["--host", "0.0.0.0"], env={"HEADROOM_SERVER_TOKEN": ""})
    assert result.exit_code == 2 and "HEADROOM_SERVER_TOKEN" in result.output
    assert TOKEN not in repr(ServerSettings(token=TOKEN))


# -- the command -------------------------------------------------------------------------------


def test_the_core_cli_loads_serve_from_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    import headroom_core.cli as cli

    group = "headroom.commands"
    entries = {
        "serve": EntryPoint("serve", "headroom_integrations.server.cli:serve [server]", group),
        "proxy": EntryPoint("proxy", "headroom_integrations.server.cli:proxy [server]", group),
        "gone": EntryPoint("gone", "headroom_no_such_module.cli:cmd [server]", group),
    }
    monkeypatch.setattr(cli, "_plugins", lambda: entries)
    runner = CliRunner()
    listing = runner.invoke(main, ["--help"])
    assert listing.exit_code == 0 and "serve" in listing.output and "proxy" in listing.output
    for name in ("serve", "proxy"):
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "--openai-base-url" in result.output
    missing = runner.invoke(main, ["gone", "--port", "1"])
    assert missing.exit_code == 2
    assert 'pip install "headroom-context[server]"' in missing.output
    assert len(missing.output.strip().splitlines()) == 1


def test_serve_runs_workers_behind_one_port(tmp_path: Path) -> None:
    """``headroom serve --workers 2`` in a subprocess: requests served, metrics from every
    worker (PROMETHEUS_MULTIPROC_DIR), one shared SQLite store."""
    with (
        ProviderServer() as up,
        serve_process(
            up.openai_base_url,
            "--workers",
            "2",
            "--store",
            f"sqlite:///{tmp_path / 'metrics.db'}",
            "--originals",
            f"sqlite:///{tmp_path / 'originals.db'}",
            cwd=tmp_path,
        ) as base,
    ):
        request = {"model": "gpt-4o-mini", "messages": chat()}
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(12):
                client.headers["connection"] = "close"  # spread over the workers
                assert client.post("/v1/chat/completions", json=request).status_code == 200
            metrics = client.get("/metrics").text
            stats = client.get("/stats").json()
        line = next(
            row
            for row in metrics.splitlines()
            if row.startswith("headroom_requests_total{") and 'route="openai"' in row
        )
        assert float(line.rsplit(" ", 1)[1]) == 12.0
        assert stats["requests"] == 12
        assert len(up.requests) == 12

"""``headroom serve`` (alias ``headroom proxy``): the command, loaded by the core CLI from the
``headroom.commands`` entry-point group. Only click is imported here; the server itself
(starlette, uvicorn) when the command runs, so a missing extra is one line and exit 2."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import click

_HINT = 'the server extra is not installed: pip install "headroom-context[server]"'


class _Exit2(click.ClickException):
    exit_code = 2


@click.command("serve")
@click.option(
    "--host",
    envvar="HEADROOM_HOST",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; anything but loopback requires HEADROOM_SERVER_TOKEN.",
)
@click.option("--port", envvar="HEADROOM_PORT", default=8787, show_default=True, type=int)
@click.option(
    "--openai-base-url",
    envvar="HEADROOM_OPENAI_BASE_URL",
    default="https://api.openai.com/v1",
    show_default=True,
    help="OpenAI upstream, as the SDK's base_url (with /v1).",
)
@click.option(
    "--anthropic-base-url",
    envvar="HEADROOM_ANTHROPIC_BASE_URL",
    default="https://api.anthropic.com",
    show_default=True,
    help="Anthropic upstream, as the SDK's base_url (without /v1).",
)
@click.option(
    "--store",
    envvar="HEADROOM_STORE",
    default="sqlite:///headroom.db",
    show_default=True,
    help="Metrics store URL; '' records nothing.",
)
@click.option(
    "--originals",
    envvar="HEADROOM_ORIGINALS",
    default="memory://",
    show_default=True,
    help="Store of originals for retrieval (sqlite:///path to share it between "
    "workers and restarts).",
)
@click.option(
    "--mode",
    envvar="HEADROOM_MODE",
    default="optimize",
    show_default=True,
    type=click.Choice(["audit", "optimize", "off"]),
    help="Default mode; the x-headroom-mode header overrides it per request.",
)
@click.option("--workers", envvar="HEADROOM_WORKERS", default=1, show_default=True, type=int)
@click.option(
    "--retrieve-loop/--no-retrieve-loop",
    envvar="HEADROOM_RETRIEVE_LOOP",
    default=True,
    show_default=True,
    help="Answer the model's headroom_retrieve calls and call the upstream again.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(log_level: str, **options: Any) -> None:
    """Run the OpenAI- and Anthropic-compatible proxy with /v1/compress and /v1/retrieve.

    Point an SDK's base_url at it (OpenAI: http://HOST:PORT/v1, Anthropic: http://HOST:PORT).
    """
    try:
        import uvicorn

        from . import ServerSettings
    except ImportError as exc:
        raise _Exit2(f"{_HINT} ({exc})") from None
    from headroom_core.errors import ConfigError

    try:
        settings = ServerSettings.from_env(os.environ, **options)
        settings.check_bind()
    except ConfigError as exc:
        raise _Exit2(str(exc)) from None
    os.environ.update(settings.to_env())  # each worker process builds the same app
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="headroom-prom-")
    if settings.workers > 1 and settings.originals == "memory://":
        click.echo(
            "headroom serve: --workers > 1 with --originals memory:// keeps each worker's "
            "originals apart (/v1/retrieve may miss); use sqlite:///originals.db to share them",
            err=True,
        )
    uvicorn.run(
        "headroom_integrations.server.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=log_level,
        access_log=False,
        # Longer than the SDKs' pooled-connection expiry (httpx: 5 s), so a client never
        # sends on a connection the server is closing at the same moment.
        timeout_keep_alive=75,
    )


#: The same command under its other name.
proxy = click.Command(
    "proxy",
    callback=serve.callback,
    params=serve.params,
    help=serve.help,
    short_help="Alias of serve.",
)

__all__ = ["proxy", "serve"]

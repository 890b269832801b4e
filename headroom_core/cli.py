"""The ``headroom`` command: simulate or compress a request and record what it saved."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ._cli_input import DEFAULT_MAX_INPUT_MB, Payload, example_history, parse_payload, read_input
from ._store_url import DEFAULT_METRICS_URL
from .config import HeadroomConfig
from .errors import BudgetError, HeadroomError
from .pipeline import CompressResult, compress, simulate
from .providers import estimate_cost
from .waste import WasteSignals

DEFAULT_STORE = DEFAULT_METRICS_URL
DEFAULT_HTML_REPORT = "headroom-report.html"
_KINDS = click.Choice(["auto", "messages", "openai", "anthropic", "tool-output"])


class BadInput(click.ClickException):
    """One line naming what is wrong with the input; exit status 2."""

    exit_code = 2


def _load(file: str | None, as_kind: str, max_mb: float) -> Payload:
    if file is None:
        return Payload("messages", example_history())
    try:
        return parse_payload(read_input(file, max_mb), as_kind=as_kind)
    except HeadroomError as exc:
        raise BadInput(f"{file}: {exc}") from None


def _open_store(store_url: str) -> Any:
    """The metrics store, opened before any work (a bad URL or an unwritable file is one
    line and exit 2, not a traceback after the results); None for ''."""
    if not store_url:
        return None
    from .metrics import open_store

    try:
        return open_store(store_url)
    except (HeadroomError, OSError) as exc:
        raise BadInput(f"--store {store_url!r}: {exc}") from None


def _label(file: str | None) -> str:
    return "bundled example" if file is None else ("stdin" if file == "-" else Path(file).name)


def _table(title: str, result: CompressResult, waste: WasteSignals | None, model: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("model", model)
    table.add_row("tokens before", f"{result.tokens_before:,}")
    table.add_row("tokens after", f"{result.tokens_after:,}")
    # A preview sends nothing: what it shows is what optimize would save.
    saved = "would save" if result.mode == "simulate" else "saved"
    table.add_row(saved, f"{result.tokens_saved:,} ({result.savings_percent:.1f}%)")
    cost = estimate_cost(input_tokens=result.tokens_saved, model=model)
    table.add_row(f"input cost {saved}", "n/a" if cost is None else f"${cost:.6f}")
    table.add_row("transforms", ", ".join(result.transforms_applied) or "none")
    if waste is not None:
        for name, tokens in waste.to_dict().items():
            table.add_row(f"waste: {name.removesuffix('_tokens')}", f"{tokens:,}")
    for failure in result.failures:
        table.add_row("[yellow]undone[/yellow]", failure)
    return table


def _record(
    store: Any, result: CompressResult, model: str, mode: str, waste: WasteSignals | None
) -> str | None:
    if store is None:
        return None
    from .metrics import RequestMetrics

    metrics = RequestMetrics.new(
        model=model,
        mode=mode,
        tokens_input_before=result.tokens_before,
        tokens_input_after=result.tokens_after,
        cost_before=estimate_cost(input_tokens=result.tokens_before, model=model),
        cost_after=estimate_cost(input_tokens=result.tokens_after, model=model),
        transforms_applied=result.transforms_applied,
        waste_signals=waste.to_dict() if waste else {},
        source="cli",
    )
    try:
        with store:
            store.record(metrics)
    except (HeadroomError, OSError) as exc:
        raise BadInput(f"cannot record metrics: {exc}") from None
    return metrics.request_id


_common = [
    click.argument("file", required=False),
    click.option(
        "--model", default=None, help="Model to count for (default: the file's, else gpt-4o)."
    ),
    click.option(
        "--query", default=None, help="What the next answer is about (default: last user turn)."
    ),
    click.option(
        "--as", "as_kind", type=_KINDS, default="auto", show_default=True, help="How to read FILE."
    ),
    click.option(
        "--store",
        "store_url",
        default=DEFAULT_STORE,
        show_default=True,
        help="Metrics store URL; '' to record nothing.",
    ),
    click.option(
        "--max-input-mb",
        type=click.FloatRange(min=0, min_open=True),
        default=lambda: float(os.environ.get("HEADROOM_MAX_INPUT_MB", DEFAULT_MAX_INPUT_MB)),
        show_default=f"{DEFAULT_MAX_INPUT_MB:g}, or HEADROOM_MAX_INPUT_MB",
        help="The largest FILE to read, in MB (checked before reading).",
    ),
]


def _with_common(fn: Any) -> Any:
    for decorator in reversed(_common):
        fn = decorator(fn)
    return fn


#: Entry-point group through which other packages add subcommands (``headroom serve`` comes
#: from ``headroom_integrations.server`` this way): core never imports an integration.
PLUGIN_GROUP = "headroom.commands"


def _plugins() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def _load_plugin(name: str, entry: Any) -> click.Command:
    """The command an entry point names; one that cannot be imported (its extra is not
    installed) becomes a command that says so in one line and exits with status 2."""
    try:
        command = entry.load()
    except ImportError as exc:
        extras = ",".join(getattr(entry, "extras", None) or ())
        hint = f'pip install "headroom-context[{extras}]"' if extras else "install its package"
        return _unavailable(name, f"'headroom {name}' is not available ({exc}): {hint}")
    if not isinstance(command, click.Command):
        return _unavailable(name, f"'headroom {name}': {entry.value} is not a click command")
    return command


def _unavailable(name: str, message: str) -> click.Command:
    def fail(args: tuple[str, ...]) -> None:
        raise BadInput(message)

    return click.Command(
        name,
        callback=fail,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        context_settings={"ignore_unknown_options": True, "help_option_names": []},
        short_help="(not installed)",
    )


class _Commands(click.Group):
    """The built-in commands, then those registered under :data:`PLUGIN_GROUP` (imported
    only when asked for)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        entry = _plugins().get(cmd_name)
        return None if entry is None else _load_plugin(cmd_name, entry)


@click.group(cls=_Commands)
@click.version_option(package_name="headroom-context")
def main() -> None:
    """Headroom: compress LLM context (tool outputs, histories) safely and reversibly.

    FILE is an OpenAI messages list, an OpenAI or Anthropic request body, or a raw
    tool output; without FILE the bundled example agent history is used; '-' reads stdin.
    """


@main.command("simulate")
@_with_common
def simulate_cmd(
    file: str | None,
    model: str | None,
    query: str | None,
    as_kind: str,
    store_url: str,
    max_input_mb: float,
) -> None:
    """Show what compression would save, changing nothing.

    The record it writes is marked ``mode="simulate"``: summaries and reports count it as a
    request, never in tokens sent or saved (nothing was sent)."""
    payload = _load(file, as_kind, max_input_mb)
    store = _open_store(store_url)
    model = model or payload.model or "gpt-4o"
    try:
        sim = simulate(payload.messages, model=model, query=query, config=HeadroomConfig())
    except BudgetError as exc:
        raise click.ClickException(str(exc)) from None
    result = CompressResult(
        sim.messages,
        sim.tokens_before,
        sim.tokens_after,
        sim.transforms_applied,
        "simulate",
        sim.waste_signals,
        sim.failures,
    )
    Console().print(_table(f"headroom simulate: {_label(file)}", result, sim.waste_signals, model))
    _record(store, result, model, "simulate", sim.waste_signals)


@main.command("compress")
@_with_common
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the compressed input (default: stdout).",
)
def compress_cmd(
    file: str | None,
    model: str | None,
    query: str | None,
    as_kind: str,
    store_url: str,
    max_input_mb: float,
    output: str | None,
) -> None:
    """Compress FILE and write it back in the same form."""
    payload = _load(file, as_kind, max_input_mb)
    store = _open_store(store_url)
    model = model or payload.model or "gpt-4o"
    try:
        result = compress(payload.messages, model=model, query=query, mode="optimize")
    except BudgetError as exc:
        raise click.ClickException(str(exc)) from None
    rendered = payload.render(result.messages)
    text = (
        rendered
        if isinstance(rendered, str)
        else json.dumps(rendered, ensure_ascii=False, indent=1)
    )
    if output:
        try:
            Path(output).write_text(text, "utf-8")
        except OSError as exc:
            raise BadInput(f"{output}: cannot write: {exc.strerror or exc}") from None
    else:
        click.echo(text)
    Console(stderr=output is None).print(
        _table(f"headroom compress: {_label(file)}", result, None, model)
    )
    _record(store, result, model, "optimize", None)


_SINCE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


@main.command("report")
@click.option(
    "--store", "store_url", default=DEFAULT_STORE, show_default=True, help="Metrics store URL."
)
@click.option("--format", "fmt", default="html", show_default=True, help="html or markdown (md).")
@click.option("--period", default="day", show_default=True, help="hour, day, week or month (UTC).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help=f"Where to write the report (default: html -> ./{DEFAULT_HTML_REPORT}, "
    "markdown -> stdout).",
)
@click.option("--top", default=10, show_default=True, help="High-waste requests to list.")
@click.option(
    "--since",
    type=click.DateTime(_SINCE_FORMATS),
    default=None,
    help="Only requests at or after this UTC time (YYYY-MM-DD[THH:MM[:SS]]).",
)
def report_cmd(
    store_url: str, fmt: str, period: str, output: str | None, top: int, since: datetime | None
) -> None:
    """Write a report of the recorded requests: savings, waste, cache alignment, advice."""
    from .report import generate_report

    if output is None and fmt.lower() == "html":
        output = DEFAULT_HTML_REPORT
    try:
        text = generate_report(
            store_url,
            fmt,
            period,
            output,
            since=None if since is None else since.replace(tzinfo=timezone.utc),
            top=top,
            missing_ok=False,
        )
    except (HeadroomError, ImportError) as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"{output}: cannot write: {exc}") from None
    if output is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"Report written to {output}")


if __name__ == "__main__":  # pragma: no cover
    main()

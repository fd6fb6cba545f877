"""`dkb lineage emit` sends static OpenLineage JobEvents and DatasetEvents; `dkb lineage replay`
resends events spooled while the backend was down."""

from __future__ import annotations

import sys

import click

from dkbuild.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    PatternCommand,
    emit_json,
    fail_pattern,
    load_workspace_graph,
    load_workspace_only,
    note_warnings,
)
from dkbuild.graph.labels import PatternError

TRANSPORT_CHOICE = click.Choice(["file", "http", "console", "composite"])


def _usage_error(message: str, output: str) -> None:
    if output == "json":
        emit_json({"errors": [{"code": "E150", "message": message}]})
    click.echo(f"dkb: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


@click.command("emit", cls=PatternCommand)
@click.argument("patterns", nargs=-1)
@click.option("--transport", type=TRANSPORT_CHOICE, default=None,
              help="Override [lineage] transport (file, http, console, composite).")
@click.option("--url", default=None, help="OpenLineage endpoint, e.g. http://localhost:5000.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def emit_command(ctx: click.Context, patterns: tuple[str, ...], transport: str | None, url: str | None,
                 output: str) -> None:
    """Emit one JobEvent per selected Transform and DatasetEvents for the datasets they use.

    \b
    dkb lineage emit //pipelines/...
    dkb lineage emit --transport http --url http://localhost:5000
    """
    from dkbuild.api import lineage_emitter
    from dkbuild.graph.select import select
    from dkbuild.lineage.events import dataset_events, io_datasets, job_event
    from dkbuild.lineage.transport import LineageConfigError

    loaded = load_workspace_graph(ctx, output)
    if output == "text":
        note_warnings(loaded)
    graph = loaded.graph
    try:
        selected = select(graph, list(patterns), loaded.current_package)
    except PatternError as exc:
        fail_pattern(exc, output)
    transforms = sorted(n for n in selected if graph.nodes[n].kind == "Transform")
    datasets: list[str] = []
    for transform in transforms:
        reads, writes = io_datasets(graph, transform)
        datasets += [d for d in reads + writes if d not in datasets]
    events = dataset_events(graph, datasets, loaded.workspace)
    events += [job_event(graph, t, loaded.workspace) for t in transforms]

    try:
        emitter = lineage_emitter(loaded.workspace, transport=transport, url=url)
    except LineageConfigError as exc:
        _usage_error(str(exc), output)
    with emitter:
        for event in events:
            emitter.emit(event)
    warnings = list(dict.fromkeys(emitter.warnings))
    shortfall = emitter.shortfall(len(events))
    if output == "json":
        emit_json({"transport": emitter.description, "jobs": [graph.nodes[t].id for t in transforms],
                   "datasets": datasets, "events": len(events), "delivered": emitter.delivered,
                   "undelivered": len(events) - emitter.delivered, "spooled": emitter.spooled,
                   "error": shortfall, "warnings": warnings})
    elif shortfall is None:
        click.echo(f"emitted {len(events)} OpenLineage events ({len(transforms)} jobs, {len(datasets)} datasets) "
                   f"via {emitter.description}", err=emitter.description.startswith("console"))
    for warning in warnings:
        click.echo(f"dkb: warning: {warning}", err=True)
    if shortfall is not None:       # last, so that it is what a CI log ends with
        click.echo(shortfall, err=True)
    sys.exit(EXIT_OK if shortfall is None else EXIT_PROBLEMS)


@click.command("replay")
@click.option("--url", default=None, help="OpenLineage endpoint (default: OPENLINEAGE_URL, then [lineage] url).")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def replay_command(ctx: click.Context, url: str | None, output: str) -> None:
    """Resend events spooled in .dkb/lineage/spool.jsonl; delivered ones leave the spool."""
    from dkbuild.lineage.transport import FIX, LineageConfigError, replay, resolve_url, spool_path
    from dkbuild.redaction import redact_text

    workspace = load_workspace_only(ctx, output)
    try:
        delivered, remaining, warnings = replay(workspace, url=url)
    except LineageConfigError as exc:
        _usage_error(str(exc), output)
    warnings = list(dict.fromkeys(warnings))
    if output == "json":
        emit_json({"delivered": delivered, "remaining": remaining, "spool": str(spool_path(workspace)),
                   "warnings": warnings})
    else:
        click.echo(f"replayed {delivered} spooled events; {remaining} still spooled")
    for warning in warnings:
        click.echo(f"dkb: warning: {warning}", err=True)
    if remaining:
        target = redact_text(resolve_url(workspace, url) or "")
        click.echo(f"✗ {remaining} event(s) still spooled in {spool_path(workspace)}: {target} did not take them"
                   f"\n  fix: {FIX}", err=True)
    sys.exit(EXIT_PROBLEMS if remaining else EXIT_OK)

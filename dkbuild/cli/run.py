"""`dkb run TARGET [-- ARGS]`: run a package, emitting OpenLineage runtime events."""

from __future__ import annotations

import sys

import click

from dkbuild.cli.common import (
    EXIT_USAGE,
    emit_json,
    fail_pattern,
    load_workspace_graph,
    note_warnings,
)
from dkbuild.graph.labels import PatternError


@click.command("run")
@click.argument("target")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--dry-run", is_flag=True, help="Print the command, env names and events; run and send nothing.")
@click.option("--container", is_flag=True, help="Run the package's image through Docker instead of locally.")
@click.option("--lineage-url", metavar="URL", help="OpenLineage endpoint (http transport); events go to URL/api/v1/lineage.")
@click.option("--transport", type=click.Choice(["file", "http", "console"]), default=None,
              help="Where events go (default: workspace config, else a JSON-lines file under .dkb/lineage).")
@click.option("--heartbeat", "heartbeat", type=float, default=30.0, show_default=True, metavar="SECONDS",
              help="Interval of RUNNING events while the package runs (0 disables them).")
@click.option("--timeout", type=float, default=None, metavar="SECONDS",
              help="Kill the run after SECONDS (default: spec.timeout, else 30m).")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def run_command(ctx: click.Context, target: str, args: tuple[str, ...], dry_run: bool, container: bool,
                lineage_url: str | None, transport: str | None, heartbeat: float, timeout: float | None,
                output: str) -> None:
    """Run TARGET (one Transform) and exit with its exit code.

    \b
    dkb run //pipelines/enrich
    dkb run //pipelines/enrich --dry-run
    dkb run //pipelines/enrich --transport http --lineage-url http://localhost:5000 -- --limit 10

    Store connections reach the package as DK_STORE_DSN_<STORE> and DK_STORE_TYPE_<STORE>; store
    secrets (${VAR} in the Store) are read from the environment. Exit code: the package's; 2 when the
    run cannot be prepared.
    """
    from dkbuild.graph.select import select
    from dkbuild.lineage.run import RunError, check_docker, plan_run, run_package

    loaded = load_workspace_graph(ctx, output)
    note_warnings(loaded)
    try:
        matched = select(loaded.graph, [target], loaded.current_package)
    except PatternError as exc:
        fail_pattern(exc, output)
    transforms = sorted(m for m in matched if loaded.graph.nodes[m].kind == "Transform")
    if len(transforms) != 1:
        names = ", ".join(transforms[:5]) + (" …" if len(transforms) > 5 else "")
        _error(f"{target} names {len(transforms)} Transforms{f' ({names})' if names else ''}; "
               "`dkb run` runs exactly one", output)
    (label,) = transforms

    try:   # everything that can be wrong is found before the emitter touches .dkb/ or the network
        plan_run(loaded, label, container=container, timeout=timeout, placeholders=dry_run)
        if container and not dry_run:
            check_docker()
    except RunError as exc:
        _error(str(exc), output)
    emitter = None
    if not dry_run:
        from dkbuild.api import lineage_emitter

        try:
            emitter = lineage_emitter(loaded.workspace, transport=transport, url=lineage_url)
        except (ValueError, OSError) as exc:   # LineageConfigError is a ValueError
            _error(f"lineage transport: {exc}", output)
    try:
        result = run_package(loaded, label, dry_run=dry_run, container=container, emitter=emitter,
                             heartbeat_seconds=heartbeat, timeout=timeout, extra_args=list(args),
                             stdout=sys.stderr if output == "json" else None)
    except RunError as exc:
        _error(str(exc), output)
    finally:
        if emitter is not None:
            emitter.close()

    destination = "not sent (dry run)" if dry_run else _describe(emitter, transport, lineage_url)
    if output == "json":
        emit_json({"target": label, **result.to_json(), "lineage": destination})
    elif dry_run:
        click.echo(f"dry run of {label} (nothing is run or sent)")
        click.echo(f"  cwd:     {result.cwd}")
        if result.image:
            click.echo(f"  image:   {result.image}")
        click.echo(f"  command: {' '.join(result.command)}")
        click.echo("  env:")
        for name, value in sorted(result.env.items()):
            shown = value if name.startswith("DK_STORE_") else "(set)"
            click.echo(f"    {name}={shown}" if name.startswith("DK_STORE_") else f"    {name} {shown}")
        click.echo(f"  run id:  {result.run_id}")
        click.echo("  events it would send:")
        for event in result.events:
            click.echo(f"    {event['eventType']} {event['job']['namespace']}/{event['job']['name']}")
    else:
        kinds = ", ".join(e["eventType"] for e in result.events)
        click.echo(f"dkb: {label} exited {result.exit_code}; run {result.run_id}; "
                   f"{len(result.events)} lineage event(s) ({kinds}) → {destination}", err=True)
    for warning in result.warnings:
        click.echo(f"dkb: warning: {warning}", err=True)
    sys.exit(result.exit_code)


def _describe(emitter: object, transport: str | None, url: str | None) -> str:
    for attr in ("description", "describe", "destination"):
        value = getattr(emitter, attr, None)
        if callable(value):
            value = value()
        if value:
            return str(value)
    if url:
        return f"{transport or 'http'} {url}"
    return transport or "the workspace's default lineage transport"


def _error(message: str, output: str) -> None:
    if output == "json":
        emit_json({"errors": [{"message": message}]})
    click.echo(f"dkb: error: {message}", err=True)
    sys.exit(EXIT_USAGE)

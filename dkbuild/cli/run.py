"""`dkb run TARGET [-- ARGS]`: run a package, emitting OpenLineage runtime events."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dkbuild.cli.common import (
    EXIT_USAGE,
    emit_json,
    fail_pattern,
    load_workspace_graph,
    note_warnings,
)
from dkbuild.graph.labels import PatternError


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from dkbuild.governance.values import parse_go_duration

    if value is None:
        return None
    seconds = parse_go_duration(value.strip())
    if seconds is None or seconds < 0:
        raise click.BadParameter(f"{value!r} is not a duration like 30m, 1h30m, 90s or 500ms (Go's syntax, as dk)")
    return seconds


def _env_pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in values:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (e.g. -e LOG_LEVEL=debug)")
        env[name] = value
    return env


@click.command("run")
@click.argument("target")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--env", "-e", "env", multiple=True, callback=_env_pairs, metavar="KEY=VALUE",
              help="Set an environment variable for the package (repeatable); wins over spec.env and stores.")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="Override a dk.yaml value for this run, e.g. spec.timeout=4h (repeatable, after -f).")
@click.option("--values", "-f", "values_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Merge an override file into dk.yaml for this run (repeatable, in order).")
@click.option("--cell", metavar="CELL", help="Use the Stores of this cell (kubectl, namespace dk-CELL).")
@click.option("--kube-context", "--context", "kube_context", metavar="CONTEXT",
              help="kubectl context for --cell.")
@click.option("--dry-run", is_flag=True, help="Print the command, env names and events; run and send nothing.")
@click.option("--container", is_flag=True,
              help="Run the package's image (Docker or Podman) even when its toolchain is installed.")
@click.option("--lineage-url", metavar="URL", help="OpenLineage endpoint (http transport); events go to URL/api/v1/lineage.")
@click.option("--transport", type=click.Choice(["file", "http", "console"]), default=None,
              help="Where events go (default: workspace config, else a JSON-lines file under .dkb/lineage).")
@click.option("--heartbeat", "heartbeat", type=float, default=30.0, show_default=True, metavar="SECONDS",
              help="Interval of RUNNING events while the package runs (0 disables them).")
@click.option("--timeout", callback=_duration, default=None, metavar="DURATION",
              help="Kill the run after DURATION, e.g. 30m, 1h30m, 90s (default: spec.timeout, else 30m; "
                   "0: spec.timeout, else none).")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def run_command(ctx: click.Context, target: str, args: tuple[str, ...], env: dict[str, str], sets: tuple[str, ...],
                values_files: tuple[Path, ...], cell: str | None, kube_context: str | None, dry_run: bool,
                container: bool, lineage_url: str | None, transport: str | None, heartbeat: float,
                timeout: float | None, output: str) -> None:
    """Run TARGET (one Transform) and exit with its exit code.

    \b
    dkb run //pipelines/enrich
    dkb run //pipelines/enrich --dry-run
    dkb run //pipelines/sessionize -e SESSION_GAP=10m --timeout 5m
    dkb run //pipelines/revenue-mart --set spec.env[0].value=dev -f local.yaml
    dkb run //pipelines/enrich --transport http --lineage-url http://localhost:5000 -- --limit 10

    Runtimes: generic-python (dkb's Python), generic-go (go build), dbt (dbt-core and an adapter),
    cloudquery (the CloudQuery CLI). Without the toolchain, the package's image runs with Docker or
    Podman. Store connections reach the package as DK_STORE_DSN_<STORE> and DK_STORE_TYPE_<STORE>;
    store secrets (${VAR}) come from the environment, else the dev profile (.dkb/dev/profile.toml,
    `dkb dev profile`, `dkb config set --dev secrets.VAR VALUE`). Exit code: the package's; 2 when
    the run cannot be prepared.
    """
    from dkbuild.graph.select import select
    from dkbuild.lineage.run import RunError, plan_run, run_package

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
        plan = plan_run(loaded, label, container=container, timeout=timeout, placeholders=dry_run,
                        extra_env=env, extra_args=list(args), values_files=list(values_files), sets=list(sets),
                        cell=cell, kube_context=kube_context)
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
        result = run_package(loaded, label, dry_run=dry_run, emitter=emitter, heartbeat_seconds=heartbeat,
                             plan=plan, stdout=sys.stderr if output == "json" else None)
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
        click.echo(f"  runtime: {result.runtime} ({result.mode})")
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

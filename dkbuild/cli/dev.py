"""`dkb dev up|down|status`: the local stack (Redpanda, MinIO, Marquez, Postgres) via Docker Compose;
`dkb dev profile`: the local dev profile that `dkb run` reads Store secrets from."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from dkbuild.cli.common import emit_json, load_workspace_only


@click.group("dev")
def dev_group() -> None:
    """Local stack: Redpanda (Kafka API), MinIO (S3), Marquez (lineage API and web UI), Postgres.

    Ports and image overrides come from [dev] in workspace.toml. The compose file is written to
    .dkb/dev/compose.yaml; the Compose project is dkb-<workspace name>.
    """


def _stack(ctx: click.Context, output: str = "text"):  # type: ignore[no-untyped-def]
    from dkbuild.devstack import DevStack, DevStackError

    workspace = load_workspace_only(ctx.find_root(), output)
    try:
        return DevStack.of(workspace)
    except DevStackError as exc:
        _fail(exc, output)


def _fail(exc: Any, output: str = "text") -> NoReturn:
    if output == "json":
        emit_json({"errors": [{"message": str(exc), "hint": exc.hint}]})
    click.echo(f"dkb: error: {exc}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), err=True)
    sys.exit(exc.exit_code)


@dev_group.command("up")
@click.pass_context
def up_command(ctx: click.Context) -> None:
    """Start the stack and wait until every service is healthy."""
    from dkbuild.devstack import DevStackError, endpoints, up

    stack = _stack(ctx)
    click.echo(f"dkb: starting {stack.name} ({stack.compose_file.relative_to(stack.root)})", err=True)
    try:
        up(stack)
    except DevStackError as exc:
        _fail(exc)
    width = max(len(k) for k in endpoints(stack.settings))
    for key, url in endpoints(stack.settings).items():
        click.echo(f"{key:<{width}}  {url}")


@dev_group.command("down")
@click.option("--volumes", "-v", is_flag=True, help="Also delete the named volumes (all local data).")
@click.pass_context
def down_command(ctx: click.Context, volumes: bool) -> None:
    """Stop and remove the stack's containers (data is kept unless --volumes)."""
    from dkbuild.devstack import DevStackError, down

    stack = _stack(ctx)
    try:
        down(stack, volumes=volumes)
    except DevStackError as exc:
        _fail(exc)
    click.echo(f"dkb: stopped {stack.name}" + (" and deleted its volumes" if volumes else ""), err=True)


@dev_group.command("status")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def status_command(ctx: click.Context, output: str) -> None:
    """Each service's state and health; exit 1 unless every service is running and healthy."""
    from dkbuild.devstack import DevStackError, endpoints, is_up, status

    stack = _stack(ctx, output)
    try:
        states = status(stack)
    except DevStackError as exc:
        _fail(exc, output)
    running = is_up(states)
    if output == "json":
        emit_json({"project": stack.name, "compose_file": str(stack.compose_file), "up": running,
                   "services": [s.to_json() for s in states],
                   "endpoints": endpoints(stack.settings) if running else {}})
    else:
        rows = [("SERVICE", "STATE", "HEALTH", "CONTAINER")] + [
            (s.service, s.state, s.health or "-", s.container or "-") for s in states]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for row in rows:
            click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3])
        click.echo(f"\n{stack.name}: " + ("up, lineage at " + endpoints(stack.settings)["lineage"] if running
                                         else "not up (dkb dev up)"))
    sys.exit(0 if running else 1)


@dev_group.command("profile")
@click.option("--force", is_flag=True, help="Overwrite an existing profile (its values are lost).")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def profile_command(ctx: click.Context, force: bool, output: str) -> None:
    """Write the local dev profile, .dkb/dev/profile.toml: values for Store secrets on this machine.

    \b
    It is copied from the workspace's dev-profile.template.toml, else written as a skeleton naming
    every secret variable the stores use. It is git-ignored and readable only by you. `dkb run`
    resolves a secret from the environment first, then from this file. Edit it, or:
    dkb config set --dev secrets.CRM_DB_PASSWORD VALUE
    """
    from dkbuild.cli.common import fail, load_workspace_graph
    from dkbuild.devprofile import load_profile, write_profile
    from dkbuild.diagnostics import DkbError
    from dkbuild.lineage.storeenv import secret_variables

    loaded = load_workspace_graph(ctx, output, quiet_skips=True)
    root = loaded.workspace.root
    needed = secret_variables(loaded.graph)
    try:
        path, source = write_profile(root, needed, force=force)
        profile = load_profile(root)
    except DkbError as exc:
        fail(exc.diagnostics, output)
    missing = sorted(var for var in needed if var not in profile.secrets)
    shown = path.relative_to(root)
    if output == "json":
        emit_json({"profile": str(path), "written_from": source, "secrets_set": sorted(profile.secrets),
                   "secrets_missing": missing, "stores_replaced": sorted(profile.stores)})
        return
    if source == "kept":
        click.echo(f"dkb: {shown} exists; kept as it is (--force rewrites it)", err=True)
    else:
        click.echo(f"dkb: wrote {shown} from {source} (git-ignored, mode 600)", err=True)
    click.echo(f"secrets set: {len(profile.secrets)}" + (f"; not set: {', '.join(missing)}" if missing else ""))
    for name, stand_in in sorted(profile.stores.items()):
        click.echo(f'store "{name}" runs locally as {stand_in.connector}')
    if missing:
        click.echo("set one with: dkb config set --dev secrets.VAR VALUE (or export VAR)")

"""`dkb ci init github`: write a CI workflow that lints, builds what changed, publishes and promotes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dkbuild.cli.common import EXIT_USAGE, load_workspace_only
from dkbuild.graph.shard import MAX_SHARDS


@click.group("ci")
def ci_group() -> None:
    """Write CI workflows that run dkb."""


@ci_group.command("init")
@click.argument("provider", type=click.Choice(["github"]))
@click.option("--output", "output_path", type=click.Path(dir_okay=False), metavar="PATH",
              help="Where to write (default .github/workflows/dkb.yml under the workspace root).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--branch", default="main", show_default=True, help="The trusted branch that writes the cache.")
@click.option("--shards", type=click.IntRange(1, MAX_SHARDS), default=1, show_default=True, metavar="N",
              help="Build as a matrix of N `--shard k/N` jobs sharing the remote cache; on BRANCH one job "
                   "after them publishes, all cache hits.")
@click.pass_context
def init_command(ctx: click.Context, provider: str, output_path: str | None, force: bool, branch: str,
                 shards: int) -> None:
    """Write the workflow for PROVIDER: pull requests lint (SARIF), explain and build what changed with
    the remote cache read-only; pushes to BRANCH build with cache writes and publish; a manual
    dispatch promotes a package to an environment."""
    from dkbuild.citemplates import TEMPLATES, CiSettings

    workspace = load_workspace_only(ctx)
    default_path, render = TEMPLATES[provider]
    path = Path(output_path) if output_path else workspace.root / default_path
    if path.exists() and not force:
        click.echo(f"dkb: error: {path} already exists\n  hint: pass --force to overwrite it", err=True)
        sys.exit(EXIT_USAGE)
    settings = CiSettings.of(workspace, branch, shards)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(settings), encoding="utf-8")
    click.echo(f"wrote {path}")
    if not settings.remote_cache:
        click.echo("dkb: note: [cache] remote is not set; the workflow reads the remote cache location "
                   "from the DKB_REMOTE_CACHE repository variable", err=True)

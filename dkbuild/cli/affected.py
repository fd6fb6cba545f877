from __future__ import annotations

from typing import Any

import click

from dkbuild.cli.common import (
    PatternCommand,
    complete_labels,
    emit_json,
    fail,
    fail_pattern,
    load_workspace_graph,
    note_warnings,
)
from dkbuild.cli.build import shard_option
from dkbuild.diagnostics import DkbError
from dkbuild.graph.labels import PatternError


@click.command("affected", cls=PatternCommand)
@click.argument("patterns", nargs=-1, shell_complete=complete_labels)
@click.option("--since", "since", required=True, metavar="REF",
              help="Compare with the merge base of REF and HEAD (e.g. origin/main, HEAD~1).")
@click.option("--dependents", type=click.Choice(["none", "direct", "transitive"]), default="none",
              show_default=True, help="Also list targets that reference affected ones.")
@shard_option("List")
@click.option("--explain", is_flag=True, help="Say, for each target, which part of its key changed.")
@click.option("--output", "-o", type=click.Choice(["label", "json"]), default="label", show_default=True)
@click.pass_context
def affected_command(ctx: click.Context, patterns: tuple[str, ...], since: str, dependents: str, shard: Any,
                     explain: bool, output: str) -> None:
    """List targets whose content key changed since REF (default scope //...).

    The working tree, with uncommitted and untracked files, is compared with `git merge-base REF
    HEAD`, read from git objects without a checkout. A shallow clone, an unknown REF or a REF with
    no common history is an error (exit 2), never "everything".
    """
    from dkbuild.affected_api import affected_targets

    errors_as = "json" if output == "json" else "text"
    loaded = load_workspace_graph(ctx, errors_as)
    note_warnings(loaded)
    try:
        result = affected_targets(loaded, since, dependents, list(patterns) or None, shard=shard)
    except DkbError as exc:
        fail(exc.diagnostics, errors_as)
    except PatternError as exc:
        fail_pattern(exc, errors_as)
    if output == "json":
        emit_json(result.to_json())
        return
    if explain:
        click.echo(f"dkb: comparing the working tree with {result.merge_base[:12]} "
                   f"(merge base of {since} and HEAD)", err=True)
    for target in result.targets.values():
        click.echo(target.label)
        if explain:
            for reason in target.reasons:
                click.echo(f"  {reason.describe()}")
    if result.deleted:
        click.echo(f"dkb: {len(result.deleted)} target(s) deleted since {result.merge_base[:12]}: "
                   f"{', '.join(result.deleted)}", err=True)

from __future__ import annotations

import click

from dkbuild.cli.common import (
    PatternCommand,
    complete_labels,
    fail_pattern,
    load_workspace_graph,
    note_warnings,
)
from dkbuild.cli.query import render_targets
from dkbuild.graph.labels import PatternError


@click.command("graph", cls=PatternCommand)
@click.argument("patterns", nargs=-1, shell_complete=complete_labels)
@click.option("--output", "-o", type=click.Choice(["dot", "mermaid", "json"]), default="dot", show_default=True)
@click.option("--no-deps", is_flag=True, help="Draw only the selected targets, not what they reference.")
@click.pass_context
def graph_command(ctx: click.Context, patterns: tuple[str, ...], output: str, no_deps: bool) -> None:
    """Draw the selected targets (default //...) and everything they reference."""
    from dkbuild.graph.select import select

    loaded = load_workspace_graph(ctx, "json" if output == "json" else "text")
    note_warnings(loaded)
    try:
        ids = select(loaded.graph, list(patterns), loaded.current_package)
    except PatternError as exc:
        fail_pattern(exc, "json" if output == "json" else "text")
    if not no_deps:
        from dkbuild.graph.query.traversal import reachable

        ids = reachable(loaded.graph, ids)
    render_targets(loaded, ids, output)

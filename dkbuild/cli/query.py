from __future__ import annotations

import sys

import click

from dkbuild.cli.common import (
    emit_json,
    fail_pattern,
    load_workspace_graph,
    note_warnings,
)
from dkbuild.graph.labels import PatternError

FORMATS = ["label", "label_kind", "json", "dot", "mermaid"]


@click.command("query")
@click.argument("expression")
@click.option("--output", "-o", type=click.Choice(FORMATS), default="label", show_default=True)
@click.pass_context
def query_command(ctx: click.Context, expression: str, output: str) -> None:
    """Evaluate a query expression, e.g. 'rdeps(//..., //datasets/raw-events)'.

    Functions: deps, rdeps, allpaths, somepath, kind, attr, filter; operators + - ^
    (union, except, intersect); let x = e in e; patterns as words.
    """
    import dkbuild.lineage.query  # noqa: F401  (registers produces, consumes, pii, impact, lineage, classification)
    from dkbuild.graph.query import QuerySyntaxError
    from dkbuild.lineage.query import evaluate_with_reasons

    loaded = load_workspace_graph(ctx, "json" if output == "json" else "text")
    note_warnings(loaded)
    try:
        ids, reasons = evaluate_with_reasons(expression, loaded.graph, loaded.current_package)
    except QuerySyntaxError as exc:
        caret = " " * max(exc.column - 1, 0) + "^"
        if output == "json":
            emit_json({"errors": [{"code": "E141", "message": str(exc), "column": exc.column,
                                   "hint": exc.hint}]})
        click.echo(f"dkb: query syntax error: {exc}\n  {expression}\n  {caret}"
                   + (f"\n  hint: {exc.hint}" if exc.hint else ""), err=True)
        sys.exit(2)
    except PatternError as exc:
        fail_pattern(exc, "json" if output == "json" else "text")
    render_targets(loaded, ids, output, reasons)


def render_targets(loaded, ids: set[str], output: str,  # type: ignore[no-untyped-def]
                   reasons: dict[str, list[str]] | None = None) -> None:
    from dkbuild.graph import render

    graph = loaded.graph
    if output == "json":
        from dkbuild.api import compute_keys

        document = render.render_json(graph, ids, compute_keys(loaded).keys)
        for target in document["targets"]:
            target["reasons"] = (reasons or {}).get(target["label"], [])
        emit_json(document)
    elif output == "dot":
        click.echo(render.render_dot(graph, ids), nl=False)
    elif output == "mermaid":
        click.echo(render.render_mermaid(graph, ids), nl=False)
    elif output == "label_kind":
        click.echo(render.render_label_kind(graph, ids), nl=False)
    else:
        click.echo(render.render_labels(graph, ids), nl=False)

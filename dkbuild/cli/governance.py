from __future__ import annotations

import sys
from pathlib import Path

import click

from dkbuild.cli.common import PatternCommand, fail_pattern, load_workspace_graph
from dkbuild.graph.labels import PatternError


@click.group("governance")
def governance_group() -> None:
    """Governance: classification, owners, PII and policy compliance."""


@governance_group.command("report", cls=PatternCommand)
@click.argument("patterns", nargs=-1)
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Narrow the report: pii=true|false, classification=LEVEL, runtime=NAME, namespace=NS. "
                   "Repeatable; all must hold.")
@click.option("--namespace", metavar="NS", help="Shorthand for --filter namespace=NS.")
@click.option("--output", type=click.Choice(["text", "json", "markdown", "html"]), default="text",
              show_default=True)
@click.option("-o", "out_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the report to FILE instead of stdout.")
@click.option("--fail-on-violation", is_flag=True, help="Exit 1 when a policy fails.")
@click.option("--all", "everything", is_flag=True, help="Every package and dataset (dk's spelling of //...).")
@click.pass_context
def report_command(ctx: click.Context, patterns: tuple[str, ...], filters: tuple[str, ...], namespace: str | None,
                   output: str, out_file: str | None, fail_on_violation: bool, everything: bool) -> None:
    """Report classification, owners, PII columns and flows, and policy compliance (default //...).

    Exit 0 (1 with --fail-on-violation when a policy fails), 2 on bad input or arguments.
    """
    from dkbuild.governance.report import (
        FilterError,
        build_report,
        parse_filters,
        render,
    )
    from dkbuild.graph.select import select

    if everything and patterns:
        raise click.UsageError("--all reports on everything; give it or patterns, not both")
    loaded = load_workspace_graph(ctx, "json" if output == "json" else "text")
    try:
        parsed = parse_filters(filters, namespace)
    except FilterError as exc:
        click.echo(f"dkb: error: {exc}", err=True)
        sys.exit(2)
    try:
        selected = select(loaded.graph, list(patterns), loaded.current_package) if patterns else None
    except PatternError as exc:
        fail_pattern(exc, output)
    report = build_report(loaded.graph, loaded.workspace.config.policy, selected=selected, filters=parsed,
                          patterns=list(patterns) or ["//..."], workspace=loaded.workspace.config.workspace.name)
    text = render(report, output)
    if out_file:
        Path(out_file).write_text(text, encoding="utf-8")
        click.echo(f"dkb: wrote {output} governance report to {out_file}", err=True)
    else:
        click.echo(text, nl=not text.endswith("\n"))
    failed = report["summary"]["policies_failed"]
    sys.exit(1 if fail_on_violation and failed else 0)

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dkbuild.cli.common import (
    PatternCommand,
    complete_labels,
    emit_json,
    fail_pattern,
    load_workspace_graph,
)
from dkbuild.graph.labels import PatternError


@click.command("lint", cls=PatternCommand)
@click.argument("patterns", nargs=-1, shell_complete=complete_labels)
@click.option("--output", "-o", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--sarif", "sarif_file", type=click.Path(dir_okay=False), help="Also write SARIF 2.1.0 to FILE.")
@click.pass_context
def lint_command(ctx: click.Context, patterns: tuple[str, ...], output: str, strict: bool,
                 sarif_file: str | None) -> None:
    """Lint manifests, cross-package references and governance policies (default //...).

    Exit 0 when clean (warnings allowed), 1 on lint errors, 2 when input cannot be loaded.
    """
    from dkbuild.api import lint_workspace
    from dkbuild.governance.render import (
        render_json,
        render_sarif,
        render_text,
        summary_line,
    )

    loaded = load_workspace_graph(ctx, output, quiet_skips=True)
    try:
        report = lint_workspace(loaded, list(patterns), strict)
    except PatternError as exc:
        fail_pattern(exc, output)
    if sarif_file:
        Path(sarif_file).write_text(json.dumps(render_sarif(report.diagnostics), indent=2) + "\n")
    if output == "json":
        emit_json(render_json(report.diagnostics, report.targets, report.exit_code))
    elif output == "sarif":
        emit_json(render_sarif(report.diagnostics))
    else:
        text = render_text(report.diagnostics, color=sys.stdout.isatty())
        if text:
            click.echo(text.rstrip() + "\n")
        click.echo(summary_line(report.diagnostics, len(report.targets)))
    sys.exit(report.exit_code)

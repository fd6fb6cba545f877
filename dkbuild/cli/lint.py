from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dkbuild.cli.common import (
    PatternCommand,
    complete_labels,
    emit_json,
    fail,
    fail_pattern,
    load_workspace_graph,
)
from dkbuild.diagnostics import DkbError
from dkbuild.graph.labels import PatternError


@click.command("lint", cls=PatternCommand)
@click.argument("patterns", nargs=-1, shell_complete=complete_labels)
@click.option("--output", "-o", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Treat warnings as errors (advisory findings stay warnings).")
@click.option("--skip-pii", is_flag=True, help="Skip the PII and classification policies (E600-E602).")
@click.option("--skip-schema-lock", is_flag=True,
              help="Accepted for dk compatibility: dkb does not check dk.lock, so there is nothing to skip.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a dk.yaml value before linting (repeatable; applied after -f files, in order).")
@click.option("--values", "-f", "value_files", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Deep-merge a YAML file over dk.yaml before linting (repeatable, in order).")
@click.option("--sarif", "sarif_file", type=click.Path(dir_okay=False), help="Also write SARIF 2.1.0 to FILE.")
@click.pass_context
def lint_command(ctx: click.Context, patterns: tuple[str, ...], output: str, strict: bool, skip_pii: bool,
                 skip_schema_lock: bool, sets: tuple[str, ...], value_files: tuple[str, ...],
                 sarif_file: str | None) -> None:
    """Lint manifests, cross-package references and governance policies (default //...).

    PATTERNS are labels (//pkg, //pkg/...) or directories as dk takes them (`.`, `./pkg`): a
    directory lints everything at or below it. -f and --set change the selected packages' dk.yaml
    as dk does (dk.yaml < -f files in order < --set in order); the files on disk are not changed.

    Exit 0 when clean (warnings allowed), 1 on lint errors, 2 when input cannot be loaded.
    """
    from dkbuild.api import lint_workspace
    from dkbuild.governance.options import LintOptions
    from dkbuild.governance.overrides import parse_overrides
    from dkbuild.fsutil import atomic_write
    from dkbuild.governance.render import (
        SourceRoot,
        render_json,
        render_sarif,
        render_text,
        summary_line,
    )

    del skip_schema_lock    # dk's flag, accepted: dkb has no dk.lock check to skip
    try:
        # -f paths are relative to where dkb runs (-C DIR included), as dk's are to its cwd.
        overrides = parse_overrides(value_files, sets, Path(ctx.obj["directory"]))
    except DkbError as exc:
        fail(exc.diagnostics, output)
    options = LintOptions(strict=strict, skip_pii=skip_pii, overrides=overrides)
    loaded = load_workspace_graph(ctx, output, quiet_skips=True)
    try:
        report = lint_workspace(loaded, list(patterns), options=options)
    except PatternError as exc:
        fail_pattern(exc, output)
    except DkbError as exc:     # e.g. a file changed while its checks read it (E531)
        fail(exc.diagnostics, output)
    if sarif_file or output == "sarif":
        sarif = render_sarif(report.diagnostics, SourceRoot.of(Path(loaded.workspace.root)))
    if sarif_file:
        atomic_write(Path(sarif_file), (json.dumps(sarif, indent=2) + "\n").encode())
    if output == "json":
        emit_json(render_json(report.diagnostics, report.targets, report.exit_code))
    elif output == "sarif":
        emit_json(sarif)
    else:
        text = render_text(report.diagnostics, color=sys.stdout.isatty())
        if text:
            click.echo(text.rstrip() + "\n")
        click.echo(summary_line(report.diagnostics, len(report.targets)))
    sys.exit(report.exit_code)

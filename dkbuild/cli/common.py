"""Shared CLI plumbing: loading with clean exits, error rendering, JSON emission."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from dkbuild.diagnostics import Diagnostic, DkbError
from dkbuild.graph.labels import PatternError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False))


def fail(diagnostics: list[Diagnostic], output: str = "text") -> NoReturn:
    from dkbuild.governance.render import render_text

    if output == "json":
        emit_json({"errors": [d.to_json() for d in diagnostics]})
    click.echo(render_text(diagnostics, color=sys.stderr.isatty()).rstrip(), err=True)
    sys.exit(EXIT_USAGE)


def fail_pattern(exc: PatternError, output: str = "text") -> NoReturn:
    caret = " " * max(exc.column - 1, 0) + "^"
    if output == "json":
        emit_json({"errors": [{"code": "E140", "message": str(exc), "text": exc.text, "column": exc.column,
                               "hint": exc.hint}]})
    click.echo(f"dkb: error: {exc}\n  {exc.text}\n  {caret}" + (f"\n  hint: {exc.hint}" if exc.hint else ""),
               err=True)
    sys.exit(EXIT_USAGE)


def load_workspace_graph(ctx: click.Context, output: str = "text", *, allow_unusable: bool = False,  # type: ignore[no-untyped-def]
                         deferred: bool = False):
    """Load the workspace; unusable input ends the command with exit 2 unless the caller reports it.
    `deferred` indexes the workspace only: call `ensure_usable` before using its graph."""
    from dkbuild.api import load

    try:
        loaded = load(ctx.obj["directory"], deferred=deferred)
    except DkbError as exc:
        fail(exc.diagnostics, output)
    if not deferred and not allow_unusable:
        ensure_usable(loaded, output)
    return loaded


def ensure_usable(loaded: Any, output: str = "text") -> None:
    """Load the manifests and graph if not yet loaded; exit 2 when they are unusable."""
    try:
        unusable = loaded.result.unusable
    except DkbError as exc:
        fail(exc.diagnostics, output)
    if unusable:
        fail([d for d in loaded.diagnostics if d.is_error], output)


def load_workspace_only(ctx: click.Context, output: str = "text"):  # type: ignore[no-untyped-def]
    """The workspace and its config, without loading manifests (for commands about the store)."""
    from dkbuild.workspace import load_workspace

    try:
        return load_workspace(Path(ctx.obj["directory"]))
    except DkbError as exc:
        fail(exc.diagnostics, output)


def note_warnings(loaded: Any) -> None:
    warnings = [d for d in loaded.diagnostics if not d.is_error]
    if warnings:
        click.echo(f"dkb: {len(warnings)} warning(s) while loading manifests; run `dkb lint` for details",
                   err=True)


class PatternCommand(click.Command):
    """A command whose arguments may include subtracting patterns (`-//pkg/...`, `-:name`), which
    click would otherwise parse as bundles of short options. Bazel needs `--` first; we don't."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        shielded = {f"\0pattern{i}": a for i, a in enumerate(args) if a.startswith(("-//", "-:"))}
        back = {a: token for token, a in shielded.items()}
        rest = super().parse_args(ctx, [back.get(a, a) for a in args])
        if "patterns" in ctx.params:
            ctx.params["patterns"] = tuple(shielded.get(p, p) for p in ctx.params["patterns"])
        return rest


def complete_labels(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Label completion for pattern arguments (imported only when the shell asks)."""
    from dkbuild.completion import complete_labels as complete

    return complete(ctx, param, incomplete)

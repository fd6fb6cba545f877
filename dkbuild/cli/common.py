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
EXIT_INTERRUPTED = 128 + 2      # SIGINT, as shells report it


def exit_interrupted(what: str) -> NoReturn:
    """End a command stopped by Ctrl-C: its last line says so (never a ✓), then exit 130."""
    click.echo(f"✗ interrupted: {what}", err=True)
    sys.exit(EXIT_INTERRUPTED)


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


def load_workspace_graph(ctx: click.Context, output: str = "text", *, quiet_skips: bool = False,  # type: ignore[no-untyped-def]
                         deferred: bool = False):
    """Load the workspace. A broken workspace.toml ends the command with exit 2; manifest files
    that cannot be loaded are left out and named on stderr (unless `quiet_skips`: lint reports
    them itself). `deferred` indexes the workspace only: call `ensure_loaded` before using its graph."""
    from dkbuild.api import load

    try:
        loaded = load(ctx.obj["directory"], deferred=deferred)
    except DkbError as exc:
        fail(exc.diagnostics, output)
    if not deferred:
        ensure_loaded(loaded, output, quiet_skips=quiet_skips)
    return loaded


def ensure_loaded(loaded: Any, output: str = "text", *, quiet_skips: bool = False) -> None:
    """Load the manifests and graph if not yet loaded (exit 2 only for a broken workspace), and say
    on stderr which files were left out: the answer is about the rest."""
    try:
        skipped = loaded.result.skipped
    except DkbError as exc:
        fail(exc.diagnostics, output)
    if skipped and not quiet_skips:
        files = sorted({d.file for d in skipped})
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        click.echo(f"dkb: warning: skipped {len(files)} manifest file(s) that could not be loaded ({shown}); "
                   f"the answer covers the rest; run `dkb lint` for the errors", err=True)


def load_workspace_only(ctx: click.Context, output: str = "text"):  # type: ignore[no-untyped-def]
    """The workspace and its config, without loading manifests (for commands about the store)."""
    from dkbuild.workspace import load_workspace

    try:
        return load_workspace(Path(ctx.obj["directory"]))
    except DkbError as exc:
        fail(exc.diagnostics, output)


def service_workspace_or_fail(workspace: Any, output: str = "text") -> Any:
    """The workspace with environment and user settings layered in (api.service_workspace); a bad
    value there (e.g. DKB_REGISTRY_TIMEOUT=-1) is a located error, exit 2."""
    from dkbuild.api import service_workspace

    try:
        return service_workspace(workspace)
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

"""The `dkb` entry point. Commands are imported lazily so `dkb --help` stays fast."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from dkbuild import __version__

COMMANDS = {
    "lint": ("dkbuild.cli.lint", "lint_command", "Check manifests, references and governance policies."),
    "query": ("dkbuild.cli.query", "query_command", "Answer a dependency query over the graph."),
    "graph": ("dkbuild.cli.graph", "graph_command", "Draw the graph of targets (dot, mermaid, json)."),
    "lineage": ("dkbuild.cli.lineage", "lineage_group", "Dataset and column lineage; OpenLineage events."),
    "governance": ("dkbuild.cli.governance", "governance_group", "Governance report: classification, PII, flows."),
    "run": ("dkbuild.cli.run", "run_command", "Run a package locally, emitting OpenLineage events."),
    "promote": ("dkbuild.cli.gitops", "promote_command", "Promote published digests to an environment (GitOps PR)."),
    "rollback": ("dkbuild.cli.gitops", "rollback_command", "Roll an environment back to an earlier version (GitOps PR)."),
    "status": ("dkbuild.cli.gitops", "status_command", "Which version and digest runs in each environment."),
    "init": ("dkbuild.cli.init", "init_command", "Scaffold a package (or --workspace) that lints and builds."),
    "schema": ("dkbuild.cli.schema", "schema_command", "JSON Schemas for manifests and workspace.toml."),
    "config": ("dkbuild.cli.config", "config_group", "Get, set and list workspace and user settings."),
    "dev": ("dkbuild.cli.dev", "dev_group", "Local stack (Redpanda, MinIO, Marquez) through Docker Compose."),
    "ci": ("dkbuild.cli.ci", "ci_group", "Write CI workflows (GitHub Actions)."),
    "completion": ("dkbuild.cli.completion", "completion_command", "Shell completion script (bash, zsh, fish)."),
    "publish": ("dkbuild.cli.publish", "publish_command", "Push built artifacts, images, SBOMs and provenance."),
    "affected": ("dkbuild.cli.affected", "affected_command",
                 "List targets whose content key changed since a git revision."),
    "why": ("dkbuild.cli.why", "why_command", "Explain why a target is not a cache hit."),
    "cache": ("dkbuild.cli.cache", "cache_group", "Inspect and clean the local store (cache gc)."),
    "build": ("dkbuild.cli.build", "build_command", "Lint, then build selected targets into cached OCI artifacts."),
}


DIRECTORY_PARAM = "dkb_directory"


def _set_directory(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """`-C DIR` after a (sub)command: like git, a later -C is relative to an earlier one."""
    if value is None:
        return
    root = ctx.find_root()
    if root.obj is None:            # shell completion runs no group callback
        root.obj = {"directory": root.params.get("directory") or "."}
    root.obj["directory"] = os.path.join(root.obj["directory"], value)


def accept_directory(command: click.Command, ctx: click.Context) -> click.Command:
    """Give `command` (and, for a group, each of its subcommands) the root's `-C DIR`, so that it
    works after the command name as well as before it."""
    if not any(p.name == DIRECTORY_PARAM for p in command.params):
        command.params.append(click.Option(["-C", DIRECTORY_PARAM], metavar="DIR", type=click.Path(file_okay=False),
                                           expose_value=False, callback=_set_directory,
                                           help="Run as if started in DIR (also accepted before the command)."))
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                accept_directory(sub, ctx)
    return command


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return accept_directory(getattr(importlib.import_module(module), attr), ctx)

    def invoke(self, ctx: click.Context) -> Any:
        """The one place Ctrl-C ends a command that did not handle it itself (click would say
        "Aborted!" and exit 1): an "interrupted" last line and exit 130. Commands with partial
        results (build, publish, run) catch it first to say what was kept."""
        from dkbuild.cli.common import exit_interrupted

        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            exit_interrupted(f"`dkb {ctx.invoked_subcommand or ''}` stopped before it finished; run it again")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in sorted(COMMANDS)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dkb")
@click.option("-C", "directory", default=".", metavar="DIR", type=click.Path(file_okay=False),
              help="Run as if started in DIR.")
@click.pass_context
def cli(ctx: click.Context, directory: str) -> None:
    """dkb: a declarative build system for DataKit data-pipeline monorepos.

    Labels: //pkg:name, //pkg (its dk.yaml target), //pkg:all, //pkg/..., //...
    """
    ctx.obj = {"directory": directory}


EXIT_INTERNAL = 3    # an exception no command handled: a dkb bug, never a verdict on the input


def main(argv: list[str] | None = None) -> Any:
    """Run dkb. Whatever happens ends in a message and an exit code, never a traceback: a located
    error that no command caught is rendered (exit 2), an OSError names its file (exit 2), and
    anything else is an internal error (exit 3) whose traceback DKB_DEBUG=1 shows."""

    from dkbuild.cli.output_guard import guard_output

    guard_output()
    try:
        return cli.main(args=argv, prog_name="dkb", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        click.echo("dkb: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last resort; the tests fail on every case it sees
        if os.environ.get("DKB_DEBUG"):
            raise
        sys.exit(_last_resort(exc))


def _last_resort(exc: Exception) -> int:
    from dkbuild.cli.common import EXIT_USAGE
    from dkbuild.diagnostics import DkbError

    if isinstance(exc, DkbError):
        from dkbuild.governance.render import render_text

        click.echo(render_text(exc.diagnostics, color=sys.stderr.isatty()).rstrip(), err=True)
        return EXIT_USAGE
    if isinstance(exc, OSError) and exc.filename:
        click.echo(f"dkb: error: {exc.filename}: {exc.strerror or exc}", err=True)
        return EXIT_USAGE
    click.echo(f"dkb: internal error: {type(exc).__name__}: {exc} (please report it); "
               "run with DKB_DEBUG=1 for the traceback", err=True)
    return EXIT_INTERNAL

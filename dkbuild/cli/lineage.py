"""`dkb lineage TARGET ...` shows lineage; `dkb lineage emit|replay` send OpenLineage events."""

from __future__ import annotations

import importlib

import click

SUBCOMMANDS = {
    "show": ("dkbuild.cli.lineage_show", "show_command"),
    "emit": ("dkbuild.cli.lineage_emit", "emit_command"),
    "replay": ("dkbuild.cli.lineage_emit", "replay_command"),
}


class LineageGroup(click.Group):
    """`dkb lineage X` means `dkb lineage show X` unless X is a subcommand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module, attr = SUBCOMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[no-untyped-def]
        if args and args[0] not in SUBCOMMANDS and not args[0].startswith("--help"):
            args = ["show", *args]
        return super().resolve_command(ctx, args)


@click.group("lineage", cls=LineageGroup)
def lineage_group() -> None:
    """Dataset and column lineage from the graph, and OpenLineage events.

    \b
    dkb lineage //datasets/customers --downstream --depth 3
    dkb lineage customers.email --downstream --columns --output json
    dkb lineage emit //pipelines/... --transport file
    """

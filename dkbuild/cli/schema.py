"""`dkb schema`: JSON Schemas for the manifest kinds and workspace.toml (for editors and CI)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

KIND_CHOICES = ("Transform", "DataSet", "DataSetGroup", "Store", "Connector", "workspace")


def _dumps(schema: dict) -> str:  # type: ignore[type-arg]
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


@click.command("schema")
@click.argument("kind", required=False, metavar="[KIND]")
@click.option("--output", "-o", "output_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write <kind>.schema.json, dk.schema.json and workspace.schema.json into DIR.")
@click.pass_context
def schema_command(ctx: click.Context, kind: str | None, output_dir: str | None) -> None:
    """Print JSON Schemas (draft 2020-12) generated from dkb's own models.

    \b
    dkb schema                 the dk.yaml schema: oneOf the five kinds, chosen by `kind`
    dkb schema Transform       one kind (Transform, DataSet, DataSetGroup, Store, Connector)
    dkb schema workspace       the workspace.toml schema
    dkb schema --output DIR    write every schema as files into DIR

    Objects have additionalProperties: false so editors flag unknown fields; dkb itself only
    warns about them (W100).
    """
    from dkbuild.schemas import (
        all_schemas,
        kind_schema,
        manifest_schema,
        workspace_schema,
    )

    if kind is not None:
        match = {k.lower(): k for k in KIND_CHOICES}.get(kind.lower())
        if match is None:
            import difflib
            close = difflib.get_close_matches(kind, KIND_CHOICES, n=1)
            click.echo(f"dkb: error: unknown kind '{kind}'\n  hint: "
                       + (f"did you mean '{close[0]}'? " if close else "")
                       + f"choose one of {', '.join(KIND_CHOICES)}", err=True)
            sys.exit(2)
        kind = match

    if output_dir is not None:
        if kind is not None:
            click.echo("dkb: error: pass either KIND or --output\n  hint: --output writes every schema",
                       err=True)
            sys.exit(2)
        base = Path((ctx.obj or {}).get("directory", "."))
        directory = Path(output_dir) if Path(output_dir).is_absolute() else base / output_dir
        directory.mkdir(parents=True, exist_ok=True)
        for name, schema in all_schemas().items():
            (directory / name).write_text(_dumps(schema), encoding="utf-8")
            click.echo(f"wrote {directory / name}")
        return

    if kind is None:
        schema = manifest_schema()
    elif kind == "workspace":
        schema = workspace_schema()
    else:
        schema = kind_schema(kind)
    click.echo(_dumps(schema), nl=False)

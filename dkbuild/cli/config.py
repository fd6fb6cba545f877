"""`dkb config get|set|unset|list`: read and edit workspace.toml and the user config.

Effective values follow one precedence (dkbuild.userconfig.effective_config):
flag > environment > workspace.toml > user config ($XDG_CONFIG_HOME/dkb/config.toml) > default.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from dkbuild.cli.common import emit_json, fail
from dkbuild.diagnostics import DkbError

MASK = "***"


def _directory(ctx: click.Context) -> Path:
    obj = ctx.find_root().obj or {}
    return Path(obj.get("directory", ".") if isinstance(obj, dict) else ".")


def _root(ctx: click.Context, *, required: bool) -> Path | None:
    from dkbuild.workspace import find_root, load_workspace

    root = find_root(_directory(ctx))
    if root is None and required:
        try:
            load_workspace(_directory(ctx))                 # raises E120 with its hint
        except DkbError as exc:
            fail(exc.diagnostics)
    return root


def _fail(exc: Exception, output: str = "text") -> NoReturn:
    from dkbuild.userconfig import KeyError_

    if isinstance(exc, KeyError_):
        fail([exc.diagnostic], output)
    if isinstance(exc, DkbError):
        fail(exc.diagnostics, output)
    raise exc


def _render(value: Any) -> str:
    """A value as TOML would write it (strings quoted), for `list`."""
    import tomlkit

    if value is None:
        return "<unset>"
    return tomlkit.item(value).as_string()


def _plain(value: Any) -> str:
    """A value for `get`: strings bare (for scripts), everything else as a TOML literal."""
    return value if isinstance(value, str) else _render(value)


def _entries(ctx: click.Context) -> list[dict[str, Any]]:
    from dkbuild.userconfig import effective_config, flatten, is_secret, user_settings

    config, origins = effective_config(_root(ctx, required=False), os.environ, {})
    values = flatten(config.model_dump(mode="json"))
    extra, extra_origins = user_settings(os.environ)
    values.update(extra)
    origins = {**origins, **extra_origins}
    entries = []
    for key in values:
        value = values[key]
        secret = is_secret(key) and value is not None
        entries.append({"key": key, "value": MASK if secret else value, "origin": origins.get(key, "default"),
                        "secret": secret})
    return entries


@click.group("config")
def config_group() -> None:
    """Get, set and list workspace and user settings.

    KEY is dotted: registry.url, policy.pii_reviewers, environments.prod.approvals,
    rules.generic-python.base_image. Precedence: flag > environment (DKB_REGISTRY, DKB_REMOTE_CACHE,
    OPENLINEAGE_URL) > workspace.toml > user config ($XDG_CONFIG_HOME/dkb/config.toml) > default.
    """


@config_group.command("get")
@click.argument("key")
@click.option("--show-origin", is_flag=True, help="Also print where the value comes from.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def get_command(ctx: click.Context, key: str, show_origin: bool, output: str) -> None:
    """Print the effective value of KEY (exit 1 when it has no value).

    A section (e.g. `registry`) prints each of its keys.
    """
    from dkbuild.userconfig import key_info

    try:
        entries = _entries(ctx)
        selected = [e for e in entries if e["key"] == key] or [e for e in entries if e["key"].startswith(key + ".")]
        if not selected:
            key_info(key, "dkb config", known={e["key"]: e["value"] for e in entries})
            selected = [{"key": key, "value": None, "origin": "default", "secret": False}]
    except Exception as exc:  # noqa: BLE001 - DkbError/KeyError_ → exit 2, others re-raised
        _fail(exc, output)
    single = len(selected) == 1 and selected[0]["key"] == key
    if output == "json":
        if single:
            emit_json({"key": key, "value": selected[0]["value"], "origin": selected[0]["origin"]})
        else:
            emit_json({"key": key, "settings": [{k: e[k] for k in ("key", "value", "origin")} for e in selected]})
    elif single:
        entry = selected[0]
        if entry["value"] is not None:
            click.echo(_plain(entry["value"]) + (f"  ({entry['origin']})" if show_origin else ""))
    else:
        for entry in selected:
            click.echo(f"{entry['key']} = {_render(entry['value'])}"
                       + (f"  ({entry['origin']})" if show_origin else ""))
    if all(e["value"] is None for e in selected):
        sys.exit(1)


@config_group.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--user", "user", is_flag=True,
              help="Write the personal config ($XDG_CONFIG_HOME/dkb/config.toml) instead of workspace.toml.")
@click.option("--dev", "dev", is_flag=True,
              help="Write the local dev profile (.dkb/dev/profile.toml): secrets.VAR, stores.NAME.connector, "
                   "stores.NAME.connection.FIELD.")
@click.pass_context
def set_command(ctx: click.Context, key: str, value: str, user: bool, dev: bool) -> None:
    """Set KEY to VALUE in workspace.toml (or --user config), keeping comments and order.

    VALUE is typed by the key: true/false, integers, lists as a TOML array ('["a", "b"]') or a
    comma list (a,b). The file is validated before it is (atomically) rewritten; on error it is
    left untouched and dkb exits 2.
    """
    from dkbuild.userconfig import set_user_value, set_workspace_value

    try:
        if dev:
            path, changed = _dev_set(ctx, key, value)
        elif user:
            path, changed = set_user_value(key, value, os.environ)
        else:
            root = _root(ctx, required=True)
            assert root is not None
            path, changed = set_workspace_value(root, key, value)
            _warn_unknown_environment(root, key)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    click.echo(f"dkb: {'set' if changed else 'unchanged'} {key} in {path}", err=True)


def _dev_entries(ctx: click.Context) -> list[dict[str, Any]]:
    """The dev profile as `list` entries: every secret masked, stand-in stores as they are."""
    from dkbuild.devprofile import load_profile
    from dkbuild.userconfig import flatten

    root = _root(ctx, required=True)
    assert root is not None
    profile = load_profile(root)
    origin = f"dev:{profile.path}"
    entries = [{"key": f"secrets.{var}", "value": MASK, "origin": origin, "secret": True}
               for var in sorted(profile.secrets)]
    for name, stand_in in sorted(profile.stores.items()):
        body = {"connector": stand_in.connector, **({"connection": stand_in.connection} if stand_in.connection else {})}
        fields = flatten(body, f"stores.{name}.")
        entries += [{"key": k, "value": v, "origin": origin, "secret": False} for k, v in fields.items()]
    return entries


def _dev_set(ctx: click.Context, key: str, value: str | None) -> tuple[Path, bool]:
    """`--dev`: the dev profile; a value is stored as text (secrets and connection fields are)."""
    from dkbuild.devprofile import set_value

    root = _root(ctx, required=True)
    assert root is not None
    return set_value(root, key, value)


def _warn_unknown_environment(root: Path, key: str) -> None:
    from dkbuild.workspace import WORKSPACE_FILE, load_config

    parts = key.split(".")
    if parts[0] == "environments" and len(parts) == 3:
        order = load_config(root / WORKSPACE_FILE).environments.order
        if parts[1] not in order:
            click.echo(f"dkb: warning: environment '{parts[1]}' is not in environments.order "
                       f"({', '.join(order)}); promotions will not use it", err=True)


@config_group.command("unset")
@click.argument("key")
@click.option("--user", "user", is_flag=True, help="Remove from the personal config instead of workspace.toml.")
@click.option("--dev", "dev", is_flag=True, help="Remove from the local dev profile (.dkb/dev/profile.toml).")
@click.pass_context
def unset_command(ctx: click.Context, key: str, user: bool, dev: bool) -> None:
    """Remove KEY from workspace.toml (or --user config); the default (or a lower layer) applies again."""
    from dkbuild.userconfig import unset_user_value, unset_workspace_value

    try:
        if dev:
            path, changed = _dev_set(ctx, key, None)
        elif user:
            path, changed = unset_user_value(key, os.environ)
        else:
            root = _root(ctx, required=True)
            assert root is not None
            path, changed = unset_workspace_value(root, key)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    click.echo(f"dkb: {'unset' if changed else 'not set:'} {key} in {path}", err=True)


@config_group.command("list")
@click.option("--show-origin", is_flag=True,
              help="Print where each value comes from: flag, env:NAME, workspace:PATH:LINE, user:PATH, default.")
@click.option("--dev", "dev", is_flag=True, help="List the local dev profile instead (secret values show ***).")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def list_command(ctx: click.Context, show_origin: bool, dev: bool, output: str) -> None:
    """Every effective setting, one `key = value` per line. Secrets (token/password/key) show ***."""
    try:
        entries = _dev_entries(ctx) if dev else _entries(ctx)
    except Exception as exc:  # noqa: BLE001
        _fail(exc, output)
    if output == "json":
        from dkbuild.userconfig import user_config_path

        root = _root(ctx, required=False)
        emit_json({"workspace": str(root) if root else None, "user_config": str(user_config_path(os.environ)),
                   "settings": [{k: e[k] for k in ("key", "value", "origin")} for e in entries]})
        return
    for entry in entries:
        click.echo(f"{entry['key']} = {_render(entry['value'])}" + (f"  ({entry['origin']})" if show_origin else ""))


"""The local dev profile: values for Store secrets, and local stand-ins for stores, on this machine.

`.dkb/dev/profile.toml` is git-ignored (dkb writes `.dkb/dev/.gitignore`), readable only by its
owner, and read by local `dkb run` only. `dkb dev profile` writes it from the workspace's
`dev-profile.template.toml` (or, without a template, a skeleton naming every secret variable the
stores use); `dkb config set --dev KEY VALUE` edits it.

    [secrets]                       # ${VAR} of a Store's secrets, when VAR is not in the environment
    CRM_DB_PASSWORD = "dev-only"

    [stores.warehouse]              # run against a local DuckDB file instead of the real warehouse
    connector = "duckdb"
    connection = { path = ".dkb/dev/warehouse.duckdb" }

A secret resolves from the environment first, then from this file, else the run stops with an
error naming the variable and both ways to set it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dkbuild.diagnostics import DkbError, error

PROFILE = Path(".dkb") / "dev" / "profile.toml"
TEMPLATE = "dev-profile.template.toml"
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOP_KEYS = ("secrets", "stores")
_STORE_KEYS = ("connector", "connection")


@dataclass(frozen=True)
class StoreStandIn:
    """A store's replacement for a run: its connector (a type such as duckdb, or a Connector's name),
    connection (relative paths taken from the workspace root) and secrets (`${VAR}` text)."""
    connector: str
    connection: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DevProfile:
    path: Path
    secrets: dict[str, str] = field(default_factory=dict)
    stores: dict[str, StoreStandIn] = field(default_factory=dict)
    exists: bool = False


def profile_path(root: Path) -> Path:
    return Path(root) / PROFILE


def _error(path: Path, message: str, hint: str, line: int = 1) -> DkbError:
    return DkbError(error("E540", str(path), message, line=line, column=1, hint=hint))


def parse_profile(root: Path, path: Path, text: str) -> DevProfile:
    """The profile in `text`; DkbError (E540, file and line) when it is not one."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = int(m.group(1)) if (m := re.search(r"line (\d+)", str(exc))) else 1
        raise _error(path, f"not valid TOML: {exc}", "fix the line, or delete the file and run `dkb dev profile`",
                     line) from None
    lines = _key_lines(text)
    for key in data:
        if key not in _TOP_KEYS:
            raise _error(path, f"unknown section [{key}]", "a dev profile has [secrets] and [stores.NAME]",
                         lines.get(key, 1))
    secrets = data.get("secrets", {})
    if not isinstance(secrets, dict):
        raise _error(path, "secrets must be a table of VAR = \"value\"", "write [secrets] then VAR = \"value\"")
    for var, value in secrets.items():
        if not _VAR.fullmatch(var) or not isinstance(value, str):
            raise _error(path, f"secrets.{var}: expected an environment variable name and a string value",
                         f'write {var if _VAR.fullmatch(var) else "NAME"} = "value"', lines.get(var, 1))
    stores: dict[str, StoreStandIn] = {}
    for name, body in (data.get("stores") or {}).items():
        where = lines.get(name, 1)
        if not isinstance(body, dict) or not isinstance(body.get("connector"), str) or not body["connector"]:
            raise _error(path, f"stores.{name}: needs connector = \"TYPE\" (e.g. duckdb)",
                         f'add connector = "duckdb" under [stores.{name}]', where)
        unknown = sorted(set(body) - set(_STORE_KEYS))
        connection = body.get("connection", {})
        if unknown or not isinstance(connection, dict):
            raise _error(path, f"stores.{name}: only connector and connection (a table) are allowed"
                         + (f", not {', '.join(unknown)}" if unknown else ""),
                         f'write connection = {{ path = ".dkb/dev/{name}.duckdb" }}', where)
        stores[name] = StoreStandIn(body["connector"], _rooted(root, connection))
    return DevProfile(path, dict(secrets), stores, True)


def _rooted(root: Path, connection: dict[str, Any]) -> dict[str, Any]:
    """A relative `path` is taken from the workspace root, so every package sees the same file."""
    out = dict(connection)
    path = out.get("path")
    if isinstance(path, str) and path and not os.path.isabs(path) and "://" not in path and path != ":memory:":
        out["path"] = str(Path(root) / path)
    return out


def _key_lines(text: str) -> dict[str, int]:
    """The line of each bare key and [section] name (last dotted part), for error positions."""
    found: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if m := re.match(r"\[+\s*([^\]]+?)\s*\]+", stripped):
            found.setdefault(m.group(1).split(".")[-1], number)
        elif m := re.match(r"([A-Za-z0-9_\-]+)\s*=", stripped):
            found.setdefault(m.group(1), number)
    return found


def load_profile(root: Path) -> DevProfile:
    """The workspace's dev profile; an empty one (exists=False) when there is none."""
    path = profile_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return DevProfile(path)
    except OSError as exc:
        raise _error(path, f"cannot read the dev profile: {exc.strerror or exc}", "check its permissions") from None
    return parse_profile(root, path, text)


def skeleton(secret_vars: dict[str, str]) -> str:
    """A profile naming each secret variable (VAR -> 'store "x" key "y"'), values left for the user."""
    lines = ["# dkb dev profile: local values for `dkb run` on this machine. Never commit it.",
             "# Environment variables win over these values.", "", "[secrets]"]
    for var, where in sorted(secret_vars.items()):
        lines.append(f'# {var} = ""    # {where}')
    return "\n".join(lines) + "\n"


def write_profile(root: Path, secret_vars: dict[str, str], *, force: bool = False) -> tuple[Path, str]:
    """Write the profile from the template (else a skeleton) unless it exists; returns (path, source)
    where source is the template's name, "skeleton" or "kept" (it existed and `force` is off)."""
    from dkbuild.userconfig import atomic_write

    path = profile_path(root)
    if path.exists() and not force:
        return path, "kept"
    template = Path(root) / TEMPLATE
    if template.is_file():
        text, source = template.read_text(encoding="utf-8"), TEMPLATE
        parse_profile(root, template, text)       # a broken template is reported against itself
    else:
        text, source = skeleton(secret_vars), "skeleton"
    ensure_ignored(path.parent)
    atomic_write(path, text)
    os.chmod(path, 0o600)                         # it holds secret values
    return path, source


def ensure_ignored(directory: Path) -> None:
    """A `.gitignore` of `*` in the profile's directory keeps it out of git whatever the repo ignores."""
    directory.mkdir(parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# written by dkb: local files that must never be committed\n*\n", encoding="utf-8")


def set_value(root: Path, key: str, value: str | None) -> tuple[Path, bool]:
    """`dkb config set --dev` (value) / `unset --dev` (None): `secrets.VAR`, `stores.NAME.connector`,
    `stores.NAME.connection.FIELD`. The result is validated before it is written."""
    from dkbuild.userconfig import atomic_write, edit_text

    parts = key.split(".")
    valid = (len(parts) == 2 and parts[0] == "secrets" and _VAR.fullmatch(parts[1])) or \
        (len(parts) == 3 and parts[0] == "stores" and parts[2] == "connector") or \
        (len(parts) == 4 and parts[0] == "stores" and parts[2] == "connection")
    path = profile_path(root)
    if not valid:
        raise _error(path, f"unknown dev profile key {key!r}",
                     "use secrets.VAR, stores.NAME.connector or stores.NAME.connection.FIELD")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    new, changed = edit_text(text, key, value, unset=value is None)
    if changed:
        parse_profile(root, path, new)
        ensure_ignored(path.parent)
        atomic_write(path, new)
        os.chmod(path, 0o600)
    return path, changed


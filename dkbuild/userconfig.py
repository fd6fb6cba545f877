"""User-level configuration and the one precedence rule for every setting dkb reads.

Precedence, highest first (implemented only in `effective_config`):

    flag  >  environment  >  workspace.toml  >  user config  >  default

* flag — a command-line option (`--registry`, `--remote-cache`, `--url`), passed as `flags`.
* environment — DKB_REGISTRY → registry.url (DKB_REGISTRY_TIMEOUT, _RETRIES, _GIVE_UP_AFTER,
  _MAX_FAILURES → the same keys of [registry]), DKB_REMOTE_CACHE → cache.remote,
  OPENLINEAGE_URL → lineage.url (and lineage.transport = http when nothing else set a transport).
* workspace — the workspace's `workspace.toml` (shared, committed).
* user — `$XDG_CONFIG_HOME/dkb/config.toml` (default `~/.config/dkb/config.toml`): personal settings,
  a subset of the workspace schema (`USER_KEYS`) plus `credentials.helper`.
* default — the WorkspaceConfig model's defaults.

Keys are dotted paths into WorkspaceConfig: `registry.url`, `environments.prod.approvals`,
`rules.generic-python.base_image`. Edits go through tomlkit so comments, order and formatting of
the rest of the file survive byte for byte, are validated against the model before writing, and
are written atomically (temp file + rename).
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from dkbuild.config_model import (
    EnvironmentSettings,
    EnvironmentsSection,
    RulesSection,
    WorkspaceConfig,
    _config_diagnostic,
    parse_config,
)
from dkbuild.diagnostics import Diagnostic, DkbError, error
from dkbuild.userpaths import ENV_KEYS, USER_DIR, USER_FILE, user_config_path  # noqa: F401 - re-exported
from dkbuild.workspace import WORKSPACE_FILE, read_config_text

# Settings that make sense per person (where *I* push, how *I* reach lineage), not per repository.
USER_KEYS: tuple[str, ...] = (
    "registry.url", "registry.namespace", "registry.plain_http", "registry.insecure",
    "registry.timeout", "registry.retries", "registry.give_up_after", "registry.max_failures",
    "cache.remote",
    "lineage.url", "lineage.transport", "lineage.namespace",
    "credentials.helper",
)
# Keys that exist only in the user config (not part of WorkspaceConfig).
USER_ONLY_KEYS: dict[str, Any] = {"credentials.helper": str | None}

_SECRET = re.compile(r"token|passw(or)?d|secret|api_?key|private|credential|(^|[_\-])key($|[_\-])", re.IGNORECASE)

Origin = str   # "flag" | "env:NAME" | "workspace:<path>:<line>" | "user:<path>" | "default"


def is_secret(key: str) -> bool:
    """Whether a value must never be printed: its last key segment looks like a token/password/key."""
    return bool(_SECRET.search(key.rsplit(".", 1)[-1]))


# --- the schema, walked by dotted key -------------------------------------------------------------

class KeyError_(Exception):
    """A dotted key that names no setting; carries the diagnostic (E122, with the closest key)."""

    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic
        super().__init__(diagnostic.message)


@dataclass(frozen=True)
class KeyInfo:
    key: str
    parts: tuple[str, ...]
    annotation: Any          # the field's type; Any for free-form rule settings
    default: Any = None


def static_keys() -> list[str]:
    """Every leaf key with a fixed name (environment names and rule settings are open-ended)."""
    keys: list[str] = []
    for section, field in WorkspaceConfig.model_fields.items():
        model = field.annotation
        for name in model.model_fields:  # type: ignore[union-attr]
            keys.append(f"{section}.{name}")
        if model is EnvironmentsSection:
            keys += [f"environments.<env>.{name}" for name in EnvironmentSettings.model_fields]
        if model is RulesSection:
            keys.append("rules.<rule>.<setting>")
    return keys


def _unknown(key: str, file: str, candidates: list[str], extra: list[str] | None = None) -> KeyError_:
    pool = [c for c in candidates if "<" not in c] + (extra or [])
    close = difflib.get_close_matches(key, pool, n=1, cutoff=0.6)
    hint = (f"did you mean '{close[0]}'?" if close
            else "see `dkb config list` for the valid keys")
    return KeyError_(error("E122", file, f"unknown key '{key}'", field=key, hint=hint))


def key_info(key: str, file: str = WORKSPACE_FILE, *, known: Mapping[str, Any] | None = None) -> KeyInfo:
    """Resolve a dotted key to its field type; unknown keys raise KeyError_ with the closest valid key.
    `known` (flattened current values) widens suggestions to existing environment/rule keys."""
    parts = tuple(p for p in key.split("."))
    all_keys = static_keys()
    extra = list(known or ())
    if key in USER_ONLY_KEYS:
        return KeyInfo(key, parts, USER_ONLY_KEYS[key])
    if len(parts) < 2 or any(not p for p in parts):
        if len(parts) == 1 and parts[0] in WorkspaceConfig.model_fields:
            raise KeyError_(error("E122", file, f"'{key}' is a section, not a setting", field=key,
                                  hint=f"name one of its keys, e.g. '{_first_key(parts[0])}'"))
        raise _unknown(key, file, all_keys, extra)
    section = WorkspaceConfig.model_fields.get(parts[0])
    if section is None:
        raise _unknown(key, file, all_keys, extra)
    model: type[BaseModel] = section.annotation  # type: ignore[assignment]
    field = model.model_fields.get(parts[1])
    if field is not None:
        if len(parts) != 2:
            raise _unknown(key, file, all_keys, extra)
        return KeyInfo(key, parts, field.annotation, field.get_default(call_default_factory=True))
    if model is EnvironmentsSection and len(parts) == 3:
        env_field = EnvironmentSettings.model_fields.get(parts[2])
        if env_field is not None:
            return KeyInfo(key, parts, env_field.annotation, env_field.get_default())
        raise _unknown(key, file, all_keys + [f"environments.{parts[1]}.{n}"
                                              for n in EnvironmentSettings.model_fields], extra)
    if model is RulesSection and len(parts) >= 3:
        return KeyInfo(key, parts, Any)
    if model is RulesSection and len(parts) == 2:
        raise KeyError_(error("E122", file, f"'{key}' is a rule's settings table, not a setting", field=key,
                              hint=f"name one of its settings, e.g. '{key}.base_image'"))
    raise _unknown(key, file, all_keys, extra)


def _first_key(section: str) -> str:
    model = WorkspaceConfig.model_fields[section].annotation
    return f"{section}.{next(iter(model.model_fields))}"  # type: ignore[union-attr]


# --- typing a value from the command line ---------------------------------------------------------

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _toml_literal(text: str) -> Any:
    return tomllib.loads(f"v = {text}")["v"]


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def coerce(info: KeyInfo, raw: str, file: str = WORKSPACE_FILE) -> Any:
    """A command-line string typed by the field: bool, int, list (TOML array or comma list), str.
    Free-form rule settings take any TOML literal, else the plain string."""
    annotation = _strip_optional(info.annotation)

    def bad(expected: str) -> DkbError:
        return DkbError(error("E123", file, f"'{info.key}': expected {expected}, got {raw!r}", field=info.key,
                              hint="see the workspace.toml reference in the README"))

    if annotation is Any:
        try:
            return _toml_literal(raw)
        except tomllib.TOMLDecodeError:
            return raw
    if annotation is bool:
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise bad("a boolean (true/false)")
    if annotation is int:
        try:
            return int(raw.strip().replace("_", ""), 0)
        except ValueError:
            raise bad("an integer") from None
    if typing.get_origin(annotation) is list:
        text = raw.strip()
        if text.startswith("["):
            try:
                value = _toml_literal(text)
            except tomllib.TOMLDecodeError as exc:
                raise bad(f"a TOML array ({exc})") from None
            if not isinstance(value, list):
                raise bad("a list")
            return value
        return [item.strip() for item in text.split(",") if item.strip()]
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        if raw not in choices:
            raise DkbError(error("E123", file, f"'{info.key}': must be one of {', '.join(map(repr, choices))}, "
                                 f"got {raw!r}", field=info.key, hint="see the workspace.toml reference in the README"))
        return raw
    return raw


# --- flattening and nesting ------------------------------------------------------------------------

def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaves of nested tables as dotted keys; lists are leaves."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            if value:
                out.update(flatten(value, key + "."))
            else:
                out[key] = {}
        else:
            out[key] = value
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *heads, last = key.split(".")
        for head in heads:
            node = node.setdefault(head, {})
        node[last] = value
    return out


# --- reading files ---------------------------------------------------------------------------------

def _read_toml(path: Path, shown: str) -> tuple[str, dict[str, Any]]:
    if not path.is_file():
        return "", {}
    text = read_config_text(path, shown)
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DkbError(error("E121", shown, f"invalid TOML: {exc}", hint="fix the TOML syntax")) from None


def validate_user(raw: Mapping[str, Any], file: str) -> None:
    """The user config holds only USER_KEYS; anything else is E122 with the closest personal key."""
    problems: list[Diagnostic] = []
    for key, value in flatten(raw).items():
        if key not in USER_KEYS:
            close = difflib.get_close_matches(key, list(USER_KEYS), n=1, cutoff=0.6)
            hint = (f"did you mean '{close[0]}'?" if close else
                    f"the user config holds personal settings only: {', '.join(USER_KEYS)}; "
                    "put shared settings in workspace.toml")
            problems.append(error("E122", file, f"unknown or non-personal key '{key}'", field=key, hint=hint))
        elif key in USER_ONLY_KEYS and not isinstance(value, str):
            problems.append(error("E123", file, f"'{key}': expected a string", field=key))
    if problems:
        raise DkbError(problems)
    schema_part = {k: v for k, v in raw.items() if k != "credentials"}
    try:
        WorkspaceConfig.model_validate(schema_part)
    except ValidationError as exc:
        raise DkbError([_config_diagnostic(err, "", file) for err in exc.errors()]) from None


def load_user(env: Mapping[str, str] | None = None) -> tuple[Path, dict[str, Any]]:
    path = user_config_path(env)
    _, raw = _read_toml(path, str(path))
    validate_user(raw, str(path))
    return path, raw


def key_lines(text: str) -> dict[str, int]:
    """Best-effort line of every key assignment (and table header) in TOML text, by dotted path."""
    lines: dict[str, int] = {}
    table: list[str] = []
    in_multiline: str | None = None

    def split(dotted: str) -> list[str]:
        return [p.strip().strip('"').strip("'") for p in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', dotted)]

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        if not line or line.startswith("#"):
            continue
        header = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", line)
        if header:
            table = split(header.group(1))
            lines.setdefault(".".join(table), number)
            continue
        assign = re.match(r'^((?:"[^"]*"|\'[^\']*\'|[A-Za-z0-9_\-. ])+?)\s*=\s*(.*)$', line)
        if assign:
            lines.setdefault(".".join(table + split(assign.group(1))), number)
            rest = assign.group(2)
            for quote in ('"""', "'''"):
                if rest.count(quote) == 1:
                    in_multiline = quote
    return lines


def line_of(lines: Mapping[str, int], key: str) -> int:
    """The line of `key`, else of its nearest enclosing key (inline tables, dotted keys)."""
    parts = key.split(".")
    while parts:
        found = lines.get(".".join(parts))
        if found:
            return found
        parts.pop()
    return 0


# --- precedence ------------------------------------------------------------------------------------

def effective_config(workspace_root: Path | str | None, env: Mapping[str, str] | None = None,
                     flags: Mapping[str, Any] | None = None) -> tuple[WorkspaceConfig, dict[str, Origin]]:
    """The configuration every command should use, and where each leaf came from.

    flag > environment > workspace.toml > user config > default, merged leaf by leaf (a flag for
    `environments.prod.approvals` overrides only that key). `flags` maps dotted keys to typed values;
    None values are ignored, so CLI options can be passed straight through. `workspace_root` may be
    None (outside a workspace: user, env and flags only). Raises DkbError on invalid files.
    """
    env = os.environ if env is None else env
    layers: list[tuple[dict[str, Any], Any]] = []     # lowest first: (flat values, origin for key)

    user_path, user_raw = load_user(env)
    user_flat = flatten({k: v for k, v in user_raw.items() if k != "credentials"})
    layers.append((user_flat, lambda _k: f"user:{user_path}"))

    if workspace_root is not None:
        ws_path = Path(workspace_root) / WORKSPACE_FILE
        text = read_config_text(ws_path)
        parse_config(text, str(ws_path))                   # E121/E122/E123 against the workspace file alone
        lines = key_lines(text)
        ws_flat = flatten(tomllib.loads(text))
        layers.append((ws_flat, lambda k: f"workspace:{ws_path}:{line_of(lines, k)}"))

    env_flat: dict[str, Any] = {}
    env_origin: dict[str, str] = {}
    for name, key in ENV_KEYS.items():
        if env.get(name):
            env_flat[key] = env[name]
            env_origin[key] = f"env:{name}"
    flag_flat = {k: v for k, v in (flags or {}).items() if v is not None}
    # OPENLINEAGE_URL switches to http when no layer chose a transport (as make_emitter always has).
    if env.get("OPENLINEAGE_URL") and not any("lineage.transport" in flat for flat, _ in layers) \
            and "lineage.transport" not in flag_flat:
        env_flat["lineage.transport"] = "http"
        env_origin["lineage.transport"] = "env:OPENLINEAGE_URL"
    layers.append((env_flat, lambda k: env_origin[k]))
    for key in flag_flat:
        key_info(key, "flag")
    layers.append((flag_flat, lambda _k: "flag"))

    merged: dict[str, Any] = {}
    set_by: dict[str, str] = {}
    for flat, origin in layers:
        for key, value in flat.items():
            # A table replaced by a scalar (or the reverse) drops the shadowed leaves.
            for old in [k for k in merged if k.startswith(key + ".") or key.startswith(k + ".")]:
                merged.pop(old)
                set_by.pop(old, None)
            merged[key] = value
            set_by[key] = origin(key)
    try:
        config = WorkspaceConfig.model_validate(nest(merged))
    except ValidationError as exc:
        raise DkbError([_config_diagnostic(err, "", set_by.get(".".join(map(str, err["loc"])), "config"))
                        for err in exc.errors()]) from None

    origins: dict[str, Origin] = {}
    for key in flatten(config.model_dump(mode="json")):
        origins[key] = set_by.get(key) or next((o for k, o in set_by.items() if key.startswith(k + ".")),
                                               "default")
    return config, origins


def user_settings(env: Mapping[str, str] | None = None) -> tuple[dict[str, Any], dict[str, Origin]]:
    """User-only settings (not in WorkspaceConfig), e.g. credentials.helper, with their origins."""
    path, raw = load_user(env)
    flat = flatten(raw)
    values = {key: flat.get(key) for key in USER_ONLY_KEYS}
    return values, {key: (f"user:{path}" if key in flat else "default") for key in USER_ONLY_KEYS}


# --- editing files ---------------------------------------------------------------------------------

def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _doc_set(doc: Any, parts: tuple[str, ...], value: Any) -> None:
    import tomlkit

    node = doc
    for depth, part in enumerate(parts[:-1]):
        created = part not in node
        if created:
            # Intermediate tables that would hold only sub-tables render as [a.b], not an empty [a].
            node[part] = tomlkit.table(is_super_table=depth < len(parts) - 2)
        node = node[part]
        if created and depth == len(parts) - 2:
            new_table = node
        if not hasattr(node, "__setitem__") or isinstance(node, (str, bytes, list)):
            raise DkbError(error("E123", WORKSPACE_FILE, f"'{'.'.join(parts[:depth + 1])}' is not a table"))
    node[parts[-1]] = value
    if "new_table" in locals():
        new_table.add(tomlkit.nl())           # a blank line before whatever table follows


def _doc_unset(doc: Any, parts: tuple[str, ...]) -> bool:
    chain = [doc]
    node = doc
    for part in parts[:-1]:
        if not hasattr(node, "__contains__") or part not in node:
            return False
        node = node[part]
        chain.append(node)
    if not hasattr(node, "__contains__") or parts[-1] not in node:
        return False
    del node[parts[-1]]
    # Drop tables left empty by the removal (only when nothing but whitespace remains in them).
    for depth in range(len(parts) - 1, 0, -1):
        table = chain[depth]
        body = getattr(getattr(table, "value", None), "body", None)
        has_comment = body is not None and any(type(item).__name__ == "Comment" for _, item in body)
        if len(table) == 0 and not has_comment:
            del chain[depth - 1][parts[depth - 1]]
        else:
            break
    return True


def edit_text(text: str, key: str, value: Any = None, *, unset: bool = False) -> tuple[str, bool]:
    """New TOML text with `key` set to `value` (or removed); the rest of the file is kept as written.
    Returns (text, changed)."""
    import tomlkit

    doc = tomlkit.parse(text)
    parts = tuple(key.split("."))
    if unset:
        found = _doc_unset(doc, parts)
        return (tomlkit.dumps(doc), True) if found else (text, False)
    _doc_set(doc, parts, value)
    new = tomlkit.dumps(doc)
    if not text.endswith("\n\n"):
        new = new.rstrip("\n") + ("\n" if text.endswith("\n") or not text else "")
    return new, new != text


def set_workspace_value(root: Path, key: str, raw: str) -> tuple[Path, bool]:
    path = Path(root) / WORKSPACE_FILE
    shown = str(path)
    text, data = _read_toml(path, shown)
    info = key_info(key, shown, known=flatten(data) if text else None)
    value = coerce(info, raw, shown)
    new, changed = edit_text(text, key, value)
    parse_config(new, shown)                               # validate the whole result before writing
    if changed:
        atomic_write(path, new)
    return path, changed


def unset_workspace_value(root: Path, key: str) -> tuple[Path, bool]:
    path = Path(root) / WORKSPACE_FILE
    shown = str(path)
    text, data = _read_toml(path, shown)
    key_info(key, shown, known=flatten(data) if text else None)
    new, changed = edit_text(text, key, unset=True)
    if changed:
        parse_config(new, shown)
        atomic_write(path, new)
    return path, changed


def _user_key(key: str, shown: str) -> KeyInfo:
    if key not in USER_KEYS:
        try:
            key_info(key, shown)
        except KeyError_:
            close = difflib.get_close_matches(key, list(USER_KEYS), n=1, cutoff=0.6)
            if close:
                raise KeyError_(error("E122", shown, f"unknown key '{key}'", field=key,
                                      hint=f"did you mean '{close[0]}'?")) from None
            raise
        raise KeyError_(error("E122", shown, f"'{key}' is a workspace setting, not a personal one", field=key,
                              hint=f"set it without --user (in workspace.toml); personal keys: "
                                   f"{', '.join(USER_KEYS)}"))
    return key_info(key, shown)


def set_user_value(key: str, raw: str, env: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    path = user_config_path(env)
    shown = str(path)
    info = _user_key(key, shown)
    value = coerce(info, raw, shown)
    text, _ = _read_toml(path, shown)
    new, changed = edit_text(text, key, value)
    validate_user(tomllib.loads(new), shown)
    if changed:
        atomic_write(path, new)
    return path, changed


def unset_user_value(key: str, env: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    path = user_config_path(env)
    shown = str(path)
    _user_key(key, shown)
    if not path.is_file():
        return path, False
    text, _ = _read_toml(path, shown)
    new, changed = edit_text(text, key, unset=True)
    if changed:
        atomic_write(path, new)
    return path, changed

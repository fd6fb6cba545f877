"""Lint warnings for the secrets taken out of a manifest at load: W520 (credentials inside a URL or
connection string) and W521 (a literal value under a secret-looking key). Advisory (printed as
warnings, not raised by `--strict`): dk accepts these, dk's own examples have them, and the values
never leave dkb anyway; the fix is a `${VAR}` reference. `[lint.severity]` can make them errors.

A Store's `spec.secrets` is left to E214 (an error there, as dk's schema says), and a secret-looking
key of its `spec.connection` to W215. The message names the field; neither message nor hint ever
holds the value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dkbuild.diagnostics import Diagnostic, warning
from dkbuild.governance.values import env_var_name_for
from dkbuild.manifests.manifest import FieldPath, format_field, value_at
from dkbuild.redaction import MARK, Finding


def secret_warnings(found: list[Finding], data: Any, file: str,
                    at: Callable[[FieldPath], dict[str, int]]) -> list[Diagnostic]:
    store = isinstance(data, dict) and data.get("kind") == "Store"
    out = []
    for finding in found:
        path = finding.path
        if store and (path[:2] == ("spec", "secrets") or (finding.kind == "key" and len(path) == 3
                                                           and path[:2] == ("spec", "connection"))):
            continue        # E214, and W215 (whose hint names the ${VAR} fix), say it already
        field = format_field(path)
        key = next((str(p) for p in reversed(path) if isinstance(p, str)), "secret")
        var = env_var_name_for(key if key != "value" else _pair_name(data, path))
        if finding.kind == "credentials":
            out.append(warning("W520", file, f"{field} holds credentials inside a URL or connection string; "
                                             "dkb redacts them from everything it writes",
                               field=field, hint=_credentials_hint(key, value_at(data, path), var), **at(path)))
        elif finding.kind == "echo":
            out.append(warning("W521", file, f"{field} repeats the value of a secret-looking field; "
                                             "dkb redacts it from everything it writes",
                               field=field, hint="use a ${VAR} reference for the secret, and rotate the "
                                                 "exposed value", **at(path)))
        else:
            out.append(warning("W521", file, f"{field} looks like a secret and holds a literal value; "
                                             "dkb redacts it from everything it writes",
                               field=field, hint=f"use a ${{VAR}} reference, e.g. {key}: ${{{var}}}, set it in "
                                                 "the environment or secret store, and rotate the exposed value",
                               **at(path)))
    return out


def _credentials_hint(key: str, redacted: Any, var: str) -> str:
    example = str(redacted).replace(f"{MARK}@", f"${{{var}_USER}}:${{{var}_PASSWORD}}@", 1) \
        .replace(MARK, f"${{{var}_PASSWORD}}")
    if len(example) > 120:
        example = example[:117] + "..."
    return (f"use a ${{VAR}} reference for the credentials, e.g. {key}: \"{example}\", set them in the "
            "environment or secret store, and rotate the exposed value")


def _pair_name(data: Any, path: FieldPath) -> str:
    """The `name` beside a `{name: DB_PASSWORD, value: ...}` pair's value."""
    parent = value_at(data, path[:-1])
    return str(parent.get("name")) if isinstance(parent, dict) and parent.get("name") else "SECRET"

"""Which registry `publish`, `promote`, `rollback` and `status` talk to: the configured one
(`--registry`, `DK_REGISTRY`, `DKB_REGISTRY`, `[registry] url`), else the embedded registry under
`.dkb/registry`. Both answer the same calls, so nothing downstream knows which one it has; the
reference of a package is `<host>/<prefix>/<namespace>/<name>:<version>` in either."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dkbuild.engine.publish import configured_registry
from dkbuild.oci import embedded

REAL_REGISTRY_HINT = ("To publish to a real registry: dkb publish --registry oci://HOST/PREFIX, "
                      "or set DK_REGISTRY, or [registry] url in workspace.toml")


@dataclass(frozen=True)
class Location:
    host: str                        # host[:port], or embedded.HOST
    prefix: str                      # repository prefix before <namespace>/<name>; "" for none
    embedded: bool

    @property
    def url(self) -> str:
        if self.embedded:
            return self.host
        return f"oci://{self.host}" + (f"/{self.prefix}" if self.prefix else "")


def registry_location(flag: str | None, config_url: str | None, env: dict[str, str] | None = None) -> Location:
    """The configured registry, else the embedded one. ValueError for a malformed URL."""
    from dkbuild.oci.reference import parse_location

    url = configured_registry(flag, config_url, env)
    if not url:
        return Location(embedded.HOST, "", True)
    host, prefix = parse_location(url)
    return Location(host, prefix, False)


def describe(location: Location, workspace_root: Path) -> dict[str, Any]:
    """For --output json: where things went, and (embedded) the directory and how to move on."""
    doc: dict[str, Any] = {"url": location.url, "embedded": location.embedded}
    if location.embedded:
        doc.update({"path": str(workspace_root / embedded.DIRECTORY), "hint": REAL_REGISTRY_HINT})
    return doc


def inspect_command(workspace_root: Path, reference: str) -> str:
    """The skopeo command that reads an embedded reference, with its path relative to here."""
    path = os.path.relpath(workspace_root / embedded.DIRECTORY / reference.removeprefix(embedded.HOST + "/"))
    return f"skopeo inspect --raw oci:{path}"

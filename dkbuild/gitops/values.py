"""values.yaml round-trip: set appVersion, registry and digest, keep every other key, comment and order.

The keys are the ones dk's chart reads (see `chart`): `appVersion` (always written as a YAML
string), `registry` (the prefix the chart joins with the package name) and `digest` (the pin)."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

MANAGED_KEYS = ("appVersion", "registry", "digest")


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def read_values(text: str | None) -> dict[str, Any]:
    """The values as plain data ({} for a missing, empty or non-map file)."""
    if not text:
        return {}
    try:
        data = _yaml().load(text)
    except YAMLError:                     # a broken file reads as "nothing deployed"
        return {}
    return dict(data) if isinstance(data, dict) else {}


def update_values(text: str | None, version: str, registry: str, digest: str) -> str:
    """The new file: the old one (if any) with the three managed keys set in place, new ones appended.
    `registry` is the chart's registry prefix, not the package's repository."""
    yaml = _yaml()
    data = yaml.load(text) if text and text.strip() else None
    if not isinstance(data, CommentedMap):
        data = CommentedMap()
    for key, value in zip(MANAGED_KEYS, (version, registry, digest)):
        data[key] = value
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def deployed(text: str | None) -> tuple[str, str]:
    """(appVersion, digest) of a values.yaml ("" when absent)."""
    values = read_values(text)
    return str(values.get("appVersion") or ""), str(values.get("digest") or "")

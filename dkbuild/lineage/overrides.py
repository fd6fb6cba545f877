"""`dkb run -f FILE --set PATH=VALUE`: dk's run-time overrides of a Transform, applied in memory.

dk merges override files Helm-style (maps merge, scalars and lists replace) in order, then applies
`--set` values in order, each path checked against dk's allow-list (sdk/manifest/merge.go). dk
rewrites dk.yaml in place; dkb never touches the file: the merged document only drives this run.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

# dk's ValidOverridePaths and ValidPrefixes.
VALID_PATHS = frozenset((
    "apiVersion", "kind", "metadata", "metadata.name", "metadata.namespace", "metadata.version",
    "metadata.labels", "metadata.annotations", "spec.runtime", "spec.mode", "spec.description", "spec.owner",
    "spec.image", "spec.command", "spec.timeout", "spec.retries", "spec.replicas", "spec.env", "spec.inputs",
    "spec.outputs", "spec.config", "spec.source", "spec.destination", "spec.provides", "spec.accepts",
    "spec.trigger", "spec.trigger.policy", "spec.trigger.schedule", "spec.resources", "spec.resources.cpu",
    "spec.resources.memory",
))
VALID_PREFIXES = (
    "metadata.labels.", "metadata.annotations.", "spec.inputs.", "spec.inputs[", "spec.outputs.",
    "spec.outputs[", "spec.env.", "spec.env[", "spec.config.", "spec.provides.", "spec.accepts.",
    "spec.source.", "spec.destination.", "spec.trigger.", "spec.trigger.schedule.", "spec.resources.",
)
_TYPOS = {"runtime": "spec.runtime", "image": "spec.image", "timeout": "spec.timeout", "retries": "spec.retries",
          "env": "spec.env", "resources": "spec.resources", "name": "metadata.name",
          "version": "metadata.version", "labels": "metadata.labels", "mode": "spec.mode", "config": "spec.config"}
_INDEX = re.compile(r"^(.*)\[(\d+)\]$")


class OverrideError(ValueError):
    """A bad -f file or --set value; the message names it and the fix."""


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm-style: maps merge recursively; scalars, lists and type mismatches are replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_set(text: str) -> tuple[str, Any]:
    """`path=value`; the value typed as dk types it (true/false, integer, float, else text)."""
    path, eq, raw = text.partition("=")
    path, raw = path.strip(), raw.strip()
    if not eq:
        raise OverrideError(f"--set {text!r}: expected PATH=VALUE, e.g. --set spec.timeout=4h")
    if not path:
        raise OverrideError(f"--set {text!r}: the path before '=' is empty")
    if raw in ("true", "false"):
        return path, raw == "true"
    for kind in (int, float):
        try:
            return path, kind(raw)
        except ValueError:
            pass
    return path, raw


def check_path(path: str) -> None:
    clean = re.sub(r"\[[^\]]*\]", "", path)
    if clean in VALID_PATHS or path.startswith(VALID_PREFIXES):
        return
    suggestion = _TYPOS.get(clean) or next((v for k, v in _TYPOS.items() if clean.endswith("." + k)), "")
    raise OverrideError(f"--set {path}: not a path dk allows to override"
                        + (f" (did you mean {suggestion}?)" if suggestion else
                           " (e.g. spec.timeout, spec.env[0].value, spec.image, metadata.labels.KEY)"))


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """dk's SetPath: dotted keys, `key[N]` list items; missing maps and list slots are created."""
    parts = [p for p in path.split(".") if p]
    node: Any = document
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        match = _INDEX.match(part)
        if match:
            key, index = match.group(1), int(match.group(2))
            items = node.get(key) if isinstance(node.get(key), list) else []
            items.extend([None] * (index + 1 - len(items)))
            node[key] = items
            if last:
                items[index] = value
                return
            if not isinstance(items[index], dict):
                items[index] = {}
            node = items[index]
        elif last:
            node[part] = value
        else:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]


def read_values(path: Path) -> dict[str, Any]:
    from dkbuild.manifests.yamlsource import parse_documents

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OverrideError(f"-f {path}: cannot read it: {exc.strerror or exc}") from None
    documents, problems = parse_documents(text, str(path))
    if problems:
        p = problems[0]
        raise OverrideError(f"-f {path}:{p.line}:{p.column}: {p.message}")
    if not documents:
        return {}
    data = documents[0].data
    if len(documents) > 1 or not isinstance(data, dict):
        raise OverrideError(f"-f {path}: expected one mapping like the Transform's dk.yaml (spec: ...)")
    return data


def validated(document: dict[str, Any], where: str) -> Any:
    """The Transform model of an overridden document; OverrideError naming the field otherwise."""
    from pydantic import ValidationError

    from dkbuild.manifests.models import MODEL_OF_KIND

    try:
        return MODEL_OF_KIND["Transform"].model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise OverrideError(f"{where}: {field}: {first['msg']}") from None


def apply_overrides(document: dict[str, Any], files: list[Path], sets: list[str]) -> dict[str, Any]:
    """The document with the files merged in, then the --set values applied, in the order given."""
    merged = copy.deepcopy(document)
    for path in files:
        merged = deep_merge(merged, read_values(path))
    for text in sets:
        path, value = parse_set(text)
        check_path(path)
        set_path(merged, path, value)
    return merged

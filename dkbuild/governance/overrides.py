"""`dkb lint -f FILE --set key=value`: dk's overrides, applied to the package manifests before linting.

As dk does (cli/cmd/lint.go applyLintOverrides, sdk/manifest/merge.go): dk.yaml, then each values
file in order (a Helm-style deep merge: mappings merge, lists and scalars replace), then each
`--set` in order (a dot path with [i] indexes; the value typed as a bool, an integer, a float or
else a string; only the paths dk allows). The files on disk are never touched: the merged
document is read in place of the package's dk.yaml, and findings point at the original lines.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dkbuild.diagnostics import Diagnostic, DkbError, error
from dkbuild.manifests.manifest import Manifest
from dkbuild.manifests.result import LoadResult

# dk's ValidOverridePaths and ValidPrefixes (sdk/manifest/merge.go).
OVERRIDE_PATHS = (
    "apiVersion", "kind", "metadata", "metadata.name", "metadata.namespace", "metadata.version",
    "metadata.labels", "metadata.annotations", "spec.runtime", "spec.mode", "spec.description",
    "spec.owner", "spec.image", "spec.command", "spec.timeout", "spec.retries", "spec.replicas",
    "spec.env", "spec.inputs", "spec.outputs", "spec.config", "spec.source", "spec.destination",
    "spec.provides", "spec.accepts", "spec.trigger", "spec.trigger.policy", "spec.trigger.schedule",
    "spec.resources", "spec.resources.cpu", "spec.resources.memory",
)
OVERRIDE_PREFIXES = (
    "metadata.labels.", "metadata.annotations.", "spec.inputs.", "spec.inputs[", "spec.outputs.",
    "spec.outputs[", "spec.env.", "spec.env[", "spec.config.", "spec.provides.", "spec.accepts.",
    "spec.source.", "spec.destination.", "spec.trigger.", "spec.trigger.schedule.", "spec.resources.",
)
# A usage error (exit 2), like E140 for a bad pattern: not a finding about the workspace.
USAGE_CODE = "E141"
_INDEX = re.compile(r"^(?P<key>[^\[\]]*)\[(?P<index>\d+)\]$")


@dataclass(frozen=True)
class Overrides:
    values: tuple[tuple[str, dict[str, Any]], ...] = ()   # (file as given, its mapping), in order
    sets: tuple[tuple[str, Any], ...] = ()                  # (dot path, typed value), in order
    errors: tuple[Diagnostic, ...] = field(default=(), compare=False)

    def __bool__(self) -> bool:
        return bool(self.values or self.sets)

    def key(self) -> str:
        """What the merged manifests depend on, for the lint report's cache selection."""
        return json.dumps([self.values, self.sets], sort_keys=True, default=str)

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        merged = copy.deepcopy(data)
        for _, mapping in self.values:
            merged = deep_merge(merged, mapping)
        for path, value in self.sets:
            set_path(merged, path, value)
        return merged


def parse_overrides(value_files: Iterable[str], sets: Iterable[str], cwd: Path) -> Overrides:
    """The overrides of the command line; DkbError (exit 2) naming the flag or file at fault."""
    problems: list[Diagnostic] = []
    values = []
    for name in value_files:
        mapping = _read_values(cwd / name, name, problems)
        if mapping is not None:
            values.append((name, mapping))
    parsed = []
    for text in sets:
        item = _parse_set(text, problems)
        if item is not None:
            parsed.append(item)
    if problems:
        raise DkbError(problems)
    return Overrides(tuple(values), tuple(parsed))


def _read_values(path: Path, name: str, problems: list[Diagnostic]) -> dict[str, Any] | None:
    from dkbuild.manifests.yamlsource import parse_documents

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(error(USAGE_CODE, name, f"cannot read values file: {getattr(exc, 'strerror', None) or exc}",
                              hint="pass an existing YAML file to -f/--values"))
        return None
    documents, found = parse_documents(text, name)
    problems.extend(found)
    if found:
        return None
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        problems.append(error(USAGE_CODE, name, "a values file must hold one YAML mapping",
                              line=documents[0].line if documents else 0,
                              hint="write the overrides as in dk.yaml, e.g. spec: {image: registry/x:1.2.0}"))
        return None
    return documents[0].data


def _parse_set(text: str, problems: list[Diagnostic]) -> tuple[str, Any] | None:
    path, eq, raw = text.partition("=")
    path = path.strip()
    if not eq or not path:
        problems.append(error(USAGE_CODE, "--set", f"'{text}' is not key=value",
                              hint="write --set spec.image=registry/x:1.2.0"))
        return None
    problem = _path_problem(path)
    if problem:
        problems.append(error(USAGE_CODE, "--set", f"invalid override path: {path}", field=path, hint=problem))
        return None
    return path, typed_value(raw.strip())


def _path_problem(path: str) -> str | None:
    """dk's ValidateOverridePath, with its suggestion as the hint."""
    clean = re.sub(r"\[[^\]]*\]", "", path)
    if clean in OVERRIDE_PATHS or path.startswith(OVERRIDE_PREFIXES):
        return None
    close = difflib.get_close_matches(clean, OVERRIDE_PATHS, n=1, cutoff=0.6)
    if not close:
        close = [p for p in OVERRIDE_PATHS if p.endswith("." + clean.rsplit(".", 1)[-1])][:1]
    if close:
        return f"did you mean {close[0]}?"
    return "overridable paths start with metadata or spec.runtime, spec.mode, spec.inputs, spec.outputs, spec.config, ..."


def typed_value(raw: str) -> Any:
    """dk's parseValue: true/false, then a 64-bit integer, then a float, else the string."""
    if raw in ("true", "false"):
        return raw == "true"
    try:
        number = int(raw, 10)
        if -2**63 <= number < 2**63 and raw.lstrip("+-").isdigit():
            return number
    except ValueError:
        pass
    if "_" in raw:      # Go's ParseFloat takes '_' only after a base prefix; Python's float always
        return raw
    try:
        return float(raw)
    except ValueError:
        return raw


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """dk's DeepMerge with ReplaceArrays: mappings merge recursively, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """dk's SetPath: creates the mappings and list slots on the way (a scalar in the way is replaced)."""
    parts = [p for p in path.split(".") if p]
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        m = _INDEX.match(part)
        if m:
            key, index = m.group("key"), int(m.group("index"))
            items = node.get(key) if isinstance(node.get(key), list) else []
            items.extend([None] * (index + 1 - len(items)))
            node[key] = items
            if last:
                items[index] = value
            else:
                if not isinstance(items[index], dict):
                    items[index] = {}
                node = items[index]
        elif last:
            node[part] = value
        else:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]


def overridden(result: LoadResult, packages: set[str], overrides: Overrides, workspace: Any) -> LoadResult:
    """`result` with the dk.yaml of each package in `packages` read as merged with `overrides`."""
    import yaml

    from dkbuild.manifests.layout import ManifestFile
    from dkbuild.manifests.loader import DiskSource, load_file

    by_file: dict[str, list[Manifest]] = {}
    for m in result.manifests:
        if m.layout == "dk.yaml" and m.package in packages:
            by_file.setdefault(m.file, []).append(m)
    if not by_file:
        return result
    merged_text = {file: yaml.safe_dump_all([overrides.apply(m.data) for m in sorted(ms, key=lambda m: m.doc_index)],
                                            sort_keys=False).encode()
                   for file, ms in by_file.items()}

    class Merged(DiskSource):
        def read(self, path: str) -> bytes:
            return merged_text[path] if path in merged_text else super().read(path)

        def size(self, path: str) -> int:
            return len(merged_text[path]) if path in merged_text else super().size(path)

    source = Merged(workspace.root)
    manifests = [m for m in result.manifests if m.file not in by_file]
    diagnostics = [d for d in result.diagnostics if d.file not in by_file]
    for file, originals in sorted(by_file.items()):
        first = originals[0]
        found, problems = load_file(workspace, ManifestFile(file, first.package, first.layout), source)
        manifests += [_at_original_lines(m, originals) for m in found]
        diagnostics += [_relocated(d, originals) for d in problems]
    return LoadResult(manifests, diagnostics, result.files)


def _at_original_lines(m: Manifest, originals: list[Manifest]) -> Manifest:
    """The merged manifest, its fields placed where they are in the file on disk (a field the
    overrides added sits at its nearest ancestor the file has)."""
    original = next((o for o in originals if o.doc_index == m.doc_index), originals[0])
    positions = {p: original.positions[p] for p in m.positions if p in original.positions}
    return Manifest(kind=m.kind, name=m.name, file=m.file, doc_index=m.doc_index, line=original.line,
                    package=m.package, layout=m.layout, data=m.data, model=m.model, positions=positions)


def _relocated(d: Diagnostic, originals: list[Manifest]) -> Diagnostic:
    from dataclasses import replace

    from dkbuild.manifests.fieldpath import parse_field

    original = originals[0]
    line, column = original.position(parse_field(d.field)) if d.field else (original.line, 1)
    return replace(d, line=line, column=column)

"""Turn a BuildTarget into the dk package artifact: normalized manifests (the package's own and
every dataset, store and connector it references, so the artifact is self-contained) plus its
source files. Store secrets are never packed: only `${VAR}` references survive."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from dkbuild.engine.target import BuildTarget
from dkbuild.governance.values import VAR_REF, looks_like_secret_key
from dkbuild.oci.package import PackageInputs
from dkbuild.oci.tarball import Entry

RESOURCE_DIR_OF = {"DataSet": "dataset", "Store": "store", "Connector": "connector", "DataSetGroup": "dataset-group"}
REDACTED = "<redacted by dkb>"


def normalized_yaml(data: dict[str, Any]) -> bytes:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True).encode("utf-8")


def sanitize(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A copy safe to pack: Store secrets keep only `${VAR}` references; literal secrets and
    secret-looking connection values are replaced."""
    if kind != "Store":
        return data
    clean = copy.deepcopy(data)
    spec = clean.get("spec") or {}
    for key, value in (spec.get("secrets") or {}).items():
        if not (isinstance(value, str) and VAR_REF.search(value)):
            spec["secrets"][key] = REDACTED
    for key, value in (spec.get("connection") or {}).items():
        if looks_like_secret_key(str(key)) and isinstance(value, (str, int)) and not VAR_REF.fullmatch(str(value)):
            spec["connection"][key] = REDACTED
    return clean


def manifest_files(target: BuildTarget) -> dict[str, bytes]:
    files = {"dk.yaml": normalized_yaml(target.node.manifest.data)}
    for ref in target.references:
        directory = RESOURCE_DIR_OF[ref.kind]
        files[f"{directory}/{ref.name}.yaml"] = normalized_yaml(sanitize(ref.kind, ref.manifest.data))
    return files


def package_inputs(target: BuildTarget, extra_files: dict[str, bytes],
                   build_info: dict[str, str] | None = None) -> PackageInputs:
    model = target.node.manifest.model
    content = [Entry(rel, target.read(rel), target.executable(rel)) for rel in sorted(target.files)]
    return PackageInputs(
        name=target.node.name,
        namespace=model.metadata.namespace or "",
        version=model.metadata.version or "",
        kind=target.node.kind,
        manifest=target.node.manifest.data,
        manifest_files={**manifest_files(target), **extra_files},
        content=content,
        build_info=build_info or {},
    )

"""Turn a BuildTarget into the dk package artifact's inputs (see oci/package.py for the layers).

Layer 1 holds what dk's bundler puts there: the package's `dk.yaml` as written and its `schemas/`
tree. Because the file is packed byte for byte, its content id is part of the Transform's content
key (graph/keys.py): a comment in dk.yaml rebuilds the package, and `dkb affected` says so. Layer 2 holds the package's other source files, less the names dk's bundler always
leaves out. dkb's own layer holds normalized copies of every dataset, store and connector the
package references (so the artifact is self-contained) and what the rule renders (e.g. CloudQuery
specs). Store secrets are never packed: only `${VAR}` references survive; resource directories,
which may hold a Store's literal secrets, never reach the content layer raw.
"""

from __future__ import annotations

import copy
import fnmatch
from typing import Any

import yaml

from dkbuild.engine.target import BuildTarget
from dkbuild.governance.values import VAR_REF, looks_like_secret_key
from dkbuild.ignorefiles import DKBIGNORE
from dkbuild.manifests.layout import PACKAGE_FILE, RESOURCE_DIR_OF
from dkbuild.oci.package import PackageInputs
from dkbuild.oci.tarball import Entry
from dkbuild.workspace import WORKSPACE_FILE

REDACTED = "<redacted by dkb>"
SCHEMAS_DIR = "schemas"
# Names dk's bundler never puts in the content layer (matched against every path component).
DK_CONTENT_EXCLUDES = (".git", ".gitignore", "node_modules", "__pycache__", ".pytest_cache", "*.pyc",
                       ".DS_Store", "Thumbs.db")


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


def is_workspace_file(target: BuildTarget, rel: str) -> bool:
    """dkb's own files at the root of a package that is the workspace root: not the package's."""
    return target.node.package == "" and rel in (WORKSPACE_FILE, DKBIGNORE)


def is_schema_file(rel: str) -> bool:
    return rel.split("/", 1)[0] == SCHEMAS_DIR


def dk_excludes(rel: str) -> bool:
    return any(fnmatch.fnmatchcase(part, pattern) for part in rel.split("/") for pattern in DK_CONTENT_EXCLUDES)


def resource_path(kind: str, data: dict[str, Any]) -> str:
    """`dataset/<name>.yaml`, or `dataset/<namespace>/<name>.yaml` for a namespaced one, so that
    `team-a/ingest` and `team-b/ingest` are two files."""
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    namespace, name = metadata.get("namespace"), metadata.get("name")
    return f"{RESOURCE_DIR_OF[kind]}/" + (f"{namespace}/" if isinstance(namespace, str) and namespace else "") \
        + f"{name}.yaml"


def resource_entries(target: BuildTarget, rendered: dict[str, bytes]) -> list[Entry]:
    entries = [Entry(resource_path(ref.kind, ref.manifest.data), normalized_yaml(sanitize(ref.kind, ref.manifest.data)))
               for ref in target.references]
    return entries + [Entry(path, data) for path, data in rendered.items()]


def _description(data: dict[str, Any]) -> str:
    spec = data.get("spec")
    value = spec.get("description") if isinstance(spec, dict) else None
    return value if isinstance(value, str) else ""


def package_inputs(target: BuildTarget, rendered: dict[str, bytes],
                   build_info: dict[str, str] | None = None) -> PackageInputs:
    model = target.node.manifest.model
    sources = sorted(r for r in target.files if not is_workspace_file(target, r) and r != PACKAGE_FILE)
    # dk's manifest layer carries dk.yaml as written; its content id is part of the key (graph.keys).
    own = Entry(PACKAGE_FILE, target.read(PACKAGE_FILE)) if PACKAGE_FILE in target.files \
        else Entry(PACKAGE_FILE, normalized_yaml(target.node.manifest.data))
    entry = lambda rel: Entry(rel, target.read(rel), target.executable(rel))  # noqa: E731
    return PackageInputs(
        name=target.node.name,
        namespace=model.metadata.namespace or "",
        version=model.metadata.version or "",
        kind=target.node.kind,
        description=_description(target.node.manifest.data),
        manifest=target.node.manifest.data,
        manifest_files=[own] + [entry(r) for r in sources if is_schema_file(r)],
        content=[entry(r) for r in sources if not is_schema_file(r) and not dk_excludes(r)],
        resources=resource_entries(target, rendered),
        build_info=build_info or {},
    )

"""Turn a BuildTarget into the dk package artifact's inputs (see oci/package.py for the layers).

Layer 1 holds what dk's bundler puts there: the package's `dk.yaml` as written and its `schemas/`
tree. Because the file is packed byte for byte, its content id is part of the Transform's content
key (graph/keys.py): a comment in dk.yaml rebuilds the package, and `dkb affected` says so. Layer 2 holds the package's other source files, less the names dk's bundler always
leaves out. dkb's own layer holds normalized copies of every dataset, store and connector the
package references (so the artifact is self-contained) and what the rule renders (e.g. CloudQuery
specs). Secrets are never packed (dkbuild.redaction): manifests are redacted as they are loaded,
and dk.yaml, packed as written, is redacted as text; `${VAR}` references survive. Resource
directories, which may hold a Store's literal secrets, never reach the content layer raw.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import yaml

from dkbuild.engine.target import BuildTarget
from dkbuild.ignorefiles import DKBIGNORE
from dkbuild.manifests.layout import PACKAGE_FILE, RESOURCE_DIR_OF
from dkbuild.manifests.redacted_text import redacted_yaml
from dkbuild.oci.package import PackageInputs
from dkbuild.oci.tarball import Entry
from dkbuild.redaction import redacted
from dkbuild.workspace import WORKSPACE_FILE

SCHEMAS_DIR = "schemas"
# Names dk's bundler never puts in the content layer (matched against every path component).
DK_CONTENT_EXCLUDES = (".git", ".gitignore", "node_modules", "__pycache__", ".pytest_cache", "*.pyc",
                       ".DS_Store", "Thumbs.db")


def normalized_yaml(data: dict[str, Any]) -> bytes:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True).encode("utf-8")


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
    # The data was redacted at load; redacting again costs little and guards what leaves as an artifact.
    entries = [Entry(resource_path(ref.kind, ref.manifest.data), normalized_yaml(redacted(ref.manifest.data)))
               for ref in target.references]
    return entries + [Entry(path, data) for path, data in rendered.items()]


def _description(data: dict[str, Any]) -> str:
    spec = data.get("spec")
    value = spec.get("description") if isinstance(spec, dict) else None
    return value if isinstance(value, str) else ""


def _package_file(target: BuildTarget) -> bytes:
    """dk's manifest layer carries dk.yaml as written, less its secrets (redacted as text); its
    content id is part of the key (graph.keys), and the redacted bytes are a function of it."""
    normalized = normalized_yaml(redacted(target.node.manifest.data))
    if PACKAGE_FILE not in target.files:
        return normalized
    as_written = redacted_yaml(target.read(PACKAGE_FILE), target.node.manifest.file)
    return normalized if as_written is None else as_written


def package_inputs(target: BuildTarget, rendered: dict[str, bytes],
                   build_info: dict[str, str] | None = None) -> PackageInputs:
    model = target.node.manifest.model
    sources = sorted(r for r in target.files if not is_workspace_file(target, r) and r != PACKAGE_FILE)
    own = Entry(PACKAGE_FILE, _package_file(target))
    entry = lambda rel: Entry(rel, target.read(rel), target.executable(rel))  # noqa: E731
    return PackageInputs(
        name=target.node.name,
        namespace=model.metadata.namespace or "",
        version=model.metadata.version or "",
        kind=target.node.kind,
        description=_description(target.node.manifest.data),
        manifest=redacted(target.node.manifest.data),
        manifest_files=[own] + [entry(r) for r in sources if is_schema_file(r)],
        content=[entry(r) for r in sources if not is_schema_file(r) and not dk_excludes(r)],
        resources=resource_entries(target, rendered),
        build_info=build_info or {},
    )

"""Builders of OpenLineage facets from the graph: schema, dataSource, columnLineage, ownership,
documentation, jobType, sourceCodeLocation, errorMessage, processing_engine, and dkb's own
dataClassification facet. Every facet carries `_producer` and the `_schemaURL` of the schema it obeys.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from dkbuild import __version__
from dkbuild.gitinfo import git_output
from dkbuild.graph.model import EdgeKind, Graph, Node
from dkbuild.lineage import naming
from dkbuild.redaction import looks_like_secret_key, redact_text

PRODUCER = f"https://github.com/dkbuild/dkbuild/tree/v{__version__}"

_FACETS = "https://openlineage.io/spec/facets"
SCHEMA_URLS = {
    "schema": f"{_FACETS}/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "dataSource": f"{_FACETS}/1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet",
    "columnLineage": f"{_FACETS}/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
    "datasetOwnership": f"{_FACETS}/1-0-1/OwnershipDatasetFacet.json#/$defs/OwnershipDatasetFacet",
    "datasetDocumentation": f"{_FACETS}/1-1-0/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet",
    "jobOwnership": f"{_FACETS}/1-0-1/OwnershipJobFacet.json#/$defs/OwnershipJobFacet",
    "jobDocumentation": f"{_FACETS}/1-1-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet",
    "jobType": f"{_FACETS}/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "sourceCodeLocation": f"{_FACETS}/1-1-0/SourceCodeLocationJobFacet.json#/$defs/SourceCodeLocationJobFacet",
    "errorMessage": f"{_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "processing_engine": f"{_FACETS}/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet",
}

# dkb's own facet; the schema ships in dkbuild/lineage/schemas/ and is published at this URL.
CLASSIFICATION_SCHEMA_ID = ("https://github.com/dkbuild/dkbuild/blob/main/dkbuild/lineage/schemas/"
                            "DataClassificationDatasetFacet.json")
SCHEMA_URLS["dataClassification"] = f"{CLASSIFICATION_SCHEMA_ID}#/$defs/DataClassificationDatasetFacet"

LANGUAGE_OF_RUNTIME = {"generic-python": "python", "generic-go": "go", "dbt": "sql", "cloudquery": "go"}


def facet(kind: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": SCHEMA_URLS[kind], **fields}


# --- datasets ----------------------------------------------------------------------------------

def schema_facet(dataset: Node) -> dict[str, Any] | None:
    columns = dataset.manifest.model.spec.schema_
    if not columns:
        return None
    fields = []
    for column in columns:
        item: dict[str, Any] = {"name": column.name}
        if column.type:
            item["type"] = column.type
        if column.description:
            item["description"] = column.description
        fields.append(item)
    return facet("schema", fields=fields)


def _secret_fields(graph: Graph, store: Node) -> set[str]:
    """Connection keys the Connector declares secret, plus the store's own secrets' keys."""
    keys = set(store.manifest.model.spec.secrets)
    connector = naming.connector_of(graph, store)
    if connector is not None:
        keys |= {f.field for f in connector.manifest.model.spec.connectionSchema.values() if f.secret}
    return keys


def _safe_items(graph: Graph, store: Node, keys: list[str] | None = None) -> dict[str, str]:
    """Non-secret, literal connection values (no `${VAR}`, nothing declared or named secret)."""
    connection = store.manifest.model.spec.connection
    secret = _secret_fields(graph, store)
    out = {}
    for key in sorted(keys if keys is not None else connection):
        if key in secret or looks_like_secret_key(key) or key == "connection_string":
            continue
        value = naming.plain(connection.get(key))
        if value is not None and "@" not in value:
            out[key] = value
    return out


def _strip_credentials(url: str) -> str | None:
    """A connection string without user info, query and fragment; None if unusable."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return None
    if not parts.scheme or "${" in host or "${" in parts.path:
        return None
    return urlunsplit((parts.scheme, f"{host}{port}", parts.path, "", ""))


def datasource_uri(graph: Graph, dataset_id: str) -> str:
    """The store DSN (contract §1.13) with every credential and unresolved variable removed."""
    namespace, _name = naming.dataset_identity(graph, dataset_id)
    dataset = graph.nodes[dataset_id]
    store = naming.store_of(graph, dataset_id)
    if store is None:
        return namespace
    connection = store.manifest.model.spec.connection
    kind = naming.connector_type(graph, store)
    raw_cs = connection.get("connection_string")
    if isinstance(raw_cs, str) and raw_cs.strip():
        stripped = _strip_credentials(raw_cs.strip())
        if stripped:
            return stripped
    if kind in ("postgres", "mysql"):
        scheme = "postgresql" if kind == "postgres" else "mysql"
        database = naming.plain(connection.get("database", connection.get("dbname")))
        query = _safe_items(graph, store, ["sslmode"] if "sslmode" in connection else [])
        uri = f"{scheme}://{namespace.split('://', 1)[1]}/{quote(database or '', safe='')}"
        return uri + (f"?{urlencode(query)}" if query else "")
    if kind == "s3":
        query = _safe_items(graph, store, [k for k in ("endpoint", "region") if k in connection])
        return namespace + (f"?{urlencode(query)}" if query else "")
    if kind == "kafka":
        servers = naming.plain(connection.get("bootstrapServers", connection.get("brokers")))
        hosts = ",".join(s.strip().split("://")[-1] for s in servers.split(",")) if servers else \
            namespace.split("://", 1)[1]
        if "@" in hosts:
            hosts = namespace.split("://", 1)[1]
        topic = dataset.manifest.model.spec.topic or dataset.name
        return f"kafka://{hosts}/{quote(topic, safe='')}"
    query = _safe_items(graph, store)
    return f"{quote(kind, safe='')}://{quote(store.name, safe='')}" + (f"?{urlencode(query)}" if query else "")


def datasource_facet(graph: Graph, dataset_id: str) -> dict[str, Any]:
    store = naming.store_of(graph, dataset_id)
    name = store.name if store else graph.nodes[dataset_id].manifest.model.spec.store or "unresolved"
    return facet("dataSource", name=name, uri=datasource_uri(graph, dataset_id))


def _transformation(masking: str | None) -> dict[str, Any]:
    if not masking:
        return {"type": "DIRECT", "subtype": "IDENTITY", "masking": False}
    subtype = "AGGREGATION" if masking == "aggregate" else "TRANSFORMATION"
    return {"type": "DIRECT", "subtype": subtype, "masking": True, "description": f"masked: {masking}"}


def column_lineage_facet(graph: Graph, dataset_id: str) -> dict[str, Any] | None:
    fields: dict[str, Any] = {}
    for edge in graph.columns:
        if edge.dst != dataset_id:
            continue
        namespace, name = naming.dataset_identity(graph, edge.src)
        entry = fields.setdefault(edge.dst_column, {"inputFields": []})
        entry["inputFields"].append({"namespace": namespace, "name": name, "field": edge.src_column,
                                     "transformations": [_transformation(edge.masking)]})
    return facet("columnLineage", fields=fields) if fields else None


def _owners_of(node: Node) -> list[str]:
    meta = node.manifest.model.metadata
    owners = []
    for key in ("owner", "datakit.infoblox.dev/owner"):
        if meta.annotations.get(key):
            owners.append(meta.annotations[key])
    for key in ("owner", "team"):
        if meta.labels.get(key):
            owners.append(f"team:{meta.labels[key]}" if key == "team" else meta.labels[key])
    return owners


def dataset_ownership_facet(graph: Graph, dataset_id: str) -> dict[str, Any] | None:
    """Declared owners of the dataset, else the teams of the transforms that write it."""
    owners = _owners_of(graph.nodes[dataset_id])
    if not owners:
        for edge in graph.in_edges.get(dataset_id, ()):
            if edge.kind is EdgeKind.WRITES:
                owners += _owners_of(graph.nodes[edge.src])
    owners = list(dict.fromkeys(owners))
    if not owners:
        return None
    return facet("datasetOwnership", owners=[{"name": o, "type": "MAINTAINER"} for o in owners])


def job_ownership_facet(transform: Node) -> dict[str, Any] | None:
    owners = list(dict.fromkeys(_owners_of(transform)))
    return facet("jobOwnership", owners=[{"name": o, "type": "MAINTAINER"} for o in owners]) if owners else None


def description_of(node: Node, root: Path | None) -> str | None:
    """An annotation `description`, else the comment block heading the manifest's YAML document."""
    meta = node.manifest.model.metadata
    for key in ("description", "datakit.infoblox.dev/description"):
        if meta.annotations.get(key):
            return meta.annotations[key]
    if root is None:
        return None
    try:
        lines = (root / node.manifest.file).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    index = max(node.manifest.line - 1, 0)
    while index < len(lines) and lines[index].strip() in ("", "---"):
        index += 1
    comment: list[str] = []
    while index < len(lines) and lines[index].lstrip().startswith("#"):
        comment.append(lines[index].lstrip()[1:].strip())
        index += 1
    if not comment:   # the document may start after its own comment
        index = max(node.manifest.line - 2, -1)
        while index >= 0 and lines[index].lstrip().startswith("#"):
            comment.insert(0, lines[index].lstrip()[1:].strip())
            index -= 1
    text = " ".join(c for c in comment if c).strip()
    return redact_text(text) or None     # a comment is raw text: it may name a DSN with its password


def documentation_facet(node: Node, root: Path | None, kind: str) -> dict[str, Any] | None:
    text = description_of(node, root)
    return facet(kind, description=text) if text else None


def classification_facet(dataset: Node) -> dict[str, Any]:
    spec = dataset.manifest.model.spec
    fields: dict[str, Any] = {}
    if spec.classification:
        fields["level"] = spec.classification
    fields["piiColumns"] = [c.name for c in spec.schema_ if c.pii]
    fields["maskedColumns"] = {c.name: c.masking for c in spec.schema_ if c.masking}
    return facet("dataClassification", **fields)


# --- jobs and runs -----------------------------------------------------------------------------

def job_type_facet(transform: Node) -> dict[str, Any]:
    mode = (transform.manifest.model.spec.mode or "batch").lower()
    return facet("jobType", processingType="STREAMING" if mode == "streaming" else "BATCH",
                 integration="DKB", jobType="TRANSFORM")


def _web_url(remote: str) -> str | None:
    """A remote as a URI without credentials: scp-like `git@host:org/repo.git` → https://host/org/repo."""
    remote = remote.strip()
    scp = re.match(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$", remote)
    if scp and "://" not in remote:
        return f"https://{scp.group(1)}/{scp.group(2).removesuffix('.git')}"
    if remote.startswith("/"):
        return Path(remote).as_uri()
    parts = urlsplit(remote)
    if not parts.scheme:
        return None
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    scheme = "https" if parts.scheme in ("ssh", "git+ssh") else parts.scheme
    path = parts.path.removesuffix(".git") if scheme in ("http", "https") else parts.path
    return urlunsplit((scheme, host, path, "", ""))


@functools.lru_cache(maxsize=32)
def git_info(root: str) -> tuple[str, str, str, str] | None:
    """(remote url as URI, remote without credentials, HEAD sha, toplevel) or None outside git."""
    top = git_output(root, "rev-parse", "--show-toplevel")
    head = git_output(root, "rev-parse", "HEAD")
    remote = git_output(root, "config", "--get", "remote.origin.url")
    if not (top and head and remote):
        return None
    url = _web_url(remote)
    if url is None:
        return None
    return url, url, head, top


def source_code_location_facet(transform: Node, root: Path | None) -> dict[str, Any] | None:
    if root is None:
        return None
    info = git_info(str(root))
    if info is None:
        return None
    url, repo_url, head, top = info
    try:
        path = (root / transform.manifest.package).resolve().relative_to(Path(top).resolve()).as_posix()
    except ValueError:
        return None
    path = "" if path == "." else path
    if url.startswith(("https://github.com/", "https://gitlab.com/")):
        location = f"{url}/tree/{head}/{quote(path)}".rstrip("/")
    else:
        location = url
    return facet("sourceCodeLocation", type="git", url=location, repoUrl=repo_url, path=path or ".",
                 version=head)


def error_facet(transform: Node, error: dict[str, Any]) -> dict[str, Any]:
    message = redact_text(str(error.get("message") or "run failed"))
    if error.get("exit_code") is not None:
        message += f" (exit code {error['exit_code']})"
    fields: dict[str, Any] = {"message": message,
                              "programmingLanguage": LANGUAGE_OF_RUNTIME.get(
                                  transform.manifest.model.spec.runtime, "unknown")}
    if error.get("stack_trace") or error.get("stackTrace"):
        fields["stackTrace"] = redact_text(str(error.get("stack_trace") or error.get("stackTrace")))
    return facet("errorMessage", **fields)


def processing_engine_facet() -> dict[str, Any]:
    from importlib import metadata

    try:
        adapter = metadata.version("openlineage-python")
    except metadata.PackageNotFoundError:
        adapter = None
    fields = {"name": "dkb", "version": __version__}
    if adapter:
        fields["openlineageAdapterVersion"] = adapter
    return facet("processing_engine", **fields)

"""OpenLineage dataset identities (namespace, name) derived from a DataSet's Store and Connector.

Follows the OpenLineage naming conventions: `postgres://host:port` + `db.schema.table`,
`s3://bucket` + key prefix, `kafka://host:port` + topic. A dataset is named after where its data
lives, never after the team that owns the pipeline. Pure functions of the graph.
"""

from __future__ import annotations

from typing import Any

from dkbuild.graph.model import EdgeKind, Graph, Node

POSTGRES_TYPES = {"postgres", "postgresql", "pg"}
MYSQL_TYPES = {"mysql", "mariadb"}
S3_TYPES = {"s3", "aws-s3", "minio"}
KAFKA_TYPES = {"kafka", "redpanda"}


def plain(value: Any) -> str | None:
    """A connection value usable in an identity: None when absent or an unresolved `${VAR}`."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    if not text or "${" in text:
        return None
    return text


def store_of(graph: Graph, dataset_id: str) -> Node | None:
    for edge in graph.out_edges.get(dataset_id, ()):
        if edge.kind is EdgeKind.STORE:
            return graph.nodes.get(edge.dst)
    return None


def connector_of(graph: Graph, store: Node) -> Node | None:
    for edge in graph.out_edges.get(store.id, ()):
        if edge.kind is EdgeKind.CONNECTOR:
            return graph.nodes.get(edge.dst)
    return None


def connector_type(graph: Graph, store: Node | None) -> str:
    """The technology of a store: its Connector's spec.type, else the store's spec.connector."""
    if store is None:
        return "unknown"
    connector = connector_of(graph, store)
    if connector is not None:
        spec = connector.manifest.model.spec
        kind = spec.type or spec.provider or connector.name
    else:
        kind = store.manifest.model.spec.connector or "unknown"
    kind = kind.strip().lower()
    if kind in POSTGRES_TYPES:
        return "postgres"
    if kind in S3_TYPES:
        return "s3"
    if kind in KAFKA_TYPES:
        return "kafka"
    if kind in MYSQL_TYPES:
        return "mysql"
    return kind


def first_bootstrap_server(connection: dict[str, Any]) -> str | None:
    servers = connection.get("bootstrapServers", connection.get("brokers"))
    if isinstance(servers, list):
        servers = servers[0] if servers else None
    text = plain(servers)
    if not text:
        return None
    first = text.split(",")[0].strip()
    if "://" in first:           # PLAINTEXT://host:port
        first = first.split("://", 1)[1]
    return first if ":" in first else f"{first}:9092"


def location(dataset: Node) -> str:
    """Where the data sits inside its store: table, else topic, else prefix, else the dataset name."""
    spec = dataset.manifest.model.spec
    return spec.table or spec.topic or spec.prefix or dataset.name


def _db_host(store: Node, default_port: int) -> str:
    connection = store.manifest.model.spec.connection
    host = plain(connection.get("host"))
    if host is None:
        host = "localhost" if connection.get("host") is None else store.name
    port = plain(connection.get("port")) or str(default_port)
    return f"{host}:{port}"


def dataset_identity(graph: Graph, dataset_id: str) -> tuple[str, str]:
    """OpenLineage (namespace, name) of a DataSet node, from its Store."""
    dataset = graph.nodes[dataset_id]
    spec = dataset.manifest.model.spec
    store = store_of(graph, dataset_id)
    kind = connector_type(graph, store)
    if store is None:
        return f"{kind}://{spec.store or 'unresolved'}", location(dataset)
    connection = store.manifest.model.spec.connection

    if kind in ("postgres", "mysql"):
        namespace = f"{kind}://{_db_host(store, 5432 if kind == 'postgres' else 3306)}"
        table = (spec.table or dataset.name).strip()
        database = plain(connection.get("database", connection.get("dbname")))
        parts = table.split(".")
        if kind == "postgres":
            if len(parts) == 1:
                parts = ["public", *parts]
            if len(parts) == 2 and database:
                parts = [database, *parts]
        elif len(parts) == 1 and database:
            parts = [database, *parts]
        return namespace, ".".join(parts)

    if kind == "s3":
        bucket = plain(connection.get("bucket")) or store.name
        key = (spec.prefix or spec.table or dataset.name).strip("/")
        return f"s3://{bucket}", key or "/"

    if kind == "kafka":
        server = first_bootstrap_server(connection) or "localhost:9092"
        return f"kafka://{server}", spec.topic or dataset.name

    return f"{kind}://{store.name}", location(dataset)


def physical_twins(graph: Graph) -> dict[tuple[str, str], tuple[str, ...]]:
    """DataSet nodes that name one physical dataset, by its OpenLineage identity: copies a package
    keeps that differ from the shared contract (or from each other). Only such copies are looked at,
    so a workspace without them pays nothing; every group holds at least one of them."""
    datasets = [n for n in graph.nodes.values() if n.kind == "DataSet" and not n.external]
    if not any(n.scope for n in datasets):
        return {}
    places: dict[tuple[str, str], list[str]] = {}
    for node in datasets:
        places.setdefault(dataset_identity(graph, node.id), []).append(node.id)
    return {place: tuple(sorted(ids, key=lambda i: (graph.nodes[i].scope != "", i)))
            for place, ids in places.items() if len(ids) > 1 and any(graph.nodes[i].scope for i in ids)}

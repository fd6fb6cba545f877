"""Connection keys a Store's Connector declares secret (`connectionSchema: {x: {secret: true}}`) are
redacted too, whatever they are called. Which Connector a Store uses is known only once the graph is
built, so this runs then, before the load is stored or keyed (engine.snapshot.load_state)."""

from __future__ import annotations

from typing import Any

from dkbuild.graph.model import EdgeKind, Graph, Node
from dkbuild.redaction import MARK, is_redactable


def redact_declared_secrets(graph: Graph) -> None:
    for node in graph.nodes.values():
        if node.kind == "Store":
            declared = _declared(graph, node)
            if declared:
                _redact(node, declared)


def _declared(graph: Graph, store: Node) -> set[str]:
    for edge in graph.out_edges.get(store.id, ()):
        if edge.kind is EdgeKind.CONNECTOR and edge.dst in graph.nodes:
            schema = graph.nodes[edge.dst].manifest.model.spec.connectionSchema
            return {field.field or key for key, field in schema.items() if field.secret}
    return set()


def _redact(store: Node, declared: set[str]) -> None:
    manifest = store.manifest
    spec = manifest.data.get("spec")
    connection = spec.get("connection") if isinstance(spec, dict) else None
    if not isinstance(connection, dict):
        return
    hits = [key for key in declared if key in connection and is_redactable(connection[key])]
    if not hits:
        return
    positions = manifest.positions            # read before the stored body is dropped
    data: dict[str, Any] = {**manifest.data, "spec": {**spec, "connection": {
        key: MARK if key in hits else value for key, value in connection.items()}}}
    state = manifest.__dict__
    if not manifest.redacted:       # else the original is kept already, or read again (loader.original_data)
        state["_original"] = manifest.data
    for stale in ("_body", "model", "normalized"):   # derived from the unredacted data
        state.pop(stale, None)
    state.update(data=data, positions=positions, redacted=True)

"""OpenLineage 2-0-2 events as plain dicts: static JobEvents and DatasetEvents, and RunEvents.

Everything about inputs, outputs and facets comes from the static graph, so a RunEvent of `dkb run`
and the JobEvent of `dkb lineage emit` describe a job identically. openlineage-python is not
imported here (its transports are used by `dkbuild.lineage.transport`).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dkbuild.graph.model import EdgeKind, Graph, Node
from dkbuild.lineage import facets as F
from dkbuild.lineage.naming import dataset_identity

PRODUCER: str = F.PRODUCER
SPEC_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT_SCHEMA = f"{SPEC_URL}#/$defs/RunEvent"
JOB_EVENT_SCHEMA = f"{SPEC_URL}#/$defs/JobEvent"
DATASET_EVENT_SCHEMA = f"{SPEC_URL}#/$defs/DatasetEvent"
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "FAIL", "ABORT")

_uuid_lock = threading.Lock()
_uuid_last = (0, 0)   # (unix ms, 12-bit counter) of the last id handed out


def new_run_id() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix ms timestamp, version 7, a 12-bit counter seeded randomly
    each millisecond (method 1, so ids from one process are strictly increasing), variant, 62 random bits."""
    global _uuid_last
    with _uuid_lock:
        ms = time.time_ns() // 1_000_000
        last_ms, counter = _uuid_last
        if ms > last_ms:
            counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        else:
            ms, counter = last_ms, counter + 1
            if counter > 0xFFF:
                ms, counter = last_ms + 1, int.from_bytes(os.urandom(2), "big") & 0x7FF
        _uuid_last = (ms, counter)
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _root(workspace: Any) -> Path | None:
    return getattr(workspace, "root", None)


def job_namespace(transform: Node, workspace: Any) -> str:
    """Transform metadata.namespace (as dk), else its spec.lineage.namespace, else [lineage] namespace."""
    model = transform.manifest.model
    if model.metadata.namespace:
        return model.metadata.namespace
    if model.spec.lineage and model.spec.lineage.namespace:
        return model.spec.lineage.namespace
    config = getattr(workspace, "config", None)
    return config.lineage.namespace if config is not None else "dkb"


def _transform(graph: Graph, transform_id: str) -> Node:
    node = graph.nodes.get(transform_id) or graph.nodes.get(graph.aliases.get(transform_id, ""))
    if node is None or node.kind != "Transform":
        raise KeyError(f"{transform_id} is not a Transform in the graph")
    return node


def _clean(facets: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in facets.items() if v is not None}


def dataset_facets(graph: Graph, dataset_id: str, workspace: Any, *, lineage: bool = True) -> dict[str, Any]:
    """The static facets of one dataset (columnLineage only when `lineage`)."""
    node = graph.nodes[dataset_id]
    return _clean({
        "schema": F.schema_facet(node),
        "dataSource": F.datasource_facet(graph, dataset_id),
        "columnLineage": F.column_lineage_facet(graph, dataset_id) if lineage else None,
        "ownership": F.dataset_ownership_facet(graph, dataset_id),
        "documentation": F.documentation_facet(node, _root(workspace), "datasetDocumentation"),
        "dataClassification": F.classification_facet(node),
    })


def _dataset(graph: Graph, dataset_id: str, workspace: Any, lineage: bool) -> dict[str, Any]:
    namespace, name = dataset_identity(graph, dataset_id)
    return {"namespace": namespace, "name": name,
            "facets": dataset_facets(graph, dataset_id, workspace, lineage=lineage)}


def io_datasets(graph: Graph, transform_id: str) -> tuple[list[str], list[str]]:
    """Dataset node ids the transform reads and writes, in manifest order, without repeats."""
    reads: list[str] = []
    writes: list[str] = []
    for edge in graph.out_edges.get(transform_id, ()):
        side = reads if edge.kind is EdgeKind.READS else writes if edge.kind is EdgeKind.WRITES else None
        if side is not None and edge.dst not in side and graph.nodes[edge.dst].kind == "DataSet":
            side.append(edge.dst)
    return reads, writes


def job_facets(transform: Node, workspace: Any) -> dict[str, Any]:
    root = _root(workspace)
    return _clean({
        "jobType": F.job_type_facet(transform),
        "documentation": F.documentation_facet(transform, root, "jobDocumentation"),
        "ownership": F.job_ownership_facet(transform),
        "sourceCodeLocation": F.source_code_location_facet(transform, root),
    })


def _job_and_io(graph: Graph, transform: Node, workspace: Any) -> dict[str, Any]:
    reads, writes = io_datasets(graph, transform.id)
    return {
        "job": {"namespace": job_namespace(transform, workspace), "name": transform.name,
                "facets": job_facets(transform, workspace)},
        "inputs": [_dataset(graph, d, workspace, lineage=False) for d in reads],
        "outputs": [_dataset(graph, d, workspace, lineage=True) for d in writes],
    }


def job_event(graph: Graph, transform_id: str, workspace: Any) -> dict[str, Any]:
    """A static JobEvent: the job, its facets, and its input and output datasets."""
    transform = _transform(graph, transform_id)
    return {"eventTime": now(), "producer": PRODUCER, "schemaURL": JOB_EVENT_SCHEMA,
            **_job_and_io(graph, transform, workspace)}


def dataset_events(graph: Graph, dataset_ids: Any, workspace: Any) -> list[dict[str, Any]]:
    """One static DatasetEvent per dataset (all static facets, including columnLineage)."""
    out = []
    for dataset_id in dataset_ids:
        if graph.nodes[dataset_id].kind != "DataSet":
            raise KeyError(f"{dataset_id} is not a DataSet in the graph")
        out.append({"eventTime": now(), "producer": PRODUCER, "schemaURL": DATASET_EVENT_SCHEMA,
                    "dataset": _dataset(graph, dataset_id, workspace, lineage=True)})
    return out


def run_event(event_type: str, graph: Graph, transform_id: str, run_id: str, workspace: Any, *,
              event_time: str | None = None, error: dict[str, Any] | None = None) -> dict[str, Any]:
    """A RunEvent; FAIL carries an errorMessage facet built from `error` {message, exit_code, stack_trace?}."""
    event_type = event_type.upper()
    if event_type not in EVENT_TYPES:
        raise ValueError(f"eventType must be one of {', '.join(EVENT_TYPES)}, not {event_type!r}")
    str(uuid.UUID(run_id))    # a run id must be a UUID (dk's `<name>-<timestamp>` was not)
    transform = _transform(graph, transform_id)
    run_facets: dict[str, Any] = {"processing_engine": F.processing_engine_facet()}
    if event_type == "FAIL" or error is not None:
        run_facets["errorMessage"] = F.error_facet(transform, error or {})
    return {"eventTime": event_time or now(), "producer": PRODUCER, "schemaURL": RUN_EVENT_SCHEMA,
            "eventType": event_type, "run": {"runId": run_id, "facets": run_facets},
            **_job_and_io(graph, transform, workspace)}

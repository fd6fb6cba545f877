"""Where PII is, and where it flows, derived statically from column lineage. Pure functions.

Definitions
-----------
* A column is **declared PII** when its DataSet schema says `pii: true`.
* A column is **derived PII** when it is reached from a declared PII column along column edges
  (`schema[].from`) without any masking step on the way. A masking edge (`masking: hash`, ...)
  stops PII propagation: the masked column and what derives from it are not PII (unless declared).
  Masking never stops *lineage*: `walk.column_lineage` goes on through it.
* The **sources** of a PII column are the declared PII columns it is reached from without masking;
  a declared column is one of its own sources.
* A **PII flow** goes from an *origin* to a *sink*. Origins are the declared PII columns that no
  other PII column reaches unmasked (the first place PII enters the graph); a declared column that
  only a cycle of PII reaches is an origin too. Sinks are every column reached downstream of an
  origin, stopping at masking: the masked column itself is a sink of a flow with `masked=True`,
  and nothing beyond it is.
* `crosses_namespace`: the namespace of the flow's source differs from the sink's. A dataset's
  namespace is its `metadata.namespace`, else its producing transform's `metadata.namespace`; a
  source dataset with neither (a raw input nobody in the workspace writes) takes the namespace
  of the first transform that carries the flow. Unknown on either side means not crossing.
* `downgrade`: the sink dataset's classification ranks lower than the source dataset's
  (`governance.classification.rank`; a missing classification ranks lowest).
"""

from __future__ import annotations

from dataclasses import dataclass

from dkbuild.governance.classification import rank
from dkbuild.graph.model import Graph
from dkbuild.lineage.walk import DOWN, ColumnHop, ColumnWalker, writers

Column = tuple[str, str]      # (dataset node id, column name)


@dataclass(frozen=True)
class PiiOrigin:
    declared: bool
    sources: tuple[Column, ...]          # declared PII columns it is reached from (sorted)
    path: tuple[ColumnHop, ...]          # a shortest path from the first source to this column


@dataclass(frozen=True)
class PiiFlow:
    source: Column
    sink: Column
    hops: int
    path: tuple[ColumnHop, ...]
    masked: bool
    masking: str | None
    crosses_namespace: bool
    source_namespace: str | None
    sink_namespace: str | None
    downgrade: bool
    source_classification: str | None
    sink_classification: str | None


def declared_pii(graph: Graph) -> list[Column]:
    found = []
    for node_id in sorted(graph.nodes):
        node = graph.nodes[node_id]
        if node.kind != "DataSet":
            continue
        found.extend((node_id, c.name) for c in node.manifest.model.spec.schema_ if c.pii)
    return found


def pii_columns(graph: Graph) -> dict[Column, PiiOrigin]:
    """Every PII column, declared or derived, with its sources and one path that makes it PII."""
    return _pii_columns(graph, ColumnWalker(graph, DOWN))


def _pii_columns(graph: Graph, walker: ColumnWalker) -> dict[Column, PiiOrigin]:
    declared = declared_pii(graph)
    declared_set = set(declared)
    sources: dict[Column, set[Column]] = {}
    # The path of a column is the one from its smallest source; keep it while walking from each
    # source rather than walking again from that source per column.
    paths: dict[Column, tuple[Column, tuple[ColumnHop, ...]]] = {}
    for source in declared:
        walk = walker.walk([source], stop_at_masking=True)
        for key, reached in walk.reached.items():
            if reached.masked:
                continue
            sources.setdefault(key, set()).add(source)
            if key not in paths or source < paths[key][0]:
                paths[key] = (source, reached.path)
    return {key: PiiOrigin(key in declared_set, tuple(sorted(sources[key])), paths[key][1])
            for key in sorted(sources)}


def origins(graph: Graph) -> list[Column]:
    """Declared PII columns that no other PII column reaches unmasked (see the module docstring)."""
    return _origins(graph, ColumnWalker(graph, DOWN))


def _origins(graph: Graph, walker: ColumnWalker) -> list[Column]:
    columns = _pii_columns(graph, walker)
    reaches: dict[Column, set[Column]] = {}         # source -> the PII columns it reaches
    for key, origin in columns.items():
        for source in origin.sources:
            reaches.setdefault(source, set()).add(key)
    roots = [k for k, o in columns.items() if o.declared and o.sources == (k,)]
    covered: set[Column] = set()
    for r in roots:
        covered |= reaches.get(r, set())
    for k, o in columns.items():      # PII only reached around a cycle: pick its first member
        if o.declared and k not in covered:
            roots.append(k)
            covered |= reaches.get(k, set())
    return sorted(roots)


def _meta(graph: Graph, node_id: str) -> dict:
    return graph.nodes[node_id].manifest.data.get("metadata") or {}


def dataset_namespace(graph: Graph, dataset: str) -> str | None:
    """metadata.namespace of the dataset, else of its producer (the first writer by id)."""
    own = _meta(graph, dataset).get("namespace")
    if own:
        return own
    for t in writers(graph, dataset):
        ns = _meta(graph, t).get("namespace")
        if ns:
            return ns
    return None


def classification(graph: Graph, dataset: str) -> str | None:
    return graph.nodes[dataset].manifest.model.spec.classification


def pii_flows(graph: Graph) -> list[PiiFlow]:
    """One flow per (origin, reached column) pair, in (source, hops, sink) order."""
    flows = []
    walker = ColumnWalker(graph, DOWN)
    for source in _origins(graph, walker):
        walk = walker.walk([source], stop_at_masking=True)
        src_ds = source[0]
        src_class = classification(graph, src_ds)
        for key, reached in walk.reached.items():
            if key == source:
                continue
            src_ns = dataset_namespace(graph, src_ds)
            if src_ns is None:
                first_via = next((h.via for h in reached.path[1:] if h.via), None)
                src_ns = _meta(graph, first_via).get("namespace") if first_via else None
            sink_ns = dataset_namespace(graph, key[0])
            sink_class = classification(graph, key[0])
            flows.append(PiiFlow(
                source=source, sink=key, hops=reached.depth, path=reached.path,
                masked=reached.masked, masking=reached.masking,
                crosses_namespace=bool(src_ns and sink_ns and src_ns != sink_ns),
                source_namespace=src_ns, sink_namespace=sink_ns,
                downgrade=rank(sink_class) < rank(src_class),
                source_classification=src_class, sink_classification=sink_class))
    flows.sort(key=lambda f: (f.source, f.hops, f.sink))
    return flows


def pii_datasets(graph: Graph) -> set[str]:
    """Datasets holding at least one PII column, declared or derived."""
    return {d for d, _ in pii_columns(graph)}


__all__ = [
    "PiiFlow",
    "PiiOrigin",
    "dataset_namespace",
    "declared_pii",
    "origins",
    "pii_columns",
    "pii_datasets",
    "pii_flows",
]

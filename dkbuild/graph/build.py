"""Resolve loaded manifests into the Graph (a pure function of the manifests)."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from typing import Any, NamedTuple

from dkbuild.graph.model import ColumnEdge, Conflict, Dangling, Edge, EdgeKind, Graph, Node
from dkbuild.manifests.layout import PACKAGE_FILE
from dkbuild.manifests.manifest import Manifest, format_field
from dkbuild.manifests.models import DataSet, DataSetGroup, Store, Transform

_LAYOUT_RANK = {"dk.yaml": 0, "scaffold": 1, "flat": 2}


def build_graph(manifests: list[Manifest]) -> Graph:
    graph = Graph()
    copies: dict[tuple[str, str], list[Manifest]] = defaultdict(list)
    for m in manifests:
        if m.name:
            copies[(m.kind, m.name)].append(m)
    for (kind, name), defs in sorted(copies.items()):
        defs.sort(key=lambda d: (_LAYOUT_RANK[d.layout], len(d.label), d.label))
        canonical = defs[0]
        if any(d.normalized != canonical.normalized for d in defs[1:]):
            graph.conflicts.append(Conflict(kind, name, tuple(defs)))
        node = Node(_primary_label(canonical), kind, name, canonical, tuple(defs))
        graph.nodes[node.id] = node
        graph.identity[(kind, name)] = node.id
        graph.out_edges[node.id] = []
        graph.in_edges[node.id] = []
        graph.aliases.setdefault(node.id, node.id)
        for d in defs:
            graph.aliases.setdefault(d.label, node.id)
            graph.package_nodes.setdefault(d.package, set()).add(node.id)
    _package_defaults(graph, manifests)
    index = _Index(graph)
    for node_id in sorted(graph.nodes):
        _add_references(graph, graph.nodes[node_id], index)
    return graph


class _Index:
    """Lookups that resolving references asks for again and again, built once per graph: the
    column names of a dataset (asked per `from:`) and the datasets carrying a label (asked per
    tag selector, which otherwise scans every node)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._labelled: dict[tuple[str, str], set[str]] | None = None

    def columns(self, dataset: Node) -> frozenset[str]:
        return links_of(dataset.manifest).columns

    def tagged(self, tags: dict[str, str]) -> set[str]:
        """Ids of the DataSets whose labels include every one of `tags`."""
        if self._labelled is None:
            self._labelled = defaultdict(set)
            for node in self.graph.nodes.values():
                if node.kind == "DataSet":
                    for item in links_of(node.manifest).labels:
                        self._labelled[item].add(node.id)
        if not tags:
            return {n.id for n in self.graph.nodes.values() if n.kind == "DataSet"}
        found = [self._labelled.get(item, set()) for item in tags.items()]
        return set.intersection(*found)


class Links(NamedTuple):
    """What the graph takes from one manifest, as plain data: kept with the manifest's location in
    snapshots (Manifest.derived), so a graph is rebuilt after one manifest changed without reading
    or validating the bodies of all the others."""
    # In document order: (kind, name, edge, field), or (None, tag selector items, edge, field).
    refs: tuple[tuple[str | None, Any, EdgeKind, tuple[str | int, ...]], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()                        # a DataSet's metadata labels
    columns: frozenset[str] = frozenset()                           # a DataSet's column names
    lineage: tuple[tuple[int, str, str, str | None], ...] = ()     # (index, column, from, masking)


def links_of(manifest: Manifest) -> Links:
    return manifest.derived("graph-links", _links)


def _links(manifest: Manifest) -> Links:
    model = manifest.model
    if isinstance(model, Transform):
        refs: list[tuple[str | None, Any, EdgeKind, tuple[str | int, ...]]] = []
        for edge, side, items in ((EdgeKind.READS, "inputs", model.spec.inputs),
                                  (EdgeKind.WRITES, "outputs", model.spec.outputs)):
            for i, ref in enumerate(items):
                if ref.dataset:
                    refs.append(("DataSet", ref.dataset, edge, ("spec", side, i, "dataset")))
                elif ref.tags:
                    refs.append((None, tuple(ref.tags.items()), edge, ("spec", side, i, "tags")))
        return Links(tuple(refs))
    if isinstance(model, DataSet):
        store = (("Store", model.spec.store, EdgeKind.STORE, ("spec", "store")),) if model.spec.store else ()
        return Links(store, tuple(model.metadata.labels.items()),
                     frozenset(c.name for c in model.spec.schema_),
                     tuple((i, c.name, c.from_, c.masking) for i, c in enumerate(model.spec.schema_) if c.from_))
    if isinstance(model, Store):
        return Links((("Connector", model.spec.connector, EdgeKind.CONNECTOR, ("spec", "connector")),)
                     if model.spec.connector else ())
    if isinstance(model, DataSetGroup):
        store = (("Store", model.spec.store, EdgeKind.STORE, ("spec", "store")),) if model.spec.store else ()
        members = tuple(("DataSet", member, EdgeKind.MEMBER, ("spec", "datasets", i))
                        for i, member in enumerate(model.spec.datasets))
        return Links(store + members)
    return Links()


def _primary_label(m: Manifest) -> str:
    """`//pipelines/enrich` rather than `//pipelines/enrich:enrich` for a directory's own target
    (its dk.yaml, or a `datasets/<n>/dataset.yaml` outside any package)."""
    own_dir = m.layout == "dk.yaml" or (m.layout == "scaffold" and posixpath.dirname(m.file) == m.package)
    if own_dir and m.package and m.name == posixpath.basename(m.package):
        return f"//{m.package}"
    return m.label


def _package_defaults(graph: Graph, manifests: list[Manifest]) -> None:
    """`//pkg` names the target of pkg/dk.yaml; with several documents, the Transform or the one named
    like the directory."""
    by_package: dict[str, list[Manifest]] = defaultdict(list)
    for m in manifests:
        if m.name and m.layout == "dk.yaml" and posixpath.basename(m.file) == PACKAGE_FILE:
            by_package[m.package].append(m)
    for package, docs in by_package.items():
        choice = docs if len(docs) == 1 else [d for d in docs if d.kind == "Transform"]
        if len(choice) != 1:
            choice = [d for d in docs if d.name == posixpath.basename(package)]
        if len(choice) == 1:
            graph.package_default[package] = graph.aliases[choice[0].label]
        else:
            graph.ambiguous_default[package] = tuple(sorted(d.label for d in docs))


def _ref(graph: Graph, node: Node, kind: str, name: str, edge: EdgeKind, path: tuple[str | int, ...]) -> None:
    target = graph.identity.get((kind, name))
    where = format_field(path)
    if target is None:
        graph.dangling.append(Dangling(node.id, where, kind, name))
    else:
        graph.add_edge(Edge(node.id, target, edge, where))


def _add_references(graph: Graph, node: Node, index: _Index) -> None:
    links = links_of(node.manifest)
    for kind, target, edge, path in links.refs:
        if kind is None:
            _tag_refs(graph, node, dict(target), edge, path, index)
        else:
            _ref(graph, node, kind, target, edge, path)
    if links.lineage:
        _column_refs(graph, node, links, index)


def _tag_refs(graph: Graph, node: Node, tags: dict[str, str], edge: EdgeKind,
              path: tuple[str | int, ...], index: _Index) -> None:
    """dk never resolved tag selectors; dkb selects every DataSet whose labels include all the tags."""
    matched = index.tagged(tags)
    if not matched:
        selector = ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
        graph.dangling.append(Dangling(node.id, format_field(path), "DataSet", f"tags {selector}"))
    for other in sorted(matched):
        graph.add_edge(Edge(node.id, other, edge, format_field(path)))


def _column_refs(graph: Graph, node: Node, links: Links, index: _Index) -> None:
    """Column lineage is data flow, not a build dependency: it goes to graph.columns only."""
    for i, name, source, masking in links.lineage:
        dataset, _, source_column = source.partition(".")
        upstream = graph.lookup("DataSet", dataset)
        if upstream is None or not source_column or source_column not in index.columns(upstream):
            graph.dangling.append(Dangling(node.id, format_field(("spec", "schema", i, "from")), "column", source))
            continue
        graph.columns.append(ColumnEdge(upstream.id, source_column, node.id, name, masking))

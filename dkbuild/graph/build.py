"""Resolve loaded manifests into the Graph (a pure function of the manifests)."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from typing import Any, NamedTuple

from dkbuild.graph.labels import label_problem
from dkbuild.graph.model import EXTERNAL, ColumnEdge, Conflict, Dangling, Edge, EdgeKind, ExternalRef, Graph, Node
from dkbuild.manifests.layout import PACKAGE_FILE, RESOURCE_DIR_OF
from dkbuild.manifests.manifest import Manifest, format_field
from dkbuild.manifests.models import DataSet, DataSetGroup, Store, Transform

_LAYOUT_RANK = {"dk.yaml": 0, "scaffold": 1, "flat": 2}
# References go down this order (a Transform to DataSets, a group to DataSets and its Store, a
# DataSet to its Store, a Store to its Connector), so a kind's references resolve to nodes of
# kinds already placed.
KIND_ORDER = ("Connector", "Store", "DataSet", "DataSetGroup", "Transform")
EXTERNAL_API = "datakit.infoblox.dev/v1alpha1"     # of an external target's stand-in manifest


def is_package_local(m: Manifest) -> bool:
    """A copy kept inside a package for that package (its flat resource dirs, or a scaffolding file
    inside it), as opposed to a shared definition: a `dk.yaml` document, or a scaffolding file
    outside any package."""
    return m.layout == "flat" or (m.layout == "scaffold" and posixpath.dirname(m.file) != m.package)


def build_graph(manifests: list[Manifest]) -> Graph:
    """Place every definition into a node, resolving each reference as dk does: the referring
    package's own copy first, then a shared definition, else an external node. Copies with the same
    content and the same resolved references are one node; a package-local copy that differs is a
    node of its own, visible only from its package."""
    graph = Graph()
    by_kind: dict[str, list[Manifest]] = defaultdict(list)
    for m in manifests:
        if m.name:
            by_kind[m.kind].append(m)
    resolver = _Resolver(graph)
    for kind in KIND_ORDER:
        _place(graph, resolver, kind, by_kind.get(kind, []))
    _package_defaults(graph, manifests)
    index = _Index(graph)
    for node_id in sorted(graph.nodes):
        if not graph.nodes[node_id].external:
            _add_references(graph, graph.nodes[node_id], index, resolver)
    for ids in graph.by_name.values():
        ids.sort(key=lambda n: (graph.nodes[n].scope != "", n))
    return graph


def _sort_key(d: Manifest) -> tuple[int, int, str]:
    return (_LAYOUT_RANK[d.layout], len(d.label), d.label)


def _place(graph: Graph, resolver: _Resolver, kind: str, defs: list[Manifest]) -> None:
    """Nodes for the definitions of one kind. Contents are compared only where there is something
    to compare (several definitions of one name), so an unchanged workspace's bodies stay unread."""
    def targets(d: Manifest) -> tuple[str, ...]:
        return tuple(resolver.resolve(d.package, d.namespace, k, v)[0] if k is not None else repr(v)
                     for k, v, _edge, _path in links_of(d).refs)

    def signature(d: Manifest) -> tuple[str, tuple[str, ...]]:
        return (d.normalized, targets(d))

    shared: dict[tuple[str, str], list[Manifest]] = defaultdict(list)
    local: dict[tuple[str, str], list[Manifest]] = defaultdict(list)
    for d in sorted(defs, key=_sort_key):
        (local if is_package_local(d) else shared)[(d.namespace, d.name)].append(d)
    placed: dict[tuple[str, str], Node] = {}
    for (namespace, name), group in sorted(shared.items()):
        canonical = group[0]
        if len(group) > 1:
            first = signature(canonical)
            if any(signature(d) != first for d in group[1:]):
                graph.conflicts.append(Conflict(kind, name, tuple(group)))
        placed[(namespace, name)] = _add_node(graph, kind, name, group, "")
    clusters: dict[tuple[str, str, object], list[Manifest]] = defaultdict(list)
    for (namespace, name), group in sorted(local.items()):
        home = placed.get((namespace, name))
        alone = home is None and len(group) == 1
        for d in group:
            if alone:                       # nothing to compare it with
                clusters[(namespace, name, None)].append(d)
            elif home is not None and signature(d) == signature(home.manifest):   # a faithful copy
                _add_definition(graph, home, d)
            else:
                clusters[(namespace, name, signature(d))].append(d)
    for (namespace, name, _sig), group in sorted(clusters.items(), key=lambda item: item[1][0].label):
        _add_node(graph, kind, name, group, group[0].package)


def _add_node(graph: Graph, kind: str, name: str, defs: list[Manifest], scope: str) -> Node:
    canonical = defs[0]
    node = Node(_primary_label(canonical), kind, name, canonical, tuple(defs), scope)
    _register(graph, node)
    for d in defs:
        graph.aliases.setdefault(d.label, node.id)
        graph.package_nodes.setdefault(d.package, set()).add(node.id)
    return node


def _add_definition(graph: Graph, node: Node, d: Manifest) -> None:
    node = graph.nodes[node.id]          # nodes are immutable: add to the latest one
    updated = Node(node.id, node.kind, node.name, node.manifest, node.definitions + (d,), node.scope)
    graph.nodes[node.id] = updated
    graph.aliases.setdefault(d.label, node.id)
    graph.package_nodes.setdefault(d.package, set()).add(node.id)


def _register(graph: Graph, node: Node) -> None:
    graph.nodes[node.id] = node
    graph.identity.setdefault(node.identity, node.id)
    graph.by_name.setdefault((node.kind, node.name), []).append(node.id)
    graph.out_edges[node.id] = []
    graph.in_edges[node.id] = []
    graph.aliases.setdefault(node.id, node.id)


class _Resolver:
    """Which node a name means from inside one package: the package's own copy, then a shared
    definition (the referrer's namespace first), else an external node made on first use."""

    def __init__(self, graph: Graph):
        self.graph = graph

    def resolve(self, package: str, namespace: str, kind: str, name: str) -> tuple[str, bool]:
        """(node id, whether it is external)."""
        nodes = [self.graph.nodes[n] for n in self.graph.by_name.get((kind, name), ())]
        own = [n for n in nodes if n.scope not in ("", EXTERNAL) and any(d.package == package for d in n.definitions)]
        shared = [n for n in nodes if n.scope == ""]
        for found in (own, shared):
            if found:
                same = [n for n in found if n.namespace == namespace]
                return min(same or found, key=lambda n: n.id).id, False
        return self.external(kind, name).id, True

    def external(self, kind: str, name: str) -> Node:
        node_id = f"{EXTERNAL}//{RESOURCE_DIR_OF.get(kind, kind.lower())}:{name}"
        node = self.graph.nodes.get(node_id)
        if node is None:
            data = {"apiVersion": EXTERNAL_API, "kind": kind, "metadata": {"name": name}, "spec": {}}
            stand_in = Manifest(kind, name, "", -1, 0, "", "external", data, _model(kind, data))
            node = Node(node_id, kind, name, stand_in, (), EXTERNAL)
            _register(self.graph, node)
        return node


def _model(kind: str, data: dict[str, Any]) -> Any:
    from dkbuild.manifests.models import MODEL_OF_KIND

    return MODEL_OF_KIND[kind].model_validate(data)


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
            return {n.id for n in self.graph.nodes.values() if n.kind == "DataSet" and not n.external}
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


def _ref(graph: Graph, node: Node, resolver: _Resolver, kind: str, name: str, edge: EdgeKind,
         path: tuple[str | int, ...]) -> None:
    where = format_field(path)
    if label_problem("", name):     # no node: it would be a label (@external//...) no one can name
        graph.dangling.append(Dangling(node.id, where, kind, name))
        return
    target, external = resolver.resolve(node.package, node.namespace, kind, name)
    if external:
        graph.externals.append(ExternalRef(node.id, where, kind, name))
    graph.add_edge(Edge(node.id, target, edge, where))


def _add_references(graph: Graph, node: Node, index: _Index, resolver: _Resolver) -> None:
    links = links_of(node.manifest)
    for kind, target, edge, path in links.refs:
        if kind is None:
            _tag_refs(graph, node, dict(target), edge, path, index)
        else:
            _ref(graph, node, resolver, kind, target, edge, path)
    if links.lineage:
        _column_refs(graph, node, links, index, resolver)


def _tag_refs(graph: Graph, node: Node, tags: dict[str, str], edge: EdgeKind,
              path: tuple[str | int, ...], index: _Index) -> None:
    """dk never resolved tag selectors; dkb selects every DataSet visible from the referring
    package whose labels include all the tags."""
    matched = {n for n in index.tagged(tags)
               if graph.nodes[n].scope == "" or any(d.package == node.package for d in graph.nodes[n].definitions)}
    if not matched:
        selector = ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
        graph.dangling.append(Dangling(node.id, format_field(path), "DataSet", f"tags {selector}"))
    for other in sorted(matched):
        graph.add_edge(Edge(node.id, other, edge, format_field(path)))


def _column_refs(graph: Graph, node: Node, links: Links, index: _Index, resolver: _Resolver) -> None:
    """Column lineage is data flow, not a build dependency: it goes to graph.columns only. A column
    of an external dataset is taken on trust (its columns are not known here)."""
    for i, name, source, masking in links.lineage:
        dataset, _, source_column = source.partition(".")
        where = format_field(("spec", "schema", i, "from"))
        if not dataset or not source_column:
            graph.dangling.append(Dangling(node.id, where, "column", source))
            continue
        if label_problem("", dataset):
            graph.dangling.append(Dangling(node.id, where, "DataSet", dataset))
            continue
        upstream_id, external = resolver.resolve(node.package, node.namespace, "DataSet", dataset)
        upstream = graph.nodes[upstream_id]
        if external:
            graph.externals.append(ExternalRef(node.id, where, "column", source))
            graph.columns.append(ColumnEdge(upstream.id, source_column, node.id, name, masking))
            continue
        if source_column not in index.columns(upstream):
            graph.dangling.append(Dangling(node.id, where, "column", source))
            continue
        graph.columns.append(ColumnEdge(upstream.id, source_column, node.id, name, masking))

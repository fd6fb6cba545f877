"""Cross-package checks dk lacks: external references, ambiguous shared definitions, contract drift
between copies of one physical dataset, several producers, data cycles, dangling column lineage,
group members in another store."""

from __future__ import annotations

import difflib
from typing import Any

from dkbuild.diagnostics import Diagnostic, error, warning
from dkbuild.graph.labels import label_problem
from dkbuild.graph.model import Dangling, EdgeKind, ExternalRef, Graph, Node
from dkbuild.lineage.naming import dataset_identity as dataset_place
from dkbuild.lineage.naming import physical_twins
from dkbuild.manifests.fieldpath import parse_field
from dkbuild.manifests.layout import RESOURCE_DIR_OF
from dkbuild.manifests.manifest import FieldPath, Manifest, format_field


def check_graph(graph: Graph) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    found += [_external(graph, e) for e in graph.externals]
    found += [d for d in (_dangling(graph, d) for d in graph.dangling) if d is not None]
    found += _conflicts(graph)
    found += _drift(graph)
    found += _producers(graph)
    found += _data_cycles(graph)
    found += _group_stores(graph)
    return found


def at(manifest: Manifest, path: FieldPath | str) -> dict[str, Any]:
    path = parse_field(path) if isinstance(path, str) else path
    line, column = manifest.position(path)
    return {"line": line, "column": column, "field": format_field(path)}


def _names_of(graph: Graph, kind: str) -> list[str]:
    return sorted(name for (k, name), ids in graph.by_name.items()
                  if k == kind and any(not graph.nodes[n].external for n in ids))


def near_misses(name: str, names: list[str]) -> list[str]:
    """The defined name a reference was probably meant to be: alike (difflib), and a typo away
    (a few edits), so 'raw-events' does not suggest 'enriched-events'."""
    alike = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    return [n for n in alike if _edits(name, n) <= max(1, len(name) // 4)][:1]


def _edits(a: str, b: str) -> int:
    """Levenshtein distance."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


_EXTERNAL_CODE = {"DataSet": "W500", "Store": "W501", "Connector": "W502"}


def _external(graph: Graph, e: ExternalRef) -> Diagnostic:
    """dk never resolves references; dkb does, and says which lead outside the workspace."""
    node = graph.nodes[e.node]
    m = node.manifest
    if e.kind == "column":
        dataset, _, column = e.name.partition(".")
        close = near_misses(dataset, _names_of(graph, "DataSet"))
        hint = (f"did you mean '{close[0]}.{column}'?" if close else
                f"define a DataSet named '{dataset}' in the workspace to check the column")
        return warning("W507", m.file, f"column lineage '{e.name}' comes from a dataset outside the workspace "
                       f"(external '{dataset}')", hint=hint, **at(m, e.field))
    member = node.kind == "DataSetGroup" and e.field.startswith("spec.datasets")
    code = "W503" if member else _EXTERNAL_CODE[e.kind]
    what = "group member" if member else e.kind
    close = near_misses(e.name, _names_of(graph, e.kind))
    hint = (f"did you mean '{close[0]}'? " if close else "") + \
        f"if '{e.name}' lives outside this workspace nothing is needed; otherwise define a {e.kind} " \
        f"named '{e.name}' (a shared one, or a copy in {node.package or 'the package'}/" \
        f"{RESOURCE_DIR_OF[e.kind]}/)"
    return warning(code, m.file, f"{what} '{e.name}' is external: not defined in this workspace "
                   f"(referenced by {node.id})", hint=hint, **at(m, e.field))


def _dangling(graph: Graph, d: Dangling) -> Diagnostic | None:
    node = graph.nodes[d.node]
    m = node.manifest
    if d.kind == "column":
        dataset, _, column = d.name.partition(".")
        if not dataset or not column:
            return None                 # not <dataset>.<column>: the manifest rules say so (E227)
        upstream = graph.lookup("DataSet", dataset)
        columns = [c.name for c in upstream.manifest.model.spec.schema_] if upstream is not None else []
        close = difflib.get_close_matches(column, columns, n=1)
        hint = (f"did you mean '{dataset}.{close[0]}'?" if close else
                f"{dataset} has columns: {', '.join(columns) or '(none)'}")
        return warning("W517", m.file, f"column lineage '{d.name}': {dataset} has no column '{column}'",
                       hint=hint, **at(m, d.field))
    if not d.name.startswith("tags "):      # a name no label can hold (graph.build made no node)
        return error("E533", m.file, f"{d.kind} reference: {label_problem('', d.name)}",
                     hint="reference the name the target defines (lowercase letters, digits and '-')",
                     **at(m, d.field))
    return warning("W509", m.file, f"tag selector {d.name[5:]} matches no DataSet",
                   hint="label a DataSet with these metadata.labels, or reference it by name", **at(m, d.field))


def first_difference(a: Any, b: Any, path: FieldPath = ()) -> FieldPath:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return first_difference(a.get(key), b.get(key), path + (key,))
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_difference(x, y, path + (i,))
        if len(a) != len(b):
            return path + (min(len(a), len(b)),)
    return path


def _conflicts(graph: Graph) -> list[Diagnostic]:
    found = []
    for conflict in graph.conflicts:
        canonical = conflict.definitions[0]
        for other in conflict.definitions[1:]:
            if other.normalized == canonical.normalized:
                continue
            where = first_difference(canonical.data, other.data)
            found.append(error(
                "E504", other.file,
                f"{conflict.kind} '{conflict.name}' has two shared definitions that differ: here and in "
                f"{canonical.file}:{canonical.line} (first difference at {format_field(where) or 'the top level'}); "
                f"a reference to '{conflict.name}' cannot tell which is meant",
                related=(canonical.file,),
                hint="keep one shared definition, rename one of them, or give it another metadata.namespace; "
                     "a package that needs its own version keeps a copy in its dataset/, store/ or connector/ "
                     "directory", **at(other, where)))
    return found


def _drift(graph: Graph) -> list[Diagnostic]:
    """Copies of one physical dataset (same place in the same store, as OpenLineage names it) whose
    contracts disagree: the packages that carry them read or write the data differently."""
    found = []
    for twins in physical_twins(graph).values():
        first = graph.nodes[twins[0]]
        for other_id in twins[1:]:
            other = graph.nodes[other_id]
            a, b = first.manifest.data.get("spec"), other.manifest.data.get("spec")
            if a == b:
                continue
            where = ("spec",) + first_difference(a, b)
            namespace, name = dataset_place(graph, first.id)
            found.append(warning(
                "W510", other.manifest.file,
                f"contract drift: {other.id} and {first.id} describe one physical dataset ({namespace}/{name}) "
                f"differently (first difference at {format_field(where)}; the other copy is "
                f"{first.manifest.file}:{first.manifest.line})",
                related=(first.manifest.file,),
                hint="bring the copies into line (a package's copy of a contract should match the shared one)",
                **at(other.manifest, where)))
    return found


def _producers(graph: Graph) -> list[Diagnostic]:
    found = []
    for node_id, node in sorted(graph.nodes.items()):
        if node.kind != "DataSet":
            continue
        writes = [e for e in graph.in_edges[node_id] if e.kind is EdgeKind.WRITES]
        producers = sorted({e.src for e in writes})
        if len(producers) < 2:
            continue
        for edge in writes:
            others = [p for p in producers if p != edge.src]
            m = graph.nodes[edge.src].manifest
            found.append(warning("W505", m.file, f"DataSet '{node.name}' has several producers: {edge.src} "
                               f"and {', '.join(others)}", related=tuple(graph.nodes[o].manifest.file for o in others),
                               hint="each dataset has exactly one producing transform; split the dataset or "
                                    "merge the transforms", **at(m, edge.field)))
    return found


def _data_graph(graph: Graph) -> dict[str, list[str]]:
    """Data flow: dataset -> transforms reading it -> datasets they write."""
    flow: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for node_id, node in graph.nodes.items():
        if node.kind != "Transform":
            continue
        for edge in graph.out_edges[node_id]:
            if edge.kind is EdgeKind.READS:
                flow[edge.dst].append(node_id)
            elif edge.kind is EdgeKind.WRITES:
                flow[node_id].append(edge.dst)
    return flow


def _data_cycles(graph: Graph) -> list[Diagnostic]:
    flow = _data_graph(graph)
    # A search from every transform costs transforms x graph; only transforms left by the pruning
    # can be on a cycle, and the search need not leave what the pruning left.
    cyclic = _maybe_cyclic(flow)
    found = []
    reported: set[str] = set()
    for start in sorted(n for n, node in graph.nodes.items() if node.kind == "Transform"):
        if start in reported or start not in cyclic:
            continue
        cycle = _cycle_through(flow, start, cyclic)
        if cycle is None:
            continue
        reported.update(cycle)
        m = graph.nodes[start].manifest
        steps = " -> ".join(cycle + [start])
        found.append(warning("W506", m.file, f"data cycle: {steps}", field="spec.outputs",
                           line=m.position(("spec", "outputs"))[0], column=m.position(("spec", "outputs"))[1],
                           related=tuple(sorted({graph.nodes[c].manifest.file for c in cycle} - {m.file})),
                           hint="data must flow one way; break the cycle by writing a new dataset"))
    return found


def _maybe_cyclic(flow: dict[str, list[str]]) -> set[str]:
    """What is left after repeatedly dropping nodes with no way in or no way out. Every node of a
    cycle stays (its cycle gives it both), so a path from a node back to itself never leaves this
    set; in an acyclic data flow, the normal case, nothing is left."""
    into: dict[str, list[str]] = {n: [] for n in flow}
    for node, following in flow.items():
        for nxt in following:
            into[nxt].append(node)
    ins = {n: len(sources) for n, sources in into.items()}
    outs = {n: len(following) for n, following in flow.items()}
    left = set(flow)
    drop = [n for n in flow if not ins[n] or not outs[n]]
    while drop:
        node = drop.pop()
        if node not in left:
            continue
        left.remove(node)
        for nxt in flow[node]:
            ins[nxt] -= 1
            if not ins[nxt]:
                drop.append(nxt)
        for prev in into[node]:
            outs[prev] -= 1
            if not outs[prev]:
                drop.append(prev)
    return left


def _cycle_through(flow: dict[str, list[str]], start: str, within: set[str]) -> list[str] | None:
    """The shortest path start -> ... -> start, if any (BFS), among the nodes `within`."""
    parent: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(flow[node]):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return list(reversed(path))
                if nxt not in seen and nxt in within:
                    seen.add(nxt)
                    parent[nxt] = node
                    following.append(nxt)
        frontier = following
    return None


def _group_stores(graph: Graph) -> list[Diagnostic]:
    found = []
    for node in graph.nodes.values():
        if node.kind != "DataSetGroup":
            continue
        for edge in graph.out_edges[node.id]:
            if edge.kind is not EdgeKind.MEMBER:
                continue
            member: Node = graph.nodes[edge.dst]
            store = member.manifest.model.spec.store
            if store and store != node.manifest.model.spec.store:
                found.append(warning("W508", node.manifest.file,
                                     f"member '{member.name}' lives in store '{store}', the group in "
                                     f"'{node.manifest.model.spec.store}'",
                                     hint="a group is materialised by one operation on one store",
                                     **at(node.manifest, edge.field)))
    return found

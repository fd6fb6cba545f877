"""Governance policies ([policy] in workspace.toml), on by default:

E600  a dataset with a `pii: true` column must be classified (the FAQ's promise: an error), and
      in `pii_allowed_classifications` (dkb's stricter reading, which dk does not enforce: advisory);
E601  a column whose `from:` points at a PII column must itself be `pii: true` or declare `masking:`;
E602  a dataset fed by a more sensitive one (through its producer's inputs or its column lineage)
      must not be classified lower, unless it carries `spec.declassify` with a reason.

The checks only find; each finding's severity ([policy] levels included) is governance.severity's.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from dkbuild.config_model import PolicySection
from dkbuild.diagnostics import Diagnostic, error
from dkbuild.governance.classification import level_name, pii_columns, rank
from dkbuild.governance.graph_rules import at
from dkbuild.graph.model import EdgeKind, Graph


def check_policies(graph: Graph, policy: PolicySection) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    if policy.pii_classification != "off":
        found += _pii_classification(graph, policy.pii_allowed_classifications)
    if policy.pii_propagation != "off":
        found += _pii_propagation(graph)
    if policy.classification_downgrade != "off":
        found += _downgrades(graph)
    return found


def _datasets(graph: Graph):  # type: ignore[no-untyped-def]
    return [n for _, n in sorted(graph.nodes.items()) if n.kind == "DataSet"]


def _pii_classification(graph: Graph, allowed: list[str]) -> list[Diagnostic]:
    found = []
    for node in _datasets(graph):
        pii = pii_columns(node)
        level = node.manifest.model.spec.classification
        if pii and level not in allowed:
            m = node.manifest
            path = ("spec", "classification") if level else ("spec",)
            found.append(error("E600", m.file, f"DataSet '{node.name}' has PII columns ({', '.join(pii)}) but is "
                               f"classified {level or 'not at all'}",
                               hint=f"set spec.classification to one of: {', '.join(allowed)}",
                               dk_accepts=bool(level), **at(m, path)))
    return found


def _pii_propagation(graph: Graph) -> list[Diagnostic]:
    found = []
    # Where each column name first appears in its dataset's schema, worked out once per dataset
    # rather than searched for on every column edge.
    first_index: dict[str, dict[str, int]] = {}

    def column_at(node_id: str, name: str) -> tuple[int, Any]:
        schema = graph.nodes[node_id].manifest.model.spec.schema_
        names = first_index.get(node_id)
        if names is None:
            names = first_index[node_id] = {}
            for i, c in enumerate(schema):
                names.setdefault(c.name, i)
        return names[name], schema[names[name]]

    for edge in graph.columns:
        source = graph.nodes[edge.src]
        if source.external:          # its columns, PII or not, are not known here
            continue
        _, source_column = column_at(edge.src, edge.src_column)
        if not source_column.pii:
            continue
        target = graph.nodes[edge.dst]
        index, column = column_at(edge.dst, edge.dst_column)
        if column.pii or column.masking:
            continue
        m = target.manifest
        found.append(error("E601", m.file, f"column '{target.name}.{column.name}' is derived from PII column "
                           f"'{source.name}.{source_column.name}' but is neither pii: true nor masked",
                           hint="mark it 'pii: true', or declare how it is masked, e.g. 'masking: hash'",
                           **at(m, ("spec", "schema", index, "from"))))
    return found


def _downgrades(graph: Graph) -> list[Diagnostic]:
    found = []
    feeders_of = _feeders(graph)
    for node in _datasets(graph):
        spec = node.manifest.model.spec
        if spec.declassify is not None and spec.declassify.reason.strip():
            continue
        own = rank(spec.classification)
        feeders = feeders_of.get(node.id, set()) - {node.id}
        # Sorted first: of several equally sensitive feeders, name the same one every run.
        worst = max(sorted(feeders), key=lambda f: rank(graph.nodes[f].manifest.model.spec.classification),
                    default=None)
        if worst is None:
            continue
        upstream_level = rank(graph.nodes[worst].manifest.model.spec.classification)
        if upstream_level <= own:
            continue
        m = node.manifest
        path = ("spec", "classification") if spec.classification else ("spec",)
        found.append(error(
            "E602", m.file, f"DataSet '{node.name}' is classified {level_name(own)} but is derived from "
            f"'{graph.nodes[worst].name}' ({level_name(upstream_level)})",
            related=(graph.nodes[worst].manifest.file,),
            hint=f"classify it {level_name(upstream_level)} or higher, or justify the downgrade with "
                 "spec.declassify: {reason: ..., approvedBy: ...}", **at(m, path)))
    return found


def _feeders(graph: Graph) -> dict[str, set[str]]:
    """For each dataset, the datasets it is derived from: its producers' inputs and its column-lineage
    sources. One pass over the edges (asking per dataset rescanned every column edge)."""
    feeders: dict[str, set[str]] = defaultdict(set)
    for column in graph.columns:
        feeders[column.dst].add(column.src)
    for edges in graph.out_edges.values():
        inputs = [e.dst for e in edges if e.kind is EdgeKind.READS]
        if inputs:
            for e in edges:
                if e.kind is EdgeKind.WRITES:
                    feeders[e.dst].update(inputs)
    return feeders

"""Turn a set of node ids into text (or a JSON document): pure functions, sorted by node id.

Used by `dkb query --output ...` and `dkb graph`. Node ids missing from the graph are skipped.
"""

from __future__ import annotations

from typing import Any, Iterable

from dkbuild.graph.model import Edge, Graph

DOT_SHAPES = {"Transform": "box", "DataSet": "cylinder", "Store": "folder",
              "Connector": "component", "DataSetGroup": "tab"}
# Mermaid flowchart node shapes: (opening, closing) around the quoted text.
MERMAID_SHAPES = {"Transform": ("[", "]"), "DataSet": ("[(", ")]"), "Store": ("[/", "/]"),
                  "Connector": ("{{", "}}"), "DataSetGroup": ("[[", "]]")}


def _sorted(graph: Graph, ids: Iterable[str]) -> list[str]:
    return sorted(i for i in set(ids) if i in graph.nodes)


def _edges_within(graph: Graph, ordered: list[str]) -> list[Edge]:
    """Edges whose both ends are selected, one per (src, dst, kind), by source id then edge order."""
    selected = set(ordered)
    seen: set[tuple[str, str, str]] = set()
    edges = []
    for src in ordered:
        for edge in graph.out_edges.get(src, ()):
            key = (edge.src, edge.dst, edge.kind.value)
            if edge.dst in selected and key not in seen:
                seen.add(key)
                edges.append(edge)
    return edges


def render_labels(graph: Graph, ids: Iterable[str]) -> str:
    """One node id per line."""
    return "".join(f"{i}\n" for i in _sorted(graph, ids))


def render_label_kind(graph: Graph, ids: Iterable[str]) -> str:
    """`<Kind> <label>` per line, e.g. `DataSet //datasets/customers`."""
    return "".join(f"{graph.nodes[i].kind} {i}\n" for i in _sorted(graph, ids))


def render_json(graph: Graph, ids: Iterable[str], keys: dict[str, str] | None = None) -> dict[str, Any]:
    """A JSON-ready document `{"targets": [...]}`, one entry per node.

    `deps` lists *all* of a target's out edges (not only those to other selected targets), in
    manifest order, so each entry is complete on its own. `key` is the node's content key when
    `keys` gives one, else null.
    """
    keys = keys or {}
    targets = []
    for i in _sorted(graph, ids):
        node = graph.nodes[i]
        targets.append({
            "label": i,
            "kind": node.kind,
            "name": node.name,
            "package": node.package,
            "file": node.manifest.file,
            "line": node.manifest.line,
            "labels": list(node.labels),
            "key": keys.get(i),
            "deps": [{"label": e.dst, "edge": e.kind.value, "field": e.field}
                     for e in graph.out_edges.get(i, ())],
        })
    return {"targets": targets}


def dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def render_dot(graph: Graph, ids: Iterable[str]) -> str:
    """A Graphviz digraph of the nodes and the edges among them, labelled by edge kind."""
    ordered = _sorted(graph, ids)
    lines = ["digraph dkb {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for i in ordered:
        shape = DOT_SHAPES.get(graph.nodes[i].kind, "ellipse")
        lines.append(f"  {dot_quote(i)} [shape={shape}];")
    for edge in _edges_within(graph, ordered):
        lines.append(f"  {dot_quote(edge.src)} -> {dot_quote(edge.dst)} "
                     f"[label={dot_quote(edge.kind.value)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def mermaid_text(text: str) -> str:
    """Quoted node text; quotes and characters Mermaid treats specially become entity codes."""
    out = text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    return f'"{out}"'


def render_mermaid(graph: Graph, ids: Iterable[str]) -> str:
    """A Mermaid `flowchart LR`; nodes are n0, n1, ... in id order, shaped by kind."""
    ordered = _sorted(graph, ids)
    short = {i: f"n{index}" for index, i in enumerate(ordered)}
    lines = ["flowchart LR"]
    for i in ordered:
        opening, closing = MERMAID_SHAPES.get(graph.nodes[i].kind, ("[", "]"))
        lines.append(f"  {short[i]}{opening}{mermaid_text(i)}{closing}")
    for edge in _edges_within(graph, ordered):
        lines.append(f"  {short[edge.src]} -->|{edge.kind.value}| {short[edge.dst]}")
    return "\n".join(lines) + "\n"

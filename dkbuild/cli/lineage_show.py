"""`dkb lineage TARGET`: dataset or column lineage as a text tree, JSON, Graphviz or Mermaid."""

from __future__ import annotations

import sys
from typing import Any

import click

from dkbuild.cli.common import (
    EXIT_USAGE,
    emit_json,
    fail_pattern,
    load_workspace_graph,
    note_warnings,
)
from dkbuild.graph.labels import PatternError

FORMATS = ["text", "json", "dot", "mermaid"]


@click.command("show")
@click.argument("target")
@click.option("--upstream", "direction", flag_value="up", help="Only what TARGET derives from.")
@click.option("--downstream", "direction", flag_value="down", help="Only what derives from TARGET.")
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help="At most N dataset hops (column hops with --columns).")
@click.option("--columns", is_flag=True, help="Column-level lineage (implied by dataset.column).")
@click.option("--output", "-o", type=click.Choice(FORMATS), default="text", show_default=True)
@click.pass_context
def show_command(ctx: click.Context, target: str, direction: str | None, depth: int | None,
                 columns: bool, output: str) -> None:
    """Show the lineage of TARGET: a label or pattern (//datasets/customers), a dataset name
    (customers) or a column (customers.email). Both directions unless --upstream/--downstream."""
    from dkbuild.lineage.query import resolve
    from dkbuild.lineage.walk import (
        DOWN,
        UP,
        column_lineage,
        dataset_lineage,
        dataset_unresolved,
    )

    mode = "json" if output == "json" else "text"
    loaded = load_workspace_graph(ctx, mode)
    note_warnings(loaded)
    graph = loaded.graph
    try:
        resolved = resolve(graph, target, loaded.current_package)
    except PatternError as exc:
        fail_pattern(exc, mode)
    directions = [direction] if direction else [UP, DOWN]

    if resolved.column is not None or columns:
        if resolved.column is not None:
            roots = [resolved.column]
        else:
            roots = [(d, c.name) for d in sorted(resolved.nodes) if graph.nodes[d].kind == "DataSet"
                     for c in graph.nodes[d].manifest.model.spec.schema_]
        if not roots:
            _fail(f"'{target}' names no dataset column", "name a dataset with a schema, or dataset.column",
                  mode)
        walks = {d: column_lineage(graph, roots, d, depth) for d in directions}
        document = _columns_json(graph, target, walks)
        render = {"text": _columns_text, "dot": _columns_dot, "mermaid": _columns_mermaid}
    else:
        roots_n = sorted(n for n in resolved.nodes if graph.nodes[n].kind in ("DataSet", "Transform"))
        if not roots_n:
            kinds = sorted({graph.nodes[n].kind for n in resolved.nodes})
            _fail(f"'{target}' names no dataset or transform (found {', '.join(kinds) or 'nothing'})",
                  "lineage follows data: name a DataSet, a Transform or dataset.column", mode)
        walks = {d: dataset_lineage(graph, roots_n, d, depth) for d in directions}
        reached = {n for w in walks.values() for n in w.reached}
        document = _datasets_json(graph, target, walks, dataset_unresolved(graph, reached))
        render = {"text": _datasets_text, "dot": _datasets_dot, "mermaid": _datasets_mermaid}

    if output == "json":
        emit_json(document)
    else:
        click.echo(render[output](graph, walks, document), nl=False)


def _fail(message: str, hint: str, mode: str) -> None:
    if mode == "json":
        emit_json({"errors": [{"code": "E140", "message": message, "hint": hint}]})
    click.echo(f"dkb: error: {message}\n  hint: {hint}", err=True)
    sys.exit(EXIT_USAGE)


def _unresolved_json(items: Any) -> list[dict[str, Any]]:
    return [{"dataset": u.dataset, "column": u.column, "from": u.ref, "field": u.field} for u in items]


# -- datasets --------------------------------------------------------------------------------------

def _datasets_json(graph, target, walks, unresolved) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    doc: dict[str, Any] = {"target": target, "level": "dataset"}
    for direction, walk in walks.items():
        doc["upstream" if direction == "up" else "downstream"] = {
            "roots": list(walk.roots),
            "depth": walk.depth,
            "nodes": [{"id": r.node, "kind": r.kind, "name": graph.nodes[r.node].name, "depth": r.depth,
                       "path": list(r.path), "external": graph.nodes[r.node].external}
                      for r in walk.reached.values()],
            "edges": [{"from": a, "to": b} for a, b in walk.data_edges()],
        }
    doc["unresolved"] = _unresolved_json(unresolved)
    return doc


def _tree(lines: list[str], walk, node: str, indent: int, seen: set[str], label) -> None:  # type: ignore[no-untyped-def]
    for child in walk.children(node):
        if child in seen:
            lines.append("  " * indent + f"{label(child)} (see above)")
            continue
        seen.add(child)
        lines.append("  " * indent + label(child))
        _tree(lines, walk, child, indent + 1, seen, label)


def _datasets_text(graph, walks, doc) -> str:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    first = next(iter(walks.values()))
    for root in first.roots:
        lines.append(f"{root} ({graph.nodes[root].kind})")
        for direction, walk in walks.items():
            lines.append(f"  {'upstream' if direction == 'up' else 'downstream'}:")
            before = len(lines)
            _tree(lines, walk, root, 2, {root}, lambda n: n + (" (external)" if graph.nodes[n].external else ""))
            if len(lines) == before:
                lines.append("    (none)")
    for u in doc["unresolved"]:
        lines.append(f"unresolved from: {u['dataset']}.{u['column']} <- {u['from']} ({u['field']})")
    return "\n".join(lines) + "\n"


def _all_edges(walks) -> tuple[list[str], list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    nodes: dict[str, None] = {}
    edges: dict[tuple[str, str], None] = {}
    for walk in walks.values():
        nodes.update(dict.fromkeys(walk.reached))
        edges.update(dict.fromkeys(walk.data_edges()))
    return sorted(nodes), list(edges)


def _datasets_dot(graph, walks, doc) -> str:  # type: ignore[no-untyped-def]
    from dkbuild.graph.render import DOT_SHAPES, dot_quote

    nodes, edges = _all_edges(walks)
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for n in nodes:
        lines.append(f"  {dot_quote(n)} [shape={DOT_SHAPES.get(graph.nodes[n].kind, 'ellipse')}];")
    for a, b in edges:
        lines.append(f"  {dot_quote(a)} -> {dot_quote(b)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _datasets_mermaid(graph, walks, doc) -> str:  # type: ignore[no-untyped-def]
    from dkbuild.graph.render import MERMAID_SHAPES, mermaid_text

    nodes, edges = _all_edges(walks)
    short = {n: f"n{i}" for i, n in enumerate(nodes)}
    lines = ["flowchart LR"]
    for n in nodes:
        opening, closing = MERMAID_SHAPES.get(graph.nodes[n].kind, ("[", "]"))
        lines.append(f"  {short[n]}{opening}{mermaid_text(n)}{closing}")
    for a, b in edges:
        lines.append(f"  {short[a]} --> {short[b]}")
    return "\n".join(lines) + "\n"


# -- columns ---------------------------------------------------------------------------------------

def _col(graph, key) -> str:  # type: ignore[no-untyped-def]
    return f"{graph.nodes[key[0]].name}.{key[1]}"


def _columns_json(graph, target, walks) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    doc: dict[str, Any] = {"target": target, "level": "column"}
    unresolved: list = []
    for direction, walk in walks.items():
        doc["upstream" if direction == "up" else "downstream"] = {
            "roots": [{"dataset": d, "column": c} for d, c in walk.roots],
            "depth": walk.depth,
            "columns": [{"dataset": r.dataset, "name": graph.nodes[r.dataset].name, "column": r.column,
                         "depth": r.depth, "via": r.via, "masking": r.masking, "masked": r.masked,
                         "path": [{"dataset": h.dataset, "column": h.column, "via": h.via,
                                   "masking": h.masking} for h in r.path]}
                        for r in walk.reached.values()],
            "edges": [{"from": {"dataset": a[0], "column": a[1]}, "to": {"dataset": b[0], "column": b[1]},
                       "via": via, "masking": masking}
                      for a, b, via, masking in _column_data_edges(walk)],
        }
        unresolved += [u for u in walk.unresolved if u not in unresolved]
    doc["unresolved"] = _unresolved_json(unresolved)
    return doc


def _column_data_edges(walk):  # type: ignore[no-untyped-def]
    if walk.direction == "down":
        return list(walk.edges)
    return [(b, a, via, masking) for a, b, via, masking in walk.edges]


def _columns_text(graph, walks, doc) -> str:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    first = next(iter(walks.values()))
    for root in first.roots:
        lines.append(_col(graph, root))
        for direction, walk in walks.items():
            lines.append(f"  {'upstream' if direction == 'up' else 'downstream'}:")
            notes = {b: (via, masking) for a, b, via, masking in walk.edges}

            def label(key, notes=notes):  # type: ignore[no-untyped-def]
                via, masking = notes.get(key, (None, None))
                text = _col(graph, key) + (f"  via {via}" if via else "")
                return text + (f"  (masked: {masking})" if masking else "")

            before = len(lines)
            _tree(lines, walk, root, 2, {root}, label)
            if len(lines) == before:
                lines.append("    (none)")
    for u in doc["unresolved"]:
        where = f"{graph.nodes[u['dataset']].name}.{u['column']}" if u["dataset"] in graph.nodes else u["dataset"]
        lines.append(f"unresolved from: {where} <- {u['from']} ({u['field']})")
    return "\n".join(lines) + "\n"


def _column_graph(graph, walks):  # type: ignore[no-untyped-def]
    nodes: dict[tuple[str, str], None] = {}
    edges: dict[tuple, None] = {}
    for walk in walks.values():
        nodes.update(dict.fromkeys(walk.reached))
        edges.update(dict.fromkeys(_column_data_edges(walk)))
    return sorted(nodes), list(edges)


def _edge_label(via, masking) -> str:  # type: ignore[no-untyped-def]
    parts = [p for p in (via, masking and f"masked: {masking}") if p]
    return ", ".join(parts)


def _columns_dot(graph, walks, doc) -> str:  # type: ignore[no-untyped-def]
    from dkbuild.graph.render import dot_quote

    nodes, edges = _column_graph(graph, walks)
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", shape=box];']
    for n in nodes:
        lines.append(f"  {dot_quote(_col(graph, n))};")
    for a, b, via, masking in edges:
        label = _edge_label(via, masking)
        attrs = f" [label={dot_quote(label)}{', style=dashed' if masking else ''}]" if label else ""
        lines.append(f"  {dot_quote(_col(graph, a))} -> {dot_quote(_col(graph, b))}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _columns_mermaid(graph, walks, doc) -> str:  # type: ignore[no-untyped-def]
    from dkbuild.graph.render import mermaid_text

    nodes, edges = _column_graph(graph, walks)
    short = {n: f"c{i}" for i, n in enumerate(nodes)}
    lines = ["flowchart LR"]
    for n in nodes:
        lines.append(f"  {short[n]}[{mermaid_text(_col(graph, n))}]")
    for a, b, via, masking in edges:
        label = _edge_label(via, masking)
        arrow = f" -.->|{mermaid_text(label)}| " if masking else (f" -->|{mermaid_text(label)}| " if label else " --> ")
        lines.append(f"  {short[a]}{arrow}{short[b]}")
    return "\n".join(lines) + "\n"

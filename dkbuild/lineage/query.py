"""Lineage functions for the query language, registered into the query function table on import.

    produces(u, ds)            transforms in u that WRITE a dataset of ds
    consumes(u, ds)            transforms in u that READ a dataset of ds
    pii(x)                     datasets in x holding a PII column, declared or derived
    impact(target)             the target plus every dataset and transform reached downstream;
                               for `dataset.column`, column-level, stopping at masking when the
                               column is PII
    lineage(target, up|down[, depth])   datasets and transforms reached that way (depth in dataset
                               hops, or column hops for a column)
    classification(level, x)   datasets in x classified exactly `level`; `">=confidential"`,
                               `"<internal"`, `"!=public"` compare by rank (quote them: `=`, `<`,
                               `>` and `!` end a bare word)

**Target words.** `ds`, `target` are *words*, not expressions, so that a bare dataset name such as
`raw-events` (which is not a label) can name a DataSet. A word is resolved in this order:
`dataset.column` (dataset by name or label, column in its schema) → a dataset name → a query
expression (a pattern such as `//datasets/...`, or any quoted expression:
`produces(//..., "kind(DataSet, //datasets/...)")`). Unknown names raise PatternError with
suggestions.

**Reasons.** Every function records, for each node it returns, the path that reached it, when the
evaluation context carries a `reasons` dict. `evaluate_with_reasons` evaluates with such a
context (a backwards-compatible subclass of `Context`) and returns `(ids, reasons)`.
"""

from __future__ import annotations

import difflib
import posixpath
from dataclasses import dataclass
from typing import Any

from dkbuild.governance.classification import LEVELS, rank
from dkbuild.graph.labels import PatternError
from dkbuild.graph.model import EdgeKind, Graph
from dkbuild.graph.query import builtins as _builtins  # noqa: F401  (the table is complete first)
from dkbuild.graph.query.evaluate import evaluate
from dkbuild.graph.query.registry import Arg, Context, Function, register
from dkbuild.graph.select import transforms_named
from dkbuild.lineage.pii import pii_columns
from dkbuild.lineage.walk import (
    DOWN,
    UP,
    ColumnLineage,
    ColumnReached,
    DatasetLineage,
    column_lineage,
    dataset_lineage,
)

# -- reasons ---------------------------------------------------------------------------------------

def note(ctx: Context, node: str, reason: str) -> None:
    """Record why a node was returned, when the caller collects reasons."""
    if ctx.reasons is not None:
        bucket = ctx.reasons.setdefault(node, [])
        if reason not in bucket:
            bucket.append(reason)


def evaluate_with_reasons(expr: str, graph: Graph, current_package: str = ""
                          ) -> tuple[set[str], dict[str, list[str]]]:
    """Like `dkbuild.graph.query.evaluate`, plus the reasons of the nodes in the result."""
    reasons: dict[str, list[str]] = {}
    ids = evaluate(expr, graph, current_package, reasons=reasons)
    return ids, {n: r for n, r in sorted(reasons.items()) if n in ids}


# -- resolving target words ------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """What a target word names: nodes (datasets, transforms, ...) or one column."""
    text: str
    nodes: frozenset[str] = frozenset()
    column: tuple[str, str] | None = None     # (dataset id, column)


def _dataset_by_word(graph: Graph, word: str) -> str | None:
    node = graph.lookup("DataSet", word)
    if node is not None:
        return node.id
    node_id = graph.aliases.get(word)
    if node_id is None and word.startswith("//"):
        node_id = graph.package_default.get(word[2:])
        if node_id is None and len(graph.package_nodes.get(word[2:], ())) == 1:
            node_id = next(iter(graph.package_nodes[word[2:]]))
    if node_id is not None and graph.nodes[node_id].kind == "DataSet":
        return node_id
    return None


def _package_by_word(graph: Graph, word: str, current_package: str) -> str | None:
    """A package as `dk lineage <package>` names it: its Transform's name, or its directory
    (`transforms/enrich`, `./enrich` relative to the current directory)."""
    named = transforms_named(graph, word)
    if named:
        return min(named)
    if word.startswith("//") or "(" in word:
        return None
    directory = posixpath.normpath(posixpath.join(current_package, word)).strip("/")
    return graph.package_default.get("" if directory == "." else directory)


def _schema(graph: Graph, dataset: str) -> list[str]:
    return [c.name for c in graph.nodes[dataset].manifest.model.spec.schema_]


def dataset_names(graph: Graph) -> list[str]:
    return sorted(n.name for n in graph.nodes.values() if n.kind == "DataSet")


def resolve(graph: Graph, text: str, current_package: str = "") -> Target:
    """Resolve a target word (see the module docstring). Raises PatternError with suggestions."""
    from dkbuild.graph.query.errors import QuerySyntaxError
    from dkbuild.graph.query.evaluate import evaluate

    if "." in text and "(" not in text and not text.rstrip("/").endswith("..."):
        prefix, _, column = text.rpartition(".")
        dataset = _dataset_by_word(graph, prefix)
        if dataset is not None:
            columns = _schema(graph, dataset)
            if column in columns:
                return Target(text, frozenset({dataset}), (dataset, column))
            close = difflib.get_close_matches(column, columns, n=3, cutoff=0.5)
            hint = (f"did you mean {', '.join(f'{prefix}.{c}' for c in close)}?" if close
                    else f"columns of {prefix}: {', '.join(columns) or '(none)'}")
            raise PatternError(f"dataset {prefix} has no column '{column}'", text,
                               len(prefix) + 2, hint)
    dataset = _dataset_by_word(graph, text)
    if dataset is not None:
        return Target(text, frozenset({dataset}))
    package = _package_by_word(graph, text, current_package)
    if package is not None:
        return Target(text, frozenset({package}))
    try:
        return Target(text, frozenset(evaluate(text, graph, current_package)))
    except PatternError:
        close = difflib.get_close_matches(text, dataset_names(graph), n=3, cutoff=0.6)
        if close:
            raise PatternError(f"no dataset or target matches '{text}'", text, 1,
                               f"did you mean {', '.join(close)}?") from None
        raise
    except QuerySyntaxError as exc:   # the word is neither a name nor an expression
        close = difflib.get_close_matches(text, dataset_names(graph), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else str(exc)
        raise PatternError(f"no dataset or target matches '{text}'", text, 1, hint) from None


# -- reason text -----------------------------------------------------------------------------------

def dataset_path_text(path: tuple[str, ...]) -> str:
    return " -> ".join(path)


def column_path_text(graph: Graph, reached: ColumnReached) -> str:
    parts = []
    for i, hop in enumerate(reached.path):
        name = f"{graph.nodes[hop.dataset].name}.{hop.column}"
        if i:
            notes = [n for n in (hop.via, hop.masking and f"masked: {hop.masking}") if n]
            parts.append(f"-[{', '.join(notes)}]-> {name}" if notes else f"-> {name}")
        else:
            parts.append(name)
    return " ".join(parts)


def _note_dataset_walk(ctx: Context, walk: DatasetLineage) -> set[str]:
    for node, reached in walk.reached.items():
        arrow = "downstream" if walk.direction == DOWN else "upstream"
        note(ctx, node, f"{arrow}: {dataset_path_text(reached.path)}" if reached.depth
             else f"{arrow}: start")
    return set(walk.reached)


def _note_column_walk(ctx: Context, walk: ColumnLineage) -> set[str]:
    graph = ctx.graph
    found: set[str] = set()
    arrow = "downstream" if walk.direction == DOWN else "upstream"
    for reached in walk.reached.values():
        text = f"{arrow}: {column_path_text(graph, reached)}"
        found.add(reached.dataset)
        note(ctx, reached.dataset, text)
        if reached.via:
            found.add(reached.via)
            note(ctx, reached.via, text)
    return found


# -- the functions ---------------------------------------------------------------------------------

def _io(ctx: Context, args: list[Any], kind: EdgeKind) -> set[str]:
    universe, word = args
    datasets = resolve(ctx.graph, word, ctx.current_package).nodes
    found = set()
    for t in universe:
        if ctx.graph.nodes[t].kind != "Transform":
            continue
        for e in ctx.graph.out_edges.get(t, ()):
            if e.kind is kind and e.dst in datasets:
                found.add(t)
                note(ctx, t, f"{kind.value} {e.dst} ({e.field})")
    return found


def _produces(ctx: Context, args: list[Any]) -> set[str]:
    return _io(ctx, args, EdgeKind.WRITES)


def _consumes(ctx: Context, args: list[Any]) -> set[str]:
    return _io(ctx, args, EdgeKind.READS)


def _pii(ctx: Context, args: list[Any]) -> set[str]:
    (targets,) = args
    found = set()
    for (dataset, column), origin in pii_columns(ctx.graph).items():
        if dataset in targets:
            found.add(dataset)
            name = ctx.graph.nodes[dataset].name
            if origin.declared:
                note(ctx, dataset, f"{name}.{column}: declared pii")
            else:
                src = ", ".join(f"{ctx.graph.nodes[d].name}.{c}" for d, c in origin.sources)
                note(ctx, dataset, f"{name}.{column}: derived pii from {src}")
    return found


def _impact(ctx: Context, args: list[Any]) -> set[str]:
    (word,) = args
    target = resolve(ctx.graph, word, ctx.current_package)
    if target.column is not None:
        is_pii = target.column in pii_columns(ctx.graph)
        walk = column_lineage(ctx.graph, [target.column], DOWN, stop_at_masking=is_pii)
        return _note_column_walk(ctx, walk)
    roots = {n for n in target.nodes if ctx.graph.nodes[n].kind in ("DataSet", "Transform")}
    return _note_dataset_walk(ctx, dataset_lineage(ctx.graph, roots, DOWN))


_DIRECTIONS = {"up": UP, "upstream": UP, "down": DOWN, "downstream": DOWN}


def _lineage(ctx: Context, args: list[Any]) -> set[str]:
    word, direction, *depth = args
    if direction not in _DIRECTIONS:
        raise PatternError(f"lineage() direction must be up or down, not '{direction}'", direction, 1,
                           "write lineage(target, up) or lineage(target, down, 2)")
    limit = depth[0] if depth else None
    target = resolve(ctx.graph, word, ctx.current_package)
    if target.column is not None:
        return _note_column_walk(ctx, column_lineage(ctx.graph, [target.column],
                                                     _DIRECTIONS[direction], limit))
    roots = {n for n in target.nodes if ctx.graph.nodes[n].kind in ("DataSet", "Transform")}
    return _note_dataset_walk(ctx, dataset_lineage(ctx.graph, roots, _DIRECTIONS[direction], limit))


_COMPARISONS = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b, "<": lambda a, b: a < b, "==": lambda a, b: a == b, "=": lambda a, b: a == b,
}


def _classification(ctx: Context, args: list[Any]) -> set[str]:
    level, targets = args
    op = next((o for o in ("==", ">=", "<=", "!=", ">", "<", "=") if level.startswith(o)), "==")
    name = level.removeprefix(op)
    if name not in LEVELS and name != "unclassified":
        close = difflib.get_close_matches(name, [*LEVELS, "unclassified"], n=1)
        raise PatternError(f"unknown classification level '{name}'", level, len(level) - len(name) + 1,
                           f"did you mean {close[0]}?" if close else f"levels: {', '.join(LEVELS)}")
    wanted = rank(name)
    found = set()
    for n in targets:
        node = ctx.graph.nodes[n]
        if node.kind != "DataSet":
            continue
        have = node.manifest.model.spec.classification
        if _COMPARISONS[op](rank(have), wanted):
            found.add(n)
            note(ctx, n, f"classification {have or 'unclassified'} {op} {name}")
    return found


LINEAGE_FUNCTIONS = (
    Function("produces", (Arg.EXPR, Arg.WORD), _produces, (),
             "transforms of the first set that write the datasets the word names"),
    Function("consumes", (Arg.EXPR, Arg.WORD), _consumes, (),
             "transforms of the first set that read the datasets the word names"),
    Function("pii", (Arg.EXPR,), _pii, (),
             "datasets of the set holding a PII column, declared or derived"),
    Function("impact", (Arg.WORD,), _impact, (),
             "a dataset (or dataset.column) plus every dataset and transform reached downstream"),
    Function("lineage", (Arg.WORD, Arg.WORD), _lineage, (Arg.INT,),
             "datasets and transforms reached up or down from a dataset or column, to a depth"),
    Function("classification", (Arg.WORD, Arg.EXPR), _classification, (),
             "datasets of the set classified as the level (or '>=level', '<level', ...)"),
)

for _function in LINEAGE_FUNCTIONS:
    register(_function, replace=True)

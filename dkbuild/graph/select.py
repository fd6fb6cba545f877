"""Resolve target patterns against a graph, with suggestions when a pattern matches nothing."""

from __future__ import annotations

import difflib
from collections.abc import Collection

from dkbuild.graph.labels import Pattern, PatternError, Scope, parse_pattern
from dkbuild.graph.model import Graph


def match(graph: Graph, pattern: Pattern) -> set[str]:
    """Node ids a single (positive) pattern matches; may be empty."""
    if pattern.scope is Scope.RECURSIVE:
        return {n for pkg, ids in graph.package_nodes.items() if pattern.covers_package(pkg) for n in ids}
    if pattern.scope is Scope.PACKAGE:
        return set(graph.package_nodes.get(pattern.package, ()))
    if pattern.scope is Scope.DEFAULT:
        node = graph.package_default.get(pattern.package)
        if node is None and pattern.package in graph.ambiguous_default:
            options = ", ".join(graph.ambiguous_default[pattern.package])
            raise PatternError(f"//{pattern.package} is ambiguous: its dk.yaml defines several targets "
                               f"({options})", str(pattern), 1, "name one of them with //pkg:name")
        if node is None and pattern.package not in graph.package_nodes:
            # //datasets/users for datasets/users/dataset.yaml: a directory holding exactly one target.
            return set()
        if node is None:
            ids = graph.package_nodes[pattern.package]
            return set(ids) if len(ids) == 1 else set()
        return {node}
    node = graph.aliases.get(f"//{pattern.package}:{pattern.name}")
    return {node} if node else set()


def transforms_named(graph: Graph, name: str) -> set[str]:
    """Transforms a dk package name means: `metadata.name`, or `namespace/name` when two share a name."""
    return {n.id for n in graph.nodes.values()
            if n.kind == "Transform" and name in (n.name, f"{n.namespace}/{n.name}" if n.namespace else None)}


def select(graph: Graph, patterns: list[str], current_package: str = "") -> set[str]:
    """Union of the positive patterns minus the negative ones, in order. Unknown targets are errors."""
    return select_naming(graph, patterns, current_package)[0]


def select_naming(graph: Graph, patterns: list[str], current_package: str = "",
                  packages: Collection[str] = (), *, empty_ok: bool = False) -> tuple[set[str], set[str]]:
    """`select`, where `packages` are directories known to be packages that have no target in the
    graph (their dk.yaml did not load): a pattern naming one of them is no error, nor, with
    `empty_ok`, any pattern over an empty graph. Also returns which of `packages` the patterns
    name, in the end (a later `-//pkg` takes one back)."""
    selected: set[str] = set()
    named: dict[str, bool] = {}
    for pattern in (parse_pattern(p, current_package) for p in patterns or ["//..."]):
        hits = [p for p in packages
                if (pattern.covers_package(p) if pattern.scope is Scope.RECURSIVE else pattern.package == p)]
        named.update((p, not pattern.negative) for p in hits)
        found = match(graph, pattern)
        if not found and not hits and (graph.nodes or not empty_ok):
            raise no_match(graph, pattern)
        if pattern.negative:
            selected -= found
        else:
            selected |= found
    return selected, {p for p, wanted in named.items() if wanted}


def no_match(graph: Graph, pattern: Pattern) -> PatternError:
    text = str(pattern)
    # Every label a user could mean, without the long spelling of a short label (//a/b:b for //a/b).
    redundant = {f"{n}:{node.name}" for n, node in graph.nodes.items() if ":" not in n}
    candidates = sorted((set(graph.aliases) - redundant) | {f"//{p}" for p in graph.package_nodes})
    close = difflib.get_close_matches(text.lstrip("-"), candidates, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "run `dkb query //...` to list targets"
    if pattern.scope is Scope.RECURSIVE:
        message = f"no targets below //{pattern.package}"
    elif pattern.scope is Scope.DEFAULT and pattern.package in graph.package_nodes:
        message = f"//{pattern.package} has no dk.yaml target"
        hint = f"name one of its targets: {', '.join(sorted(graph.nodes[n].id for n in graph.package_nodes[pattern.package])[:5])}"
    else:
        message = f"no target matches '{text.lstrip('-')}'"
    return PatternError(message, text, 1, hint)

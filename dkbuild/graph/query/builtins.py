"""The built-in query functions, registered into the function table on import."""

from __future__ import annotations

from typing import Any, Iterator

from dkbuild.graph.model import Graph, Node
from dkbuild.graph.query.registry import Arg, Context, Function, register
from dkbuild.graph.query.traversal import all_paths, reachable, some_path
from dkbuild.manifests.manifest import canonical_json


def _deps(ctx: Context, args: list[Any]) -> set[str]:
    targets, *depth = args
    return reachable(ctx.graph, targets, depth=depth[0] if depth else None)


def _rdeps(ctx: Context, args: list[Any]) -> set[str]:
    universe, targets, *depth = args
    return reachable(ctx.graph, targets, forward=False, depth=depth[0] if depth else None,
                     within=universe)


def _allpaths(ctx: Context, args: list[Any]) -> set[str]:
    sources, targets = args
    return all_paths(ctx.graph, sources, targets)


def _somepath(ctx: Context, args: list[Any]) -> set[str]:
    sources, targets = args
    return set(some_path(ctx.graph, sources, targets))


def _kind(ctx: Context, args: list[Any]) -> set[str]:
    pattern, targets = args
    return {n for n in targets if pattern.search(ctx.graph.nodes[n].kind)}


def node_labels(node: Node) -> tuple[str, ...]:
    """The node id followed by every label of every copy of the target."""
    return (node.id, *(label for label in node.labels if label != node.id))


def _filter(ctx: Context, args: list[Any]) -> set[str]:
    pattern, targets = args
    return {n for n in targets if any(pattern.search(l) for l in node_labels(ctx.graph.nodes[n]))}


def field_values(data: Any, path: list[str]) -> Iterator[Any]:
    """Values at a dotted path. Lists are searched element-wise (`spec.inputs.dataset`) unless the
    segment is an index (`spec.inputs.0.dataset`); a mapping key may itself contain dots
    (`metadata.labels.datakit.infoblox.dev/provider`): the longest key that fits is used."""
    if not path:
        yield data
        return
    if isinstance(data, list):
        if path[0].isdigit():
            index = int(path[0])
            if index < len(data):
                yield from field_values(data[index], path[1:])
            return
        for item in data:
            yield from field_values(item, path)
        return
    if isinstance(data, dict):
        for cut in range(len(path), 0, -1):
            key = ".".join(path[:cut])
            if key in data:
                yield from field_values(data[key], path[cut:])
                return


def value_strings(value: Any) -> list[str]:
    """How a field value is matched: scalars as text (JSON spelling for booleans and null),
    lists element by element, mappings as canonical JSON."""
    if isinstance(value, list):
        return [s for item in value for s in value_strings(item)] if value else []
    if isinstance(value, dict):
        return [canonical_json(value)]
    if isinstance(value, str):
        return [value]
    return [canonical_json(value)]


def _attr(ctx: Context, args: list[Any]) -> set[str]:
    name, pattern, targets = args
    graph: Graph = ctx.graph
    if name == "label":
        return _filter(ctx, [pattern, targets])
    path = name.split(".")
    found = set()
    for n in targets:
        for value in field_values(graph.nodes[n].manifest.data, path):
            if any(pattern.search(s) for s in value_strings(value)):
                found.add(n)
                break
    return found


BUILTINS = (
    Function("deps", (Arg.EXPR,), _deps, (Arg.INT,),
             "the targets plus everything they reference, transitively (or up to depth hops)"),
    Function("rdeps", (Arg.EXPR, Arg.EXPR), _rdeps, (Arg.INT,),
             "the targets plus every target of the universe that reaches them through the universe"),
    Function("allpaths", (Arg.EXPR, Arg.EXPR), _allpaths, (),
             "every target on some path from the first set to the second"),
    Function("somepath", (Arg.EXPR, Arg.EXPR), _somepath, (),
             "the targets of one shortest path from the first set to the second"),
    Function("kind", (Arg.REGEX, Arg.EXPR), _kind, (),
             "the targets whose kind (Transform, DataSet, ...) the regex matches"),
    Function("filter", (Arg.REGEX, Arg.EXPR), _filter, (),
             "the targets one of whose labels the regex matches"),
    Function("attr", (Arg.FIELD, Arg.REGEX, Arg.EXPR), _attr, (),
             "the targets whose manifest field (a dotted path, or `label`) the regex matches"),
)

for _function in BUILTINS:
    register(_function, replace=True)

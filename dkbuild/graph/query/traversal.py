"""Graph walks behind deps/rdeps/allpaths/somepath: breadth-first, O(V + E) on adjacency lists.

Edges point from a target to what it references, so "forward" (out_edges) walks towards
dependencies and "backward" (in_edges) towards dependents.
"""

from __future__ import annotations

from collections import deque
from typing import Collection, Iterable

from dkbuild.graph.model import Graph


def reachable(graph: Graph, start: Iterable[str], *, forward: bool = True, depth: int | None = None,
              within: Collection[str] | None = None) -> set[str]:
    """`start` plus every node reachable from it in at most `depth` hops (unbounded when None).

    With `within`, the walk only steps onto nodes of `within` (the start nodes are always kept).
    """
    adjacency = graph.out_edges if forward else graph.in_edges
    seen = set(start)
    queue = deque((node, 0) for node in seen)
    while queue:
        node, hops = queue.popleft()
        if depth is not None and hops >= depth:
            continue
        for edge in adjacency.get(node, ()):
            nxt = edge.dst if forward else edge.src
            if nxt in seen or (within is not None and nxt not in within):
                continue
            seen.add(nxt)
            queue.append((nxt, hops + 1))
    return seen


def all_paths(graph: Graph, sources: Collection[str], targets: Collection[str]) -> set[str]:
    """Every node on some path from a source to a target (a source that is a target counts)."""
    forward = reachable(graph, sources)
    return reachable(graph, [t for t in targets if t in forward], forward=False, within=forward)


def some_path(graph: Graph, sources: Collection[str], targets: Collection[str]) -> list[str]:
    """One shortest path from a source to a target, as a node list; [] when there is none.

    Deterministic: sources and neighbours are visited in sorted order, a node keeps the first
    parent that reached it, and among the targets reached at the shortest distance the smallest
    id is chosen.
    """
    goal = set(targets)
    direct = sorted(s for s in sources if s in goal)
    if direct:
        return [direct[0]]
    parent: dict[str, str | None] = {s: None for s in sources}
    frontier = sorted(parent)
    while frontier:
        level: list[str] = []
        for node in frontier:
            for nxt in sorted({e.dst for e in graph.out_edges.get(node, ())}):
                if nxt not in parent:
                    parent[nxt] = node
                    level.append(nxt)
        hits = [n for n in level if n in goal]
        if hits:
            path = [min(hits)]
            while (up := parent[path[-1]]) is not None:
                path.append(up)
            return path[::-1]
        frontier = level
    return []

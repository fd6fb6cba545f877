"""Static data-flow lineage over the graph, at dataset level and at column level. Pure functions.

Dataset level: downstream of a dataset are the transforms that READ it, then the datasets those
transforms WRITE, and so on; upstream is the reverse (the transforms that WRITE a dataset, then the
datasets they READ). `depth` counts dataset hops: depth 1 downstream of `raw-events` reaches the
transforms reading it and the datasets they write, and stops there.

Column level: the edges are `graph.columns` (a DataSet's `schema[].from: <dataset>.<column>`).
Downstream of a column are the columns derived from it, transitively; upstream is what it derives
from. The transform that *carries* a column edge is the producer of the downstream dataset: a
transform that WRITES the downstream dataset and READS the upstream one (None when there is none).

Every reached node or column keeps the path that first reached it (breadth first, so a shortest
path, ties broken by sorted ids), and each is reached once, however many paths lead to it (a
diamond yields one node, with every edge kept in `edges`). Unresolvable `from:` references
(`graph.dangling` of kind "column") that touch the walk are reported, not dropped.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from dkbuild.graph.model import EdgeKind, Graph
from dkbuild.lineage.naming import physical_twins

UP, DOWN = "up", "down"


# -- dataset level ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reached:
    node: str                 # node id (a DataSet or a Transform)
    kind: str
    depth: int                # dataset hops from the root (a transform: the depth of the datasets it leads to)
    path: tuple[str, ...]     # node ids from the root to this node, alternating dataset / transform


@dataclass
class DatasetLineage:
    """The reached subgraph in one direction. `edges` are (from, to) in *walk* order: downstream
    dataset→transform→dataset, upstream dataset→transform→dataset going against the data."""
    roots: tuple[str, ...]
    direction: str
    depth: int | None
    reached: dict[str, Reached] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def children(self, node: str) -> list[str]:
        return [b for a, b in self.edges if a == node]

    @property
    def nodes(self) -> list[str]:
        return list(self.reached)

    def data_edges(self) -> list[tuple[str, str]]:
        """The edges in data-flow direction (upstream edges reversed)."""
        return self.edges if self.direction == DOWN else [(b, a) for a, b in self.edges]


def _transforms(graph: Graph, dataset: str, kind: EdgeKind) -> list[str]:
    return sorted({e.src for e in graph.in_edges.get(dataset, ()) if e.kind is kind
                   and graph.nodes[e.src].kind == "Transform"})


def _datasets(graph: Graph, transform: str, kind: EdgeKind) -> list[str]:
    return sorted({e.dst for e in graph.out_edges.get(transform, ()) if e.kind is kind
                   and graph.nodes[e.dst].kind == "DataSet"})


def readers(graph: Graph, dataset: str) -> list[str]:
    return _transforms(graph, dataset, EdgeKind.READS)


def writers(graph: Graph, dataset: str) -> list[str]:
    return _transforms(graph, dataset, EdgeKind.WRITES)


def reads(graph: Graph, transform: str) -> list[str]:
    return _datasets(graph, transform, EdgeKind.READS)


def writes(graph: Graph, transform: str) -> list[str]:
    return _datasets(graph, transform, EdgeKind.WRITES)


def dataset_lineage(graph: Graph, roots: Iterable[str], direction: str = DOWN,
                    depth: int | None = None) -> DatasetLineage:
    """Walk from `roots` (DataSet or Transform ids) `direction` (UP or DOWN), at most `depth` dataset hops.

    A Transform root starts the walk at its outputs (downstream) or inputs (upstream) at depth 1.
    A transform is reached at the depth of the dataset it leads to, and only when that depth is
    within the limit, so no walk ends on a dangling transform.
    """
    if direction not in (UP, DOWN):
        raise ValueError(f"direction must be {UP!r} or {DOWN!r}, not {direction!r}")
    root_ids = tuple(sorted(set(roots)))
    result = DatasetLineage(root_ids, direction, depth)
    step_t = readers if direction == DOWN else writers      # dataset -> transforms
    step_d = writes if direction == DOWN else reads          # transform -> datasets
    seen_edges: set[tuple[str, str]] = set()

    def add_edge(a: str, b: str) -> None:
        if (a, b) not in seen_edges:
            seen_edges.add((a, b))
            result.edges.append((a, b))

    twins = {d: ids for ids in physical_twins(graph).values() for d in ids}
    if twins:
        # A package's own copy of a dataset is the same data as the copies elsewhere: the walk
        # crosses from one to the transforms of the others.
        plain_step = step_t

        def step_t(graph: Graph, dataset: str) -> list[str]:  # noqa: F811 - the twin-aware step
            return sorted({t for d in twins.get(dataset, (dataset,)) for t in plain_step(graph, d)})

    queue: deque[str] = deque()
    for root in root_ids:
        result.reached[root] = Reached(root, graph.nodes[root].kind, 0, (root,))
        queue.append(root)
    while queue:
        current = queue.popleft()
        here = result.reached[current]
        if graph.nodes[current].kind == "Transform":
            # Only roots are expanded as transforms; others are expanded from their dataset.
            transforms = [current]
        else:
            if depth is not None and here.depth >= depth:
                continue
            transforms = step_t(graph, current)
        for t in transforms:
            if t != current:
                if t not in result.reached:
                    result.reached[t] = Reached(t, "Transform", here.depth + 1, here.path + (t,))
                add_edge(current, t)
            t_path = result.reached[t].path
            for d in step_d(graph, t):
                if d not in result.reached:
                    result.reached[d] = Reached(d, graph.nodes[d].kind, here.depth + 1, t_path + (d,))
                    queue.append(d)
                add_edge(t, d)
    return result


# -- column level ----------------------------------------------------------------------------------

class ColumnHop(NamedTuple):
    dataset: str              # dataset node id
    column: str
    via: str | None           # transform carrying the edge into this hop (None for the root, or unknown)
    masking: str | None = None  # masking applied on the edge into this hop


@dataclass(frozen=True)
class ColumnReached:
    dataset: str
    column: str
    depth: int
    path: tuple[ColumnHop, ...]     # from the root column (first hop, via None) to this column

    @property
    def via(self) -> str | None:
        return self.path[-1].via if len(self.path) > 1 else None

    @property
    def masking(self) -> str | None:
        """The masking on the edge that reached this column (the last hop)."""
        return self.path[-1].masking

    @property
    def masked(self) -> bool:
        """Whether some hop of the path applies masking."""
        return any(h.masking for h in self.path[1:])


@dataclass(frozen=True)
class Unresolved:
    """A `schema[].from:` that names no known dataset column."""
    dataset: str
    column: str | None        # the column that declares the `from:` (None if the field is odd)
    ref: str                  # what it says, e.g. `customers.emial`
    field: str


@dataclass
class ColumnLineage:
    roots: tuple[tuple[str, str], ...]
    direction: str
    depth: int | None
    stop_at_masking: bool
    reached: dict[tuple[str, str], ColumnReached] = field(default_factory=dict)
    edges: list[tuple[tuple[str, str], tuple[str, str], str | None, str | None]] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)

    def children(self, key: tuple[str, str]) -> list[tuple[str, str]]:
        return [b for a, b, _, _ in self.edges if a == key]

    def datasets(self) -> list[str]:
        return sorted({d for d, _ in self.reached})


def carrier(graph: Graph, upstream: str, downstream: str) -> str | None:
    """The transform that carries data from `upstream` into `downstream`: it writes `downstream`
    and reads `upstream`. The first by id when several do; None when none does."""
    candidates = [t for t in writers(graph, downstream) if upstream in reads(graph, t)]
    return candidates[0] if candidates else None


_SCHEMA_INDEX = re.compile(r"schema\[(\d+)\]")


def unresolved_columns(graph: Graph) -> list[Unresolved]:
    """Every unresolvable `from:` in the graph, as (dataset, column, ref)."""
    found = []
    for d in graph.dangling:
        if d.kind != "column":
            continue
        column = None
        m = _SCHEMA_INDEX.search(d.field)
        node = graph.nodes.get(d.node)
        if m and node is not None:
            schema = node.manifest.model.spec.schema_
            index = int(m.group(1))
            column = schema[index].name if index < len(schema) else None
        found.append(Unresolved(d.node, column, d.name, d.field))
    return found


def column_lineage(graph: Graph, roots: Iterable[tuple[str, str]], direction: str = DOWN,
                   depth: int | None = None, *, stop_at_masking: bool = False) -> ColumnLineage:
    """Walk column edges from `roots` ((dataset id, column) pairs).

    `stop_at_masking` (downstream only): a column reached through a masking edge is reported but
    not expanded further; this is how PII propagation stops while plain lineage goes on.
    Unresolved `from:` are reported when they are declared by a reached column (upstream: the
    lineage is cut there) or name a reached dataset (downstream: a typo'd reference to it).
    """
    return ColumnWalker(graph, direction).walk(roots, depth, stop_at_masking=stop_at_masking)


class ColumnWalker:
    """Column lineage walks over one graph in one direction. The edge index, the carriers and the
    unresolved references are worked out once for all the walks (the PII analysis walks from
    every PII column; rebuilding them per walk made it columns x edges)."""

    def __init__(self, graph: Graph, direction: str = DOWN):
        if direction not in (UP, DOWN):
            raise ValueError(f"direction must be {UP!r} or {DOWN!r}, not {direction!r}")
        self.graph = graph
        self.direction = direction
        self._next: dict[tuple[str, str], list] = {}
        for e in graph.columns:
            a, b = ((e.src, e.src_column), (e.dst, e.dst_column))
            if direction == DOWN:
                self._next.setdefault(a, []).append((b, e))
            else:
                self._next.setdefault(b, []).append((a, e))
        for targets in self._next.values():
            targets.sort(key=lambda item: item[0])
        self._carriers: dict[tuple[str, str], str | None] = {}
        self._unresolved: list[Unresolved] | None = None

    def carrier(self, upstream: str, downstream: str) -> str | None:
        key = (upstream, downstream)
        if key not in self._carriers:
            self._carriers[key] = carrier(self.graph, upstream, downstream)
        return self._carriers[key]

    def unresolved(self) -> list[Unresolved]:
        if self._unresolved is None:
            self._unresolved = unresolved_columns(self.graph)
        return self._unresolved

    def walk(self, roots: Iterable[tuple[str, str]], depth: int | None = None, *,
             stop_at_masking: bool = False) -> ColumnLineage:
        """See `column_lineage`."""
        graph, direction = self.graph, self.direction
        root_keys = tuple(sorted(set(roots)))
        result = ColumnLineage(root_keys, direction, depth, stop_at_masking)
        queue: deque[tuple[str, str]] = deque()
        for root in root_keys:
            result.reached[root] = ColumnReached(root[0], root[1], 0, (ColumnHop(root[0], root[1], None),))
            queue.append(root)
        seen_edges = set()
        while queue:
            key = queue.popleft()
            here = result.reached[key]
            if depth is not None and here.depth >= depth:
                continue
            if stop_at_masking and here.depth > 0 and here.masking:
                continue
            for nxt, e in self._next.get(key, ()):
                via = self.carrier(e.src, e.dst)
                edge = (key, nxt, via, e.masking)
                if edge not in seen_edges:
                    seen_edges.add(edge)
                    result.edges.append(edge)
                if nxt not in result.reached:
                    result.reached[nxt] = ColumnReached(nxt[0], nxt[1], here.depth + 1,
                                                        here.path + (ColumnHop(nxt[0], nxt[1], via, e.masking),))
                    queue.append(nxt)
        reached_datasets = {graph.nodes[d].name for d, _ in result.reached if d in graph.nodes}
        for u in self.unresolved():
            declared_here = (u.dataset, u.column) in result.reached
            names_reached = u.ref.partition(".")[0] in reached_datasets
            if (direction == UP and declared_here) or (direction == DOWN and names_reached):
                result.unresolved.append(u)
        return result


def dataset_unresolved(graph: Graph, datasets: Iterable[str]) -> list[Unresolved]:
    """Unresolved `from:` declared in, or naming, any of `datasets`."""
    ids = set(datasets)
    names = {graph.nodes[d].name for d in ids if d in graph.nodes}
    return [u for u in unresolved_columns(graph)
            if u.dataset in ids or u.ref.partition(".")[0] in names]

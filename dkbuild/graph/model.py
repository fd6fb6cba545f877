"""The dependency graph: one node per target identity, typed reference edges, column edges.

Edges point from a target to what it references (its dependencies): a Transform to the datasets it
reads and writes, a DataSet to its Store, a Store to its Connector, a DataSetGroup to its Store and
members. Column lineage (`schema[].from`) is data flow, kept apart in `columns`.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from dkbuild.manifests.manifest import Manifest


class EdgeKind(str, Enum):
    READS = "reads"
    WRITES = "writes"
    STORE = "store"
    CONNECTOR = "connector"
    MEMBER = "member"


EXTERNAL = "@external"


@dataclass(frozen=True, eq=False)
class Node:
    id: str                              # the primary label (`@external//<kind>:<name>` for externals)
    kind: str
    name: str
    manifest: Manifest                   # the canonical definition
    definitions: tuple[Manifest, ...]    # every copy of this target (identical, or a lint error)
    # Where the target is visible: "" for a shared definition (seen from every package), the owning
    # package for a package-local copy that differs from the shared one, EXTERNAL for a reference
    # that nothing in the workspace defines.
    scope: str = ""

    @property
    def package(self) -> str:
        return self.manifest.package

    @property
    def external(self) -> bool:
        return self.scope == EXTERNAL

    @property
    def namespace(self) -> str:
        return self.manifest.namespace

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """What matches a target across two revisions (never its label, so a move is a move):
        kind, namespace, name and scope."""
        return (self.kind, self.namespace, self.name, self.scope)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted({d.label for d in self.definitions}))


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    kind: EdgeKind
    field: str          # where the reference is written, e.g. spec.inputs[0].dataset


@dataclass(frozen=True)
class ColumnEdge:
    src: str            # upstream dataset node id
    src_column: str
    dst: str            # downstream dataset node id
    dst_column: str
    masking: str | None


@dataclass(frozen=True)
class Dangling:
    """A reference that resolves to nothing; lint reports these."""
    node: str
    field: str
    kind: str           # the kind that was looked for ("DataSet", "Store", "Connector", "column")
    name: str


@dataclass(frozen=True)
class Conflict:
    """Shared definitions of one target identity whose content differs: no reference to the name
    can be resolved to one of them."""
    kind: str
    name: str
    definitions: tuple[Manifest, ...]


@dataclass(frozen=True)
class ExternalRef:
    """A reference to a target the workspace does not define; it leads to an external node."""
    node: str           # the referring node
    field: str
    kind: str
    name: str


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    out_edges: dict[str, list[Edge]] = field(default_factory=dict)
    in_edges: dict[str, list[Edge]] = field(default_factory=dict)
    columns: list[ColumnEdge] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)          # any definition label -> node id
    package_nodes: dict[str, set[str]] = field(default_factory=dict)
    package_default: dict[str, str] = field(default_factory=dict)  # package -> its dk.yaml target
    ambiguous_default: dict[str, tuple[str, ...]] = field(default_factory=dict)
    identity: dict[tuple[str, str, str, str], str] = field(default_factory=dict)  # Node.identity -> id
    by_name: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (kind, name) -> ids, shared first
    dangling: list[Dangling] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    externals: list[ExternalRef] = field(default_factory=list)

    # Pickled (in snapshots) with the column edges as one opaque value, unpickled on first use:
    # they are the most numerous objects of a graph, and only lineage and policies read them.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if "columns" in state:
            state["_columns"] = pickle.dumps(state.pop("columns"), protocol=pickle.HIGHEST_PROTOCOL)
        return state

    def __getattr__(self, name: str) -> Any:
        packed = self.__dict__.get("_columns")
        if name != "columns" or packed is None:
            raise AttributeError(name)
        columns = pickle.loads(packed)
        self.__dict__["columns"] = columns
        del self.__dict__["_columns"]
        return columns

    def add_edge(self, edge: Edge) -> None:
        self.out_edges[edge.src].append(edge)
        self.in_edges[edge.dst].append(edge)

    def dependencies(self, node: str) -> list[str]:
        return [e.dst for e in self.out_edges.get(node, ())]

    def dependents(self, node: str) -> list[str]:
        return [e.src for e in self.in_edges.get(node, ())]

    def lookup(self, kind: str, name: str) -> Node | None:
        """The target a name means workspace-wide: its shared definition, else the first copy
        (package-local copies that differ are found through references, not by name)."""
        ids = self.by_name.get((kind, name))
        return self.nodes[ids[0]] if ids else None

    @property
    def edges(self) -> list[Edge]:
        return [e for node in sorted(self.out_edges) for e in self.out_edges[node]]

"""What a rule sees of one Transform it builds: its node, key, files and resolved references."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from dkbuild.diagnostics import DkbError, error
from dkbuild.fsutil import read_regular
from dkbuild.graph.model import EdgeKind, Graph, Node
from dkbuild.sources import git_blob_id, is_executable
from dkbuild.workspace import Workspace


class SourceChanged(DkbError):
    """A file changed between computing keys and reading it: building would mislabel the artifact.
    A located error (E531, exit 2 where it ends a command) that says to run the command again."""

    def __init__(self, path: str, why: str = "changed while dkb was reading it"):
        super().__init__(error("E531", path, f"{path} {why}; nothing was built from it",
                               hint="run the command again once nothing is writing to the file"))


@dataclass(frozen=True)
class ColumnView:
    name: str
    type: str
    pii: bool
    masking: str | None


@dataclass(frozen=True)
class DatasetView:
    """A DataSet a Transform reads or writes, as a rule sees it. External datasets (defined
    outside the workspace) have only a label, a name and a role."""
    label: str
    name: str
    role: str                                   # "input" or "output"
    external: bool
    store: str = ""
    table: str | None = None
    prefix: str | None = None
    topic: str | None = None
    format: str | None = None
    classification: str | None = None
    columns: tuple[ColumnView, ...] = ()

    @property
    def pii_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.pii)


@dataclass(frozen=True)
class BuildTarget:
    node: Node
    key: str
    workspace: Workspace
    files: dict[str, str]          # package-relative path -> content id (what the key covers)
    graph: Graph = field(repr=False)

    @cached_property
    def references(self) -> tuple[Node, ...]:
        """Every DataSet, Store and Connector it reaches (worked out only when a rule or the
        history asks: a no-op build never does)."""
        return references_of(self.graph, self.node.id)

    @property
    def label(self) -> str:
        return self.node.id

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def namespace(self) -> str:
        return self.node.namespace

    @property
    def runtime(self) -> str:
        return self.node.manifest.runtime or ""

    @property
    def version(self) -> str | None:
        return self.node.manifest.model.metadata.version

    @property
    def spec(self) -> Any:
        """The Transform's typed spec (dkbuild.manifests.models.TransformSpec)."""
        return self.node.manifest.model.spec

    @cached_property
    def datasets(self) -> tuple[DatasetView, ...]:
        """The DataSets it reads (role "input") and writes ("output"), in manifest order."""
        views = []
        for edge in self.graph.out_edges.get(self.node.id, ()):
            if edge.kind not in (EdgeKind.READS, EdgeKind.WRITES):
                continue
            views.append(_dataset_view(self.graph.nodes[edge.dst], "input" if edge.kind == EdgeKind.READS else "output"))
        return tuple(views)

    @property
    def inputs(self) -> tuple[DatasetView, ...]:
        return tuple(d for d in self.datasets if d.role == "input")

    @property
    def outputs(self) -> tuple[DatasetView, ...]:
        return tuple(d for d in self.datasets if d.role == "output")

    @property
    def package_dir(self) -> Path:
        return self.workspace.root / self.node.package

    def read(self, rel: str) -> bytes:
        path = f"{self.node.package}/{rel}" if self.node.package else rel
        try:
            data = read_regular(self.package_dir / rel)
        except OSError as exc:      # removed, made unreadable or swapped for a FIFO since indexed
            raise SourceChanged(path, f"cannot be read any more ({exc.strerror or exc})") from None
        expected = self.files[rel]
        algorithm, _, value = expected.removesuffix("+x").partition(":")
        actual = git_blob_id(data) if algorithm == "git" else hashlib.sha256(data).hexdigest()
        if actual != value:
            raise SourceChanged(path)
        return data

    def executable(self, rel: str) -> bool:
        return is_executable(self.files[rel])


def _dataset_view(node: Node, role: str) -> DatasetView:
    if node.external or node.kind != "DataSet":
        return DatasetView(node.id, node.name, role, external=node.external)
    spec = node.manifest.model.spec
    return DatasetView(node.id, node.name, role, False, spec.store, spec.table, spec.prefix, spec.topic, spec.format,
                       spec.classification,
                       tuple(ColumnView(c.name, c.type, c.pii, c.masking) for c in spec.schema_))


def references_of(graph: Graph, node_id: str) -> tuple[Node, ...]:
    """The closure of what a Transform references, without other Transforms, and without external
    targets (the workspace has no manifest of them to pack)."""
    seen: set[str] = set()
    stack = list(graph.dependencies(node_id))
    while stack:
        current = stack.pop()
        if current in seen or graph.nodes[current].kind == "Transform" or graph.nodes[current].external:
            continue
        seen.add(current)
        stack.extend(graph.dependencies(current))
    return tuple(graph.nodes[n] for n in sorted(seen))

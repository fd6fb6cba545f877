"""What a rule sees of one Transform it builds: its node, key, files and resolved references."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dkbuild.graph.model import Graph, Node
from dkbuild.sources import git_blob_id, is_executable
from dkbuild.workspace import Workspace


class SourceChanged(Exception):
    """A file changed between computing keys and reading it: building would mislabel the artifact."""


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
    def package_dir(self) -> Path:
        return self.workspace.root / self.node.package

    def read(self, rel: str) -> bytes:
        data = (self.package_dir / rel).read_bytes()
        expected = self.files[rel]
        algorithm, _, value = expected.removesuffix("+x").partition(":")
        actual = git_blob_id(data) if algorithm == "git" else hashlib.sha256(data).hexdigest()
        if actual != value:
            raise SourceChanged(f"{self.node.package}/{rel} changed while dkb was building; run the build again")
        return data

    def executable(self, rel: str) -> bool:
        return is_executable(self.files[rel])


def references_of(graph: Graph, node_id: str) -> tuple[Node, ...]:
    """The closure of what a Transform references, without other Transforms."""
    seen: set[str] = set()
    stack = list(graph.dependencies(node_id))
    while stack:
        current = stack.pop()
        if current in seen or graph.nodes[current].kind == "Transform":
            continue
        seen.add(current)
        stack.extend(graph.dependencies(current))
    return tuple(graph.nodes[n] for n in sorted(seen))

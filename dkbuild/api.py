"""The library entry points the CLI (and tests) call: load a workspace into a graph, lint, query."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from dkbuild.graph.build import build_graph
from dkbuild.graph.model import Graph
from dkbuild.manifests.loader import LoadResult, load_manifests
from dkbuild.sources import FileIndex, index_files
from dkbuild.workspace import Workspace, load_workspace


@dataclass(frozen=True)
class Loaded:
    workspace: Workspace
    files: FileIndex
    result: LoadResult
    graph: Graph
    current_package: str     # the cwd relative to the root, for relative labels

    @property
    def diagnostics(self):  # type: ignore[no-untyped-def]
        return self.result.diagnostics


def load(start: Path | str = ".") -> Loaded:
    start = Path(start).resolve()
    workspace = load_workspace(start)
    files = index_files(workspace.root)
    result = load_manifests(workspace, files)
    graph = build_graph(result.manifests)
    rel = posixpath.normpath(start.relative_to(workspace.root).as_posix()) if start != workspace.root else ""
    return Loaded(workspace, files, result, graph, "" if rel == "." else rel)


def compute_keys(loaded: Loaded):  # type: ignore[no-untyped-def]
    """Content keys of every target (needs the rule registry for rule identities)."""
    from dkbuild.engine.rules import load_rules
    from dkbuild.graph.keys import compute_keys as _compute

    rules = load_rules(loaded.workspace)
    return _compute(loaded.graph, loaded.files, loaded.workspace.config, rules.for_node(loaded.workspace))

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


def lint_workspace(loaded: Loaded, patterns: list[str], strict: bool = False):  # type: ignore[no-untyped-def]
    """Lint with the build rules' runtime checks included."""
    from dkbuild.engine.rules import load_rules
    from dkbuild.engine.target import BuildTarget, references_of
    from dkbuild.governance.lint import lint

    rules = load_rules(loaded.workspace)
    keys = compute_keys(loaded)
    defaults = set(loaded.graph.package_default.values())

    def runtime_checks(node):  # type: ignore[no-untyped-def]
        rule = rules.rule_of(node)
        if rule is None:
            return []
        files = keys.components[node.id].files if node.id in defaults else {}
        target = BuildTarget(node, keys.keys[node.id], loaded.workspace, files, references_of(loaded.graph, node.id))
        return rule.check(target)

    return lint(loaded.result, loaded.graph, loaded.workspace.config, patterns, loaded.current_package,
                strict, runtime_checks)

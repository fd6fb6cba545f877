"""`dkb lint`: load diagnostics + per-manifest rules + cross-package checks + policies, scoped to
the selected targets, each finding given its final severity by governance.severity. Pure: it reads
the loaded workspace and returns a report."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Sequence
from typing import Callable

from dkbuild.config_model import WorkspaceConfig
from dkbuild.diagnostics import Diagnostic, sort_key
from dkbuild.governance.failures import select_with_unloadable, unloadable_packages
from dkbuild.governance.graph_rules import check_graph
from dkbuild.governance.lintreport import LintReport
from dkbuild.governance.manifest_rules import check_manifest
from dkbuild.governance.policy import check_policies
from dkbuild.governance.severity import SeverityPolicy
from dkbuild.graph.labels import Pattern, Scope, parse_pattern
from dkbuild.graph.model import Graph, Node
from dkbuild.manifests.loader import LoadResult
from dkbuild.manifests.models import RUNTIMES

TargetCheck = Callable[[Node], list[Diagnostic]]


def lint(result: LoadResult, graph: Graph, config: WorkspaceConfig, patterns: list[str],
         current_package: str = "", strict: bool = False, target_check: TargetCheck | None = None,
         *, skip_pii: bool = False, runtimes: Sequence[str] = RUNTIMES) -> LintReport:
    """`target_check` adds checks that need more than manifests (the build rules' runtime checks);
    the caller injects it, and `runtimes` (what the loaded rules build), so governance never
    imports the engine. `skip_pii` leaves out the PII and classification policies (dk lint
    --skip-pii)."""
    patterns = patterns or ["//..."]
    # A pattern may name a package whose dk.yaml could not be loaded: lint reports its errors.
    targets = select_with_unloadable(graph, patterns, current_package, unloadable_packages(result, graph))[0]
    parsed = [parse_pattern(p, current_package) for p in patterns]
    node_files = {d.file for n in graph.nodes.values() for d in n.definitions}
    files = {d.file for t in targets for d in graph.nodes[t].definitions}
    in_scope = files | {d.file for d in result.diagnostics if d.file not in node_files and _covered(d.file, parsed)}
    found = list(result.diagnostics)
    for manifest in result.manifests:
        if manifest.file in in_scope or (not manifest.name and _covered(manifest.file, parsed)):
            in_scope.add(manifest.file)
            found += check_manifest(manifest, runtimes)
    if target_check is not None:
        # A target brings into scope the files below its package that have findings so far; an index
        # by directory answers that per target without rescanning every finding.
        below: dict[str, set[str]] = defaultdict(set)
        _index_dirs(below, found)
        for target in sorted(targets):
            checked = target_check(graph.nodes[target])
            found += checked
            _index_dirs(below, checked)
            in_scope |= below.get(graph.nodes[target].package, set())
    found += check_graph(graph)
    if not skip_pii:
        found += check_policies(graph, config.policy)
    ignored = set(config.policy.ignore)
    severity = SeverityPolicy.of(config, result.manifests, strict)
    kept = sorted({severity.apply(d) for d in found if d.file in in_scope and d.code not in ignored}, key=sort_key)
    return LintReport(kept, sorted(targets), sorted(in_scope))


def _index_dirs(below: dict[str, set[str]], found: list[Diagnostic]) -> None:
    """File of each finding under every directory above it ("a/b/c.py" under "a/b" and "a")."""
    for d in found:
        directory = posixpath.dirname(d.file)
        while directory and d.file not in below[directory]:
            below[directory].add(d.file)
            directory = posixpath.dirname(directory)


def _covered(path: str, patterns: list[Pattern]) -> bool:
    """Is a file (one that defines no target, e.g. it failed to load) inside the patterns' scope?"""
    inside = False
    for p in patterns:
        if p.scope is Scope.RECURSIVE:
            hit = not p.package or path.startswith(p.package + "/")
        else:
            hit = path.startswith(p.package + "/") if p.package else "/" not in path
        if hit:
            inside = not p.negative
    return inside

"""`affected`: which targets differ between the working tree and a git revision (DESIGN §4).

The comparison is between the working tree, uncommitted and untracked files included (exactly what
`sources.index_files` sees), and the tree at `git merge-base REF HEAD`, like Turborepo's and Nx's
`--affected`: on a branch, changes that landed on REF after the branch was cut are not this
branch's changes, so they never count. Keys at the merge base are computed straight from git
objects, with no checkout, and equal the keys a fresh checkout of that commit would give.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from dkbuild.api import Loaded
from dkbuild.api import compute_keys as head_keys_of
from dkbuild.gitrev import Repository, RevisionTree, index_at_revision, merge_base
from dkbuild.graph.affected import AffectedResult, affected
from dkbuild.graph.keys import Keys, compute_keys
from dkbuild.graph.labels import Pattern, PatternError, parse_pattern
from dkbuild.graph.model import Graph
from dkbuild.graph.shard import Shard
from dkbuild.graph.select import match, no_match
from dkbuild.manifests.result import LoadResult
from dkbuild.workspace import WORKSPACE_FILE, Workspace, workspace_of

if TYPE_CHECKING:
    from dkbuild.engine.snapshot import Snapshot


@dataclass(frozen=True)
class RevisionLoad:
    """The workspace as it was at one commit: files, manifests, graph and keys."""
    commit: str
    workspace: Workspace
    files: RevisionTree
    result: LoadResult
    graph: Graph
    keys: Keys


def affected_targets(loaded: Loaded, since: str, dependents: str = "none",
                     patterns: list[str] | None = None, head_keys: Keys | None = None,
                     shard: Shard | None = None) -> AffectedResult:
    """Targets whose key differs between `git merge-base SINCE HEAD` and the working tree.

    `patterns` (default //...) scope the answer: affected targets against the working tree's graph,
    deleted ones against the merge base's. `head_keys` saves recomputing the working tree's keys when
    the caller has them. Git problems raise DkbError (exit 2); the answer is never "everything".
    With `shard`, only that shard's part of the answer, split as `build --shard` splits it.
    """
    point = merge_base(loaded.workspace.root, since)
    head = head_keys if head_keys is not None else head_keys_of(loaded)
    base = load_at_revision(loaded.workspace.root, point.merge_base, reuse=loaded, repository=point.repository)
    result = affected(base.keys, head, base.graph, loaded.graph, dependents)
    result = replace(result, since=since, merge_base=point.merge_base)
    if patterns:
        labels, deleted = select_both(loaded.graph, base.graph, patterns, loaded.current_package)
        result = result.scoped(labels, deleted)
    if shard is not None:
        from dkbuild.engine.rules import load_rules
        from dkbuild.engine.shard import shard_selection

        mine = shard_selection(shard, loaded.workspace, loaded.graph, head, load_rules(loaded.workspace),
                               result.targets)
        result = replace(result.scoped(mine, set(result.deleted)), shard=str(shard))
    return result


def load_at_revision(root: Path, commit: str, *, reuse: Loaded | None = None,
                     repository: Repository | None = None) -> RevisionLoad:
    """Load the workspace rooted at `root` as of `commit` from git objects.

    A snapshot of that exact content (engine/snapshot.py) answers without reading a manifest.
    Otherwise `reuse` (the working tree's load) lends its parsed manifests for files whose content
    and place are the same at the commit, so only changed manifests are read from git and parsed.
    """
    from dkbuild.engine.snapshot import SnapshotStore, load_state

    with index_at_revision(root, commit, repository=repository) as tree:
        workspace = workspace_at(tree)
        known = None
        if reuse is not None and (reuse.workspace.settings.get("workspace", "max_manifest_bytes")
                                  == workspace.settings.get("workspace", "max_manifest_bytes")):
            known = reuse.snapshot
        store = SnapshotStore.of(reuse.workspace) if reuse is not None else None
        snapshot = load_state(store, workspace, tree, tree, known)
        keys = _keys(workspace, tree, snapshot)
    return RevisionLoad(tree.commit, workspace, tree, snapshot.result, snapshot.graph, keys)


def workspace_at(tree: RevisionTree) -> Workspace:
    """The workspace as of the revision; one that had no workspace.toml yet gets the defaults."""
    raw = tree.read(WORKSPACE_FILE) if WORKSPACE_FILE in tree.digests else b""
    return workspace_of(tree.root, raw, f"{WORKSPACE_FILE} (at {tree.commit[:12]})")


def rule_files_at(tree: RevisionTree, workspace: Workspace) -> list[tuple[str, bytes]]:
    """The workspace rule modules (`[rules] paths`, `*.py`) at the revision, in load order."""
    wanted: list[str] = []
    for directory in workspace.settings.get("rules", "paths"):
        folder = posixpath.normpath(directory)
        folder = "" if folder == "." else folder
        if folder.startswith(("../", "/")) or folder == "..":
            continue            # outside the workspace: not a workspace rule directory
        wanted += sorted(p for p in tree.digests if p.endswith(".py") and posixpath.dirname(p) == folder)
    tree.prefetch(wanted)
    return [(path, tree.read(path)) for path in wanted]


def _keys(workspace: Workspace, tree: RevisionTree, snapshot: Snapshot) -> Keys:
    from dkbuild.engine.rules import load_rules

    rules = load_rules(workspace, rule_files_at(tree, workspace))
    identity = rules.fingerprint(workspace)
    keys = snapshot.keys(identity)
    if keys is None:
        base = snapshot.derived_from
        keys = compute_keys(snapshot.graph, tree, workspace, rules.for_node(workspace),
                            *((base.keys(identity), base.graph) if base is not None else ()))
        snapshot.save_keys(identity, keys)
    return keys


def select_both(head: Graph, base: Graph, patterns: list[str], current_package: str = "") -> tuple[set[str], set[str]]:
    """Apply patterns (in order, `-` subtracts) to both graphs. A pattern is an error only when it
    matches nothing in either: a deleted package is still a fine thing to ask about."""
    head_ids: set[str] = set()
    base_ids: set[str] = set()
    for pattern in (parse_pattern(p, current_package) for p in patterns):
        in_head = match(head, pattern)
        in_base = _lenient_match(base, pattern)
        if not in_head and not in_base:
            raise no_match(head, pattern)
        if pattern.negative:
            head_ids -= in_head
            base_ids -= in_base
        else:
            head_ids |= in_head
            base_ids |= in_base
    return head_ids, base_ids


def _lenient_match(graph: Graph, pattern: Pattern) -> set[str]:
    try:
        return match(graph, pattern)
    except PatternError:
        return set()


__all__ = ["RevisionLoad", "affected_targets", "load_at_revision", "rule_files_at", "select_both", "workspace_at"]

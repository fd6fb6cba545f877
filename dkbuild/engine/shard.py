"""How much work each selected target is, for `--shard` (dkbuild.graph.shard splits by it).

Estimated from the commit alone, so that every shard job agrees: an image build costs far more
than a package artifact (seconds to minutes against milliseconds), and a target with no rule
(DataSets, Stores, ...) builds nothing. The numbers are only weights; the split is exact
whatever they are.
"""

from __future__ import annotations

from collections.abc import Iterable

from dkbuild.diagnostics import DkbError
from dkbuild.engine.rules import RuleSet
from dkbuild.engine.target import BuildTarget
from dkbuild.graph.keys import Keys
from dkbuild.graph.model import Graph
from dkbuild.graph.shard import Shard
from dkbuild.workspace import Workspace

PACKAGE_WORK = 1
IMAGE_WORK = 25


def work_estimates(workspace: Workspace, graph: Graph, keys: Keys, rules: RuleSet,
                   labels: Iterable[str]) -> dict[str, int]:
    default_of = {node: pkg for pkg, node in graph.package_default.items()}
    work: dict[str, int] = {}
    for label in labels:
        node = graph.nodes.get(label)
        rule = rules.rule_of(node) if node is not None else None
        if node is None or rule is None or label not in keys.keys:
            work[label] = 0
            continue
        files = keys.components[label].files if label in default_of else {}
        try:
            image = rule.image_request(BuildTarget(node, keys.keys[label], workspace, files, graph))
        except (DkbError, ValueError):      # a manifest lint rejects: it fails fast, like a package
            image = None
        work[label] = IMAGE_WORK if image is not None else PACKAGE_WORK
    return work


def shard_selection(shard: Shard | None, workspace: Workspace, graph: Graph, keys: Keys, rules: RuleSet,
                    labels: Iterable[str]) -> set[str]:
    """The part of `labels` that `shard` builds (all of them without --shard)."""
    labels = set(labels)
    if shard is None or shard.count == 1:
        return labels
    return shard.select(labels, work_estimates(workspace, graph, keys, rules, labels))

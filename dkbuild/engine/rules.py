"""Build rules: one per runtime, found through the `dkbuild.rules` entry-point group and in the
workspace's own rule directories ([rules] paths), which override built-ins of the same name."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from dkbuild.diagnostics import DkbError, error
from dkbuild.graph.keys import RuleIdentity
from dkbuild.graph.model import Node
from dkbuild.workspace import Workspace


class Rule:
    """Base class of a runtime rule. Subclasses set the class attributes; later hooks add checks and
    artifacts. Bump `version` whenever what the rule produces changes: it is part of every key."""

    name: ClassVar[str]
    version: ClassVar[str]
    # workspace.toml sections whose content changes what this rule produces.
    config_sections: ClassVar[tuple[str, ...]] = ()
    # Package files (globs, relative to the package) that are never inputs, e.g. dbt's target/.
    ignored: ClassVar[tuple[str, ...]] = ()

    def identity(self, workspace: Workspace) -> RuleIdentity:
        settings: dict[str, Any] = dict((workspace.config.rules.model_extra or {}).get(self.name, {}))
        return RuleIdentity(self.name, self.version, self.config_sections, settings, self.ignored)


@dataclass(frozen=True)
class RuleSet:
    rules: dict[str, Rule]

    def for_node(self, workspace: Workspace):  # type: ignore[no-untyped-def]
        """A function node -> RuleIdentity (Transforms only), as content keys need it."""
        identities = {name: rule.identity(workspace) for name, rule in self.rules.items()}

        def rule_for(node: Node) -> RuleIdentity | None:
            if node.kind != "Transform":
                return None
            return identities.get(getattr(node.manifest.model.spec, "runtime", ""))
        return rule_for


def load_rules(workspace: Workspace) -> RuleSet:
    rules: dict[str, Rule] = {}
    for ep in entry_points(group="dkbuild.rules"):
        rule = ep.load()
        rules[rule.name] = rule
    for directory in workspace.config.rules.paths:
        for path in sorted((workspace.root / directory).glob("*.py")):
            rule = _load_workspace_rule(workspace, path)
            if rule is not None:
                rules[rule.name] = rule
    return RuleSet(rules)


def _load_workspace_rule(workspace: Workspace, path: Path) -> Rule | None:
    rel = path.relative_to(workspace.root).as_posix()
    spec = importlib.util.spec_from_file_location(f"dkb_workspace_rule_{path.stem}", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken user rule must name itself, not crash dkb
        raise DkbError(error("E130", rel, f"workspace rule failed to import: {exc}",
                             hint="fix the rule module or remove it from [rules] paths")) from None
    rule = getattr(module, "RULE", None)
    if rule is None:
        return None
    if not isinstance(rule, Rule):
        raise DkbError(error("E130", rel, "RULE must be an instance of dkbuild.engine.rules.Rule",
                             hint="subclass dkbuild.engine.rules.Rule and set name and version"))
    return rule

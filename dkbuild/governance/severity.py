"""The one place a finding gets its final severity (the rules are in governance.codes).

In order, later steps winning:
  1. the code's default severity in the catalogue;
  2. for a governance policy, its `[policy]` level (error, warning, advisory);
  3. advisory, when dk accepts this instance: the check said so (a value only dkb's stricter
     check rejects), or it is a contract finding on a file dk never lints (unless the field is
     one dk's runner follows there: codes.REFERENCE_CHAIN);
  4. the workspace's `[lint.severity]` setting for the code, if any;
  5. `--strict` makes a warning (not an advisory) an error.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dkbuild.config_model import WorkspaceConfig
from dkbuild.diagnostics import Diagnostic, Severity
from dkbuild.governance.codes import CODES, REFERENCE_CHAIN
from dkbuild.manifests.manifest import Manifest

# Which [policy] key sets the level of each policy code.
POLICY_KEYS = {"E600": "pii_classification", "E601": "pii_propagation", "E602": "classification_downgrade"}


def dk_lints(manifest: Manifest) -> bool:
    """dk lint reads a package's dk.yaml and its datasets/**/dataset.yaml, never the flat
    connector/, store/, dataset/ copies nor stores/ or connectors/ scaffolds (cli/cmd/lint.go)."""
    if manifest.layout == "dk.yaml":
        return True
    return manifest.layout == "scaffold" and posixpath.basename(manifest.file) == "dataset.yaml"


@dataclass(frozen=True)
class SeverityPolicy:
    strict: bool = False
    policy_levels: Mapping[str, str] = field(default_factory=dict)   # code -> [policy] level
    overrides: Mapping[str, str] = field(default_factory=dict)       # code -> [lint.severity]
    unlinted_files: frozenset[str] = frozenset()                     # files dk never lints

    @classmethod
    def of(cls, config: WorkspaceConfig, manifests: Iterable[Manifest], strict: bool = False) -> SeverityPolicy:
        linted: dict[str, bool] = {}
        for m in manifests:
            linted[m.file] = linted.get(m.file, False) or dk_lints(m)
        levels = {code: getattr(config.policy, key) for code, key in POLICY_KEYS.items()}
        return cls(strict, levels, dict(config.lint.severity),
                   frozenset(f for f, yes in linted.items() if not yes))

    def level(self, d: Diagnostic) -> str:
        entry = CODES.get(d.code)
        level = entry.severity if entry else d.severity.value
        level = self.policy_levels.get(d.code, level)
        if d.dk_accepts or (entry is not None and entry.group == "manifest" and d.file in self.unlinted_files
                            and d.code not in REFERENCE_CHAIN):
            level = "advisory"
        level = self.overrides.get(d.code, level)
        if self.strict and level == "warning":
            level = "error"
        return level

    def apply(self, d: Diagnostic) -> Diagnostic:
        return d.with_severity(Severity(self.level(d)))

"""How `dkb lint` was asked to lint: what its report depends on beyond the workspace state."""

from __future__ import annotations

from dataclasses import dataclass, field

from dkbuild.governance.overrides import Overrides


@dataclass(frozen=True)
class LintOptions:
    strict: bool = False          # a warning (not an advisory finding) is an error
    skip_pii: bool = False        # leave out the PII and classification policies (E600-E602)
    overrides: Overrides = field(default_factory=Overrides)   # -f/--values and --set

    def key(self) -> str:
        """For the lint report's cache selection (engine/snapshot.py lint_selection)."""
        return f"strict={self.strict} skip_pii={self.skip_pii} overrides={self.overrides.key()}"

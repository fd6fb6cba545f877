"""What `dkb lint` reports. Apart from the lint machinery so a cached report (engine/snapshot.py)
can be read back without importing the checks and the manifest models."""

from __future__ import annotations

from dataclasses import dataclass

from dkbuild.diagnostics import Diagnostic


@dataclass(frozen=True)
class LintReport:
    diagnostics: list[Diagnostic]
    targets: list[str]
    files: list[str]

    @property
    def errors(self) -> int:
        return sum(d.is_error for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return len(self.diagnostics) - self.errors

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

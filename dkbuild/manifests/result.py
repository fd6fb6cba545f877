"""What loading a workspace's manifests gives: the manifests and the diagnostics, with the files
they came from. Apart from the loader so a warm command (engine/snapshot.py) can hold one without
importing the YAML and model machinery."""

from __future__ import annotations

from dataclasses import dataclass

from dkbuild.diagnostics import Diagnostic
from dkbuild.manifests.manifest import Manifest
from dkbuild.sources import FileIndex

# Codes of diagnostics that make the input unusable (exit 2).
LOAD_ERROR_CODES = frozenset({"E100", "E101", "E002", "E102", "E103", "E104", "E105", "E106",
                              "E107", "E108", "E110", "E111", "E112"})


@dataclass(frozen=True)
class LoadResult:
    manifests: list[Manifest]
    diagnostics: list[Diagnostic]
    files: FileIndex

    @property
    def unusable(self) -> bool:
        return any(d.is_error and d.code in LOAD_ERROR_CODES for d in self.diagnostics)

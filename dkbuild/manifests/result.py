"""What loading a workspace's manifests gives: the manifests and the diagnostics, with the files
they came from. Apart from the loader so a warm command (engine/snapshot.py) can hold one without
importing the YAML and model machinery."""

from __future__ import annotations

from dataclasses import dataclass

from dkbuild.diagnostics import Diagnostic
from dkbuild.manifests.manifest import Manifest
from dkbuild.sources import FileIndex

# Codes of diagnostics that mean a file (or one document of it) was not loaded at all.
LOAD_ERROR_CODES = frozenset({"E100", "E101", "E002", "E102", "E104", "E105", "E106",
                              "E107", "E108", "E110", "E112", "E530", "E532"})


@dataclass(frozen=True)
class LoadResult:
    manifests: list[Manifest]
    diagnostics: list[Diagnostic]
    files: FileIndex

    @property
    def skipped(self) -> list[Diagnostic]:
        """Why files, or documents of them, were left out of the graph: each fails its own target
        (and what depends on it) and nothing else."""
        return [d for d in self.diagnostics if d.is_error and d.code in LOAD_ERROR_CODES]

"""One loaded manifest document: its location, its raw data, its typed model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from dkbuild.manifests.models import Envelope

FieldPath = tuple[str | int, ...]


def format_field(path: FieldPath) -> str:
    """`("spec", "inputs", 0, "dataset")` -> `spec.inputs[0].dataset`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def canonical_json(data: Any) -> str:
    """The one serialization used for hashing and comparing: sorted keys, no whitespace."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, eq=False)
class Manifest:
    kind: str
    name: str
    file: str                 # workspace-relative posix path
    doc_index: int            # position in a multi-document file
    line: int                 # first line of the document
    package: str              # owning package directory
    layout: str               # "dk.yaml" | "flat" | "scaffold"
    data: dict[str, Any]      # the document as parsed (JSON-compatible)
    model: Envelope
    positions: dict[FieldPath, tuple[int, int]] = field(repr=False, default_factory=dict)

    @property
    def label(self) -> str:
        return f"//{self.package}:{self.name}"

    @cached_property
    def normalized(self) -> str:
        """Formatting- and comment-independent identity of the manifest's content."""
        return canonical_json(self.data)

    def position(self, path: FieldPath) -> tuple[int, int]:
        """Line and column of a field, or of its nearest present ancestor."""
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return (self.line, 1)

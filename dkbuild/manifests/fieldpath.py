"""Parse `spec.inputs[0].dataset` back into ("spec", "inputs", 0, "dataset")."""

from __future__ import annotations

import re

from dkbuild.manifests.manifest import FieldPath

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_field(text: str) -> FieldPath:
    return tuple(int(index) if index else name for name, index in _PART.findall(text))

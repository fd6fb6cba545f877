"""Classification levels and their order; PII facts of a dataset."""

from __future__ import annotations

from dkbuild.graph.model import Node

LEVELS = ("public", "internal", "confidential", "restricted")
UNCLASSIFIED = -1


def rank(level: str | None) -> int:
    """Higher is more sensitive; a missing or unknown classification ranks lowest."""
    return LEVELS.index(level) if level in LEVELS else UNCLASSIFIED


def level_name(value: int) -> str:
    return LEVELS[value] if value >= 0 else "unclassified"


def pii_columns(node: Node) -> list[str]:
    return [c.name for c in node.manifest.model.spec.schema_ if c.pii]

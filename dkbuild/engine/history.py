"""What the last build of each target was made of, so `dkb why` can say what changed since."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from dkbuild.oci.layout import atomic_write


class TargetHistory:
    def __init__(self, root: Path):
        self.dir = root / "cache" / "targets"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, label: str) -> Path:
        return self.dir / (hashlib.sha256(label.encode()).hexdigest()[:32] + ".json")

    def record(self, label: str, action_key: str, components: dict[str, Any],
               references: dict[str, dict[str, Any]] | None = None) -> None:
        """`references`: the key components of every target it references, so an explanation can
        say what changed inside a referenced dataset, not only that it changed."""
        document = {"label": label, "action_key": action_key, "components": components,
                    "references": references or {}}
        atomic_write(self._path(label), json.dumps(document, sort_keys=True).encode())

    def last(self, label: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(label).read_text())
        except (FileNotFoundError, ValueError):
            return None

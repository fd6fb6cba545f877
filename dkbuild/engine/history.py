"""What the last build of each target was made of, so `dkb why` can say what changed since."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from dkbuild.oci.layout import atomic_write


class TargetHistory:
    """One JSON record per target, plus `index.json` (label -> the action key of its record) so a
    build that changed nothing reads one file instead of rewriting a record per target. The index is
    advisory: a missing or stale entry only costs a rewrite of the record."""

    def __init__(self, root: Path):
        self.dir = root / "cache" / "targets"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, str] | None = None
        self._changed: dict[str, str] = {}
        self._lock = threading.Lock()

    def _recorded(self) -> dict[str, str]:
        if self._index is None:
            try:
                index = json.loads((self.dir / "index.json").read_text())
            except (OSError, ValueError):
                index = {}
            self._index = index if isinstance(index, dict) else {}
        return self._index

    def is_current(self, label: str, action_key: str) -> bool:
        with self._lock:
            return self._recorded().get(label) == action_key and self.record_path(label).exists()

    def flush(self) -> None:
        """Write the index once, at the end of a build (merged with what other builds wrote since)."""
        with self._lock:
            if not self._changed:
                return
            self._index = None
            index = {**self._recorded(), **self._changed}
            atomic_write(self.dir / "index.json", json.dumps(index, sort_keys=True).encode())
            self._index, self._changed = index, {}

    def record_path(self, label: str) -> Path:
        return self.dir / (hashlib.sha256(label.encode()).hexdigest()[:32] + ".json")

    def record(self, label: str, action_key: str, components: dict[str, Any],
               references: dict[str, dict[str, Any]] | None = None) -> None:
        """`references`: the key components of every target it references, so an explanation can
        say what changed inside a referenced dataset, not only that it changed."""
        document = {"label": label, "action_key": action_key, "components": components,
                    "references": references or {}}
        atomic_write(self.record_path(label), json.dumps(document, sort_keys=True).encode())
        with self._lock:
            self._changed[label] = action_key
            self._recorded()[label] = action_key

    def last(self, label: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.record_path(label).read_text())
        except (FileNotFoundError, ValueError):
            return None

"""The action cache (`.dkb/cache/ac/<action key>.json`): a small JSON result per action that points
at blobs in the local OCI layout. An entry is trusted only if every blob it names is present and
intact: a blob whose size or mtime differs from when the entry was written is re-hashed, and a
corrupt one is removed, turning the hit into a miss (rebuilt, never served)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dkbuild import __version__
from dkbuild.oci.layout import OciLayout, atomic_write

ENTRY_SCHEMA = 1
# Garbage collection evicts by last use; to the hour is plenty, and spares a write per cache hit.
LRU_RESOLUTION_NS = 3600 * 10**9


@dataclass(frozen=True)
class CacheEntry:
    action_key: str
    label: str
    key: str
    artifacts: dict[str, dict[str, Any]]     # name ("package", "image") -> manifest descriptor
    blobs: list[dict[str, Any]]              # {"digest", "size", "mtime_ns"} at write time

    def to_json(self) -> dict[str, Any]:
        return {"schema": ENTRY_SCHEMA, "action_key": self.action_key, "label": self.label, "key": self.key,
                "artifacts": self.artifacts, "blobs": self.blobs, "dkb": __version__}


@dataclass(frozen=True)
class Lookup:
    entry: CacheEntry | None
    problem: str = ""          # why a present entry was not trusted


class ActionCache:
    def __init__(self, root: Path, layout: OciLayout):
        self.dir = root / "cache" / "ac"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.layout = layout

    def path(self, action_key: str) -> Path:
        return self.dir / f"{action_key}.json"

    def lookup(self, action_key: str) -> Lookup:
        path = os.path.join(self.dir, action_key + ".json")   # plain strings: a no-op build does this per target
        try:
            with open(path, "rb") as f:
                raw = json.loads(f.read())
                used_ns = os.fstat(f.fileno()).st_mtime_ns
        except FileNotFoundError:
            return Lookup(None)
        except (OSError, ValueError):
            return Lookup(None, "unreadable cache entry")
        if raw.get("schema") != ENTRY_SCHEMA or raw.get("action_key") != action_key:
            return Lookup(None, "cache entry of another format")
        for blob in raw["blobs"]:
            if not self._intact(blob):
                return Lookup(None, f"blob {blob['digest'][:19]}… missing or corrupt")
        if time.time_ns() - used_ns > LRU_RESOLUTION_NS:
            os.utime(path)   # the entry's mtime is its last use, for LRU garbage collection
        return Lookup(CacheEntry(raw["action_key"], raw["label"], raw["key"], raw["artifacts"], raw["blobs"]))

    def _intact(self, blob: dict[str, Any]) -> bool:
        try:
            st = os.stat(self.layout.blob_file(blob["digest"]))
        except FileNotFoundError:
            return False
        if st.st_size == blob["size"] and st.st_mtime_ns == blob["mtime_ns"]:
            return True
        return self.layout.verify_blob(blob["digest"])

    def store(self, action_key: str, label: str, key: str, artifacts: dict[str, dict[str, Any]],
              digests: list[str]) -> CacheEntry:
        blobs = []
        for digest in sorted(set(digests)):
            st = self.layout.blob_path(digest).stat()
            blobs.append({"digest": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
        entry = CacheEntry(action_key, label, key, artifacts, blobs)
        atomic_write(self.path(action_key), json.dumps(entry.to_json(), indent=1, sort_keys=True).encode())
        return entry

"""Garbage collection of the local store: evict action-cache entries least recently used first
(an entry's mtime is its last use, to the hour) until the blobs the remaining entries need fit in
`max_size`, drop entries older than `max_age`, then delete blobs nothing refers to. Blobs younger
than `grace` are kept: a build running right now may have written them without an entry yet.
Temp files a killed writer left (`.tmp-*.part`) go too: those older than `grace`, and younger
ones whose writer, named in the file name, is no longer running on this host."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dkbuild.engine.build import LocalStore
from dkbuild.fsutil import TEMP_PREFIX, TEMP_SUFFIX, temp_owner_gone

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.I)
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_AGE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str) -> int:
    """`2G`, `500M`, `1.5GiB`, `1024` -> bytes (powers of 1024)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 500M, 2G)")
    return int(float(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower()))


def parse_age(text: str) -> float:
    m = _AGE.match(text)
    if not m:
        raise ValueError(f"not an age: {text!r} (use e.g. 12h, 30d)")
    return float(m.group(1)) * _AGE_SECONDS[m.group(2).lower()]


@dataclass(frozen=True)
class GcReport:
    entries_before: int
    entries_evicted: int
    blobs_removed: int
    bytes_before: int
    bytes_after: int
    dry_run: bool
    temp_files_removed: int = 0

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def collect(store: LocalStore, max_size: int | None = None, max_age: float | None = None,
            grace: float = 600.0, dry_run: bool = False) -> GcReport:
    now = time.time()
    entries = []
    for path in store.cache.dir.glob("*.json"):
        try:
            entries.append((path.stat().st_mtime, path, json.loads(path.read_text())))
        except (OSError, ValueError):
            entries.append((0.0, path, {"blobs": []}))     # unreadable entries go first
    entries.sort(key=lambda e: e[0], reverse=True)           # most recently used first
    blob_sizes = {d: store.layout.blob_path(d).stat().st_size for d in store.layout.blob_digests()}
    kept_blobs: set[str] = set()
    kept_size = 0
    evicted = []
    for mtime, path, entry in entries:
        digests = {b["digest"] for b in entry.get("blobs", [])}
        extra = sum(blob_sizes.get(d, 0) for d in digests - kept_blobs)
        too_old = max_age is not None and now - mtime > max_age
        too_big = max_size is not None and kept_size + extra > max_size
        if too_old or too_big or not entry.get("blobs"):
            evicted.append(path)
            continue
        kept_blobs |= digests
        kept_size += extra
    removable = []
    for digest, size in blob_sizes.items():
        if digest in kept_blobs:
            continue
        if now - store.layout.blob_path(digest).stat().st_mtime < grace:
            kept_size += size
            continue
        removable.append(digest)
    if not dry_run:
        for path in evicted:
            path.unlink(missing_ok=True)
        stale_refs = {ref for ref, desc in store.layout.refs().items() if desc["digest"] not in kept_blobs
                      and desc["digest"] in removable}
        store.layout.untag(stale_refs)
        for digest in removable:
            store.layout.discard(digest)
    leftovers = stale_temp_files(store.root, now - grace)
    if not dry_run:
        for path in leftovers:
            path.unlink(missing_ok=True)
    return GcReport(len(entries), len(evicted), len(removable), sum(blob_sizes.values()), kept_size, dry_run,
                    len(leftovers))


def stale_temp_files(root: Path, before: float) -> list[Path]:
    """Temp files under `root` no writer will finish: older than `before`, or whose writer is gone."""
    stale = []
    for path in root.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        try:
            old = path.lstat().st_mtime < before
        except FileNotFoundError:
            continue            # its writer just finished (renamed it) or gave up
        if old or temp_owner_gone(path.name):
            stale.append(path)
    return stale


@dataclass(frozen=True)
class VerifyReport:
    blobs_checked: int
    corrupt_blobs: list[str]
    entries_dropped: int

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def verify(store: LocalStore) -> VerifyReport:
    """Re-hash every blob; remove corrupt ones and every cache entry that needed them."""
    digests = list(store.layout.blob_digests())
    corrupt = [d for d in digests if not store.layout.verify_blob(d)]
    present = set(digests) - set(corrupt)
    dropped = 0
    for path in store.cache.dir.glob("*.json"):
        try:
            needed = {b["digest"] for b in json.loads(path.read_text())["blobs"]}
        except (OSError, ValueError, KeyError):
            needed = {"unreadable"}
        if not needed <= present:
            path.unlink(missing_ok=True)
            dropped += 1
    return VerifyReport(len(digests), corrupt, dropped)

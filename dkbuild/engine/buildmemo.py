"""A no-op build, remembered whole: the last step of the warm path (DESIGN §8).

When the local cache answered every target of a build, its outcome is kept beside the snapshot of
that workspace state (and pruned with it), under a name that hashes everything else the answer
depends on: the rules, the patterns and the package they are relative to, the options that change
the report, and where the store is. With it go the size and mtime of every file the answer rests
on: each action-cache entry, each blob those entries name, each target's history record, the
history index and the layout's index.json (the tags). The same build of the same state checks
those stats and answers, reading neither the graph nor one cache entry.

Any of those files changed or gone, or an hour gone by, and the build takes the normal path, which
remembers it again. The hour matches the action cache's last-use resolution, so garbage collection
still sees every entry a build relies on as used. Builds that ask the host which image builder it
has (Dockerfile targets), stamp, read a remote cache or compare with a revision are never
remembered: their answer depends on more than the files.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from dkbuild.engine.cache import LRU_RESOLUTION_NS
from dkbuild.engine.snapshot import SnapshotStore, selection_digest

FORMAT = 2                              # of NoopBuild; part of the memo's name
# The action cache's last-use resolution: within it, entries a memo answers for count as used.
MAX_AGE_NS = LRU_RESOLUTION_NS
Stamp = tuple[int, int] | None          # (size, mtime_ns); None: the file must not exist


@dataclass(frozen=True)
class Stamps:
    """The size and mtime of files, grouped by directory: a stat relative to an open directory
    skips resolving the whole path again, which counts at tens of thousands of files."""
    by_dir: dict[str, tuple[tuple[str, ...], tuple[Stamp, ...]]]

    @classmethod
    def of(cls, paths: list[str]) -> Stamps:
        names: dict[str, list[str]] = {}
        for path in dict.fromkeys(paths):
            directory, name = os.path.split(path)
            names.setdefault(directory, []).append(name)
        by_dir = {}
        for directory, listed in names.items():
            by_dir[directory] = (tuple(listed), tuple(_stamp(os.path.join(directory, n)) for n in listed))
        return cls(by_dir)

    def unchanged(self) -> bool:
        for directory, (names, expected) in self.by_dir.items():
            try:
                fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                return False
            try:
                if any(_stamp(name, fd) != stamp for name, stamp in zip(names, expected)):
                    return False
            finally:
                os.close(fd)
        return True


def _stamp(path: str, dir_fd: int | None = None) -> Stamp:
    try:
        st = os.stat(path, dir_fd=dir_fd)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@dataclass(frozen=True)
class NoopBuild:
    """What `api.build` answered for a build that built nothing, and what that answer rests on."""
    lint: Any                           # governance LintReport, without errors
    results: list[Any]                  # engine.action.ActionResult, all answered by the cache
    stamps: Stamps
    written_ns: int


def memo_name(rules_identity: str, patterns: list[str], current_package: str, dry_run: bool,
              image_backend: str, store_root: str) -> str:
    return "build-" + selection_digest(FORMAT, rules_identity, patterns, current_package, dry_run, image_backend,
                                       store_root)


def recall(store: SnapshotStore, fp: str, name: str) -> NoopBuild | None:
    """The remembered build, if every file it rests on is as it was and it is recent enough."""
    memo = store.read_extra(fp, name)
    if not isinstance(memo, NoopBuild) or not isinstance(memo.stamps, Stamps) \
            or time.time_ns() - memo.written_ns > MAX_AGE_NS \
            or not memo.stamps.unchanged():
        return None
    store.touch(fp)
    return memo


def remember(store: SnapshotStore, fp: str, name: str, lint: Any, results: list[Any], local: Any) -> None:
    """Keep a build whose every result came from the local cache `local` (an engine LocalStore).
    The history directory stands for its records: one is only ever replaced or removed whole,
    which changes the directory's mtime, and a build asks no more of them than that they exist."""
    paths = [str(local.layout.root / "index.json"), str(local.history.dir / "index.json"),
             str(local.history.dir)]
    for result in results:
        paths.append(str(local.cache.path(result.action_key)))
        paths.extend(local.layout.blob_file(digest) for digest in result.blobs)
    store.write_extra(fp, name, NoopBuild(lint, results, Stamps.of(paths), time.time_ns()))

"""Reproducible tar and gzip (DESIGN §4): sorted entries, fixed mtime, root ownership with empty
names, modes 0644/0755, no pax headers; gzip with mtime 0, no file name, a fixed level."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

GZIP_LEVEL = 6


@dataclass(frozen=True)
class Entry:
    path: str               # posix, relative, no leading "./"
    data: bytes
    executable: bool = False


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH when set (reproducible-builds.org), else 0."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else 0


def tar_bytes(entries: Iterable[Entry], mtime: int | None = None) -> bytes:
    """A USTAR/GNU tar with parent directories, sorted by path. Same entries, same bytes."""
    mtime = source_date_epoch() if mtime is None else mtime
    files = {e.path: e for e in entries}
    dirs = {str(p) for path in files for p in Path(path).parents if str(p) != "."}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(dirs | set(files)):
            info = tarfile.TarInfo(name + ("/" if name in dirs and name not in files else ""))
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if name in files:
                entry = files[name]
                info.type = tarfile.REGTYPE
                info.mode = 0o755 if entry.executable else 0o644
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
    return buffer.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=GZIP_LEVEL, mtime=0) as gz:
        gz.write(data)
    return buffer.getvalue()


def entries_from_files(root: Path, paths: Iterable[str], prefix: str = "") -> list[Entry]:
    """Entries for files under root; only the executable bit of the real mode is kept."""
    found = []
    for rel in sorted(paths):
        full = root / rel
        found.append(Entry(prefix + rel, full.read_bytes(), bool(full.stat().st_mode & 0o111)))
    return found

"""Writing files so that readers never see half of one (bottom layer: any module may use it)."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".part"
# `.tmp-<pid>@<host>~<random>.part`: who is writing it, so a sweep can tell a crashed writer's
# leftover from a file another process is writing right now.
_TEMP_OWNER = re.compile(r"^\.tmp-(\d+)@([^~]*)~")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname())[:64]


def temp_owner_gone(name: str) -> bool:
    """True when a temp file's name says it was written on this host by a process that is gone.
    False when it may still be written (or the name does not say: older dkb versions)."""
    m = _TEMP_OWNER.match(name)
    if not m or m.group(2) != _host():
        return False
    try:
        os.kill(int(m.group(1)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False         # PermissionError: alive, someone else's
    return False


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A file that appears at `path` only if the block completes: temp file in the same directory,
    fsync, rename. Readers see the old file or the new one, never half of it; on any error (or a
    crash) only an ignorable `.tmp-*.part` file can be left, which `dkb cache gc` removes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{os.getpid()}@{_host()}~",
                               suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: Path, data: bytes) -> None:
    with atomic_file(path) as fh:
        fh.write(data)

"""Writing files so that readers never see half of one (bottom layer: any module may use it)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import stat
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


class NotRegularFile(OSError):
    """A path that is a FIFO, socket or device: reading it could block forever or never end."""


_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFDIR: "a directory"}


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO")."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def open_regular(path: Path | str) -> int:
    """A read-only descriptor of a regular file. Opened non-blocking, so a FIFO (or a file swapped
    for one) is refused at once instead of waiting forever for a writer."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, f"{kind_of(mode)}, not a regular file", str(path))
    return fd


def read_regular(path: Path | str) -> bytes:
    """The bytes of a regular file (NotRegularFile for anything else; other OSErrors as raised)."""
    with os.fdopen(open_regular(path), "rb") as fh:
        return fh.read()

"""Build contexts made of exactly the files an ImageRequest lists, normalised so that neither the
checkout's mtimes nor the umask nor ignored files can change what a build tool sees."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from dkbuild.oci.backends import BadImageRequest, ImageRequest

STDERR_TAIL_LINES = 40


def checked_relpath(label: str, rel: str) -> PurePosixPath:
    """A package-relative path that stays inside the package, or BadImageRequest."""
    path = PurePosixPath(rel)
    if not rel or path.is_absolute() or any(part in ("", ".", "..") for part in rel.split("/")):
        raise BadImageRequest(f"{label}: build-context path {rel!r} is not a plain path inside the package")
    return path


def dockerfile_in_context(request: ImageRequest) -> str:
    """The Dockerfile path; it must be one of the request's files, or it would not be in the key."""
    if request.dockerfile is None:
        raise BadImageRequest(f"{request.label}: this backend needs a Dockerfile")
    checked_relpath(request.label, request.dockerfile)
    if request.dockerfile not in request.files:
        raise BadImageRequest(f"{request.label}: {request.dockerfile} is not among the package's input "
                              "files (is it ignored?); it must be an input so that changing it rebuilds")
    return request.dockerfile


def write_build_context(request: ImageRequest, dest: Path) -> None:
    """Copy request.files from the package into `dest`: modes 0644/0755, every mtime
    SOURCE_DATE_EPOCH. Symlinks stay symlinks (as in a Docker context), so a link never pulls in a
    file from outside the listed ones."""
    when = request.source_date_epoch
    dest.mkdir(parents=True, exist_ok=True)
    dirs = {dest}
    for rel in sorted(request.files):
        relpath = checked_relpath(request.label, rel)
        source = request.package_dir / rel
        target = dest.joinpath(*relpath.parts)
        for parent in reversed(target.parents):
            if parent not in dirs and dest in parent.parents:
                parent.mkdir(exist_ok=True)
                dirs.add(parent)
        try:
            info = source.lstat()
        except FileNotFoundError:
            raise BadImageRequest(f"{request.label}: input file {rel} disappeared from "
                                  f"{request.package_dir}; re-run the build") from None
        if stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(source), target)
        elif stat.S_ISREG(info.st_mode):
            target.write_bytes(source.read_bytes())
            os.chmod(target, 0o755 if info.st_mode & 0o111 else 0o644)
        else:
            raise BadImageRequest(f"{request.label}: input {rel} is not a regular file or symlink")
        os.utime(target, (when, when), follow_symlinks=False)
    for directory in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        os.chmod(directory, 0o755)
        os.utime(directory, (when, when))


def tail(text: str | bytes | None, lines: int = STDERR_TAIL_LINES) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])

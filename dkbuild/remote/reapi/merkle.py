"""The REAPI input root of a build context: a Merkle tree of Directory messages over exactly the
files an image request lists (REAPI v2 rules: files, directories and symlinks each sorted by name,
the executable bit kept, symlinks kept as links, never followed). Nothing else in the package
directory can reach the tree, so it has the same inputs as the image action's key."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

from dkbuild.oci.backends import BadImageRequest
from dkbuild.oci.backends.context import checked_relpath


def digest_of(data: bytes) -> re_pb2.Digest:
    return re_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def message_blob(message: object) -> tuple[re_pb2.Digest, bytes]:
    """A proto's canonical bytes and their digest (deterministic serialisation, as REAPI asks)."""
    data = message.SerializeToString(deterministic=True)  # type: ignore[attr-defined]
    return digest_of(data), data


@dataclass
class InputTree:
    root: re_pb2.Digest
    blobs: dict[str, bytes] = field(repr=False)    # hash -> content: every Directory and file

    def digests(self) -> list[re_pb2.Digest]:
        return [re_pb2.Digest(hash=h, size_bytes=len(b)) for h, b in sorted(self.blobs.items())]


@dataclass
class _Dir:
    files: dict[str, re_pb2.FileNode] = field(default_factory=dict)
    links: dict[str, re_pb2.SymlinkNode] = field(default_factory=dict)
    dirs: dict[str, "_Dir"] = field(default_factory=dict)


def context_tree(label: str, package_dir: Path, files: Iterable[str]) -> InputTree:
    """The input root of `files` (package-relative paths) read from `package_dir`."""
    blobs: dict[str, bytes] = {}
    top = _Dir()
    for rel in sorted(files):
        parts = checked_relpath(label, rel).parts
        node = top
        for part in parts[:-1]:
            if part in node.files or part in node.links:
                raise BadImageRequest(f"{label}: build-context path {rel!r} runs through a file")
            node = node.dirs.setdefault(part, _Dir())
        name, source = parts[-1], package_dir / rel
        try:
            info = source.lstat()
        except FileNotFoundError:
            raise BadImageRequest(f"{label}: input file {rel} disappeared from {package_dir}; re-run the build") from None
        if stat.S_ISLNK(info.st_mode):
            node.links[name] = re_pb2.SymlinkNode(name=name, target=os.readlink(source))
        elif stat.S_ISREG(info.st_mode):
            data = source.read_bytes()
            digest = digest_of(data)
            blobs[digest.hash] = data
            node.files[name] = re_pb2.FileNode(name=name, digest=digest, is_executable=bool(info.st_mode & 0o111))
        else:
            raise BadImageRequest(f"{label}: input {rel} is not a regular file or symlink")
    return InputTree(_store(top, blobs), blobs)


def _store(node: _Dir, blobs: dict[str, bytes]) -> re_pb2.Digest:
    directory = re_pb2.Directory(
        files=[node.files[n] for n in sorted(node.files)],
        directories=[re_pb2.DirectoryNode(name=n, digest=_store(node.dirs[n], blobs)) for n in sorted(node.dirs)],
        symlinks=[node.links[n] for n in sorted(node.links)])
    digest, data = message_blob(directory)
    blobs[digest.hash] = data
    return digest

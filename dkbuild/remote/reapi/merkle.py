"""The REAPI input root of a build context: a Merkle tree of Directory messages over exactly the
files an image request lists (REAPI v2 rules: files, directories and symlinks each sorted by name,
the executable bit kept, symlinks kept as links, never followed). Nothing else in the package
directory can reach the tree, so it has the same inputs as the image action's key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dkbuild.oci.backends import BadImageRequest
from dkbuild.oci.backends.context import checked_relpath
from dkbuild.remote.reapi.digest import Digest
from dkbuild.remote.reapi.stubs import stubs


@dataclass
class InputTree:
    root: Digest
    blobs: dict[Digest, bytes] = field(repr=False)    # every Directory message and file


@dataclass
class _Dir:
    files: dict[str, Any] = field(default_factory=dict)       # name -> FileNode
    links: dict[str, Any] = field(default_factory=dict)       # name -> SymlinkNode
    dirs: dict[str, "_Dir"] = field(default_factory=dict)


def context_tree(label: str, package_dir: Path, files: Iterable[str]) -> InputTree:
    """The input root of `files` (package-relative paths) read from `package_dir`."""
    re = stubs().re
    blobs: dict[Digest, bytes] = {}
    top = _Dir()
    for rel in sorted(files):      # sorted: a file "a" comes before any "a/..." path
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
            raise BadImageRequest(f"{label}: input file {rel} disappeared from {package_dir}; "
                                  "re-run the build") from None
        if stat.S_ISLNK(info.st_mode):
            node.links[name] = re.SymlinkNode(name=name, target=os.readlink(source))
        elif stat.S_ISREG(info.st_mode):
            data = source.read_bytes()
            digest = Digest.of(data)
            blobs[digest] = data
            node.files[name] = re.FileNode(name=name, digest=digest.proto(), is_executable=bool(info.st_mode & 0o111))
        else:
            raise BadImageRequest(f"{label}: input {rel} is not a regular file or symlink")
    return InputTree(_store(re, top, blobs), blobs)


def _store(re: Any, node: _Dir, blobs: dict[Digest, bytes]) -> Digest:
    directory = re.Directory(
        files=[node.files[n] for n in sorted(node.files)],
        directories=[re.DirectoryNode(name=n, digest=_store(re, node.dirs[n], blobs).proto()) for n in sorted(node.dirs)],
        symlinks=[node.links[n] for n in sorted(node.links)])
    data = directory.SerializeToString(deterministic=True)
    digest = Digest.of(data)
    blobs[digest] = data
    return digest

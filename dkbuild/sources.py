"""Every file of a workspace with a content id, without trusting mtimes (DESIGN §4).

Inside git, tracked and unmodified files take git's own blob id from one `git ls-files -s` call;
modified and untracked (not ignored) files are hashed the same way git would. Outside git every
file is read and hashed. Either way the same tree gives the same ids in any directory.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from dkbuild.diagnostics import Diagnostic, DkbError, error
from dkbuild.fsutil import NotRegularFile, kind_of, open_regular, read_regular

# Directories that are never part of a workspace's sources.
ALWAYS_SKIPPED_DIRS = frozenset({".git", ".dkb", ".venv", "venv", "node_modules", "__pycache__",
                                 ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"})


@dataclass(frozen=True)
class FileIndex:
    root: Path
    digests: dict[str, str]          # workspace-relative path -> "git:<sha1>" or "sha256:<hex>", "+x" if executable
    in_git: bool
    # Symlinks that lead outside the workspace: listed so callers can warn, never followed.
    escaping_links: tuple[str, ...] = field(default=())
    # What was seen but not indexed, with why, so callers can warn: FIFOs, sockets and devices
    # ("a FIFO"), and links inside the workspace that lead nowhere readable ("loops", ...).
    special_files: tuple[tuple[str, str], ...] = field(default=())
    unfollowed_links: tuple[tuple[str, str], ...] = field(default=())

    def __contains__(self, path: str) -> bool:
        return path in self.digests


def is_executable(content_id: str) -> bool:
    return content_id.endswith("+x")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class _Walk:
    """What indexing found besides content ids (see FileIndex); `unreadable` ends the command."""
    special: dict[str, str] = field(default_factory=dict)
    unfollowed: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)

    def content_id(self, root: Path, path: str, git: bool, full: Path | None = None) -> str | None:
        """The content id of a regular file, or None (and why, recorded) for anything else."""
        try:
            return _content_id(full or root / path, git)
        except NotRegularFile as exc:
            self.special[path] = exc.strerror
        except FileNotFoundError:
            pass                            # gone since it was listed: not part of this state
        except OSError as exc:
            self.unreadable[path] = exc.strerror or str(exc)
        return None


def index_files(root: Path) -> FileIndex:
    """Every workspace file with its content id, minus what `.dkbignore` files exclude (and, outside
    git, `.gitignore` files; inside git, git applies them). Only regular files are read; FIFOs,
    sockets and devices are listed as special files. A file that cannot be read is an error
    (DkbError, E530): its content would be missing from every key that covers it."""
    from dkbuild.ignorefiles import DKBIGNORE, ignored_paths

    root = root.resolve()
    walk = _Walk()
    index = _index_git(root, walk) or _index_walk(root, walk)
    names = (DKBIGNORE,) if index.in_git else (DKBIGNORE, ".gitignore")

    def read(path: str) -> bytes:
        if path not in index.digests:       # a FIFO (or worse) named .dkbignore: warned, not read
            return b""
        try:
            return read_regular(root / path)
        except OSError as exc:
            walk.unreadable[path] = exc.strerror or str(exc)
            return b""

    seen = [*index.digests, *walk.special, *walk.unfollowed, *walk.unreadable]
    for path in ignored_paths(seen, read, names):
        for found in (index.digests, walk.special, walk.unfollowed, walk.unreadable):
            found.pop(path, None)
    if walk.unreadable:
        raise DkbError(_unreadable_errors(walk.unreadable))
    return replace(index, special_files=tuple(sorted(walk.special.items())),
                   unfollowed_links=tuple(sorted(walk.unfollowed.items())))


def _unreadable_errors(unreadable: dict[str, str]) -> list[Diagnostic]:
    return [error("E530", path, f"cannot read {'directory' if path.endswith('/') else 'file'}: {why}",
                  hint="make it readable by the user running dkb, or list it in a .dkbignore file "
                       "if it is not a build input")
            for path, why in sorted(unreadable.items())]


def _git_command(root: Path, *args: str) -> list[str]:
    return ["git", "-C", str(root), "-c", "core.quotepath=off", *args]


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(_git_command(root, *args), capture_output=True, check=False)


def in_skipped_dir(path: str) -> bool:
    """Whether a path lies in a directory that is never a source (ALWAYS_SKIPPED_DIRS)."""
    return any(part in ALWAYS_SKIPPED_DIRS for part in path.split("/")[:-1])


# One `git ls-files -s -z` entry: mode, blob id, stage, tab, path.
_STAGED_ENTRY = re.compile(rb"(\d+) ([0-9a-f]+) \d+\t([^\0]*)\0")
# Whether any path in that output has a directory that is never a source (usually none has).
_SKIPPED_PART = re.compile(rb"[\t/](?:" + rb"|".join(re.escape(d.encode()) for d in sorted(ALWAYS_SKIPPED_DIRS))
                           + rb")/")


def _index_git(root: Path, walk: _Walk) -> FileIndex | None:
    """Three git calls: the index with blob ids, the tracked files that differ from it, and the
    untracked ones. The untracked scan reads every directory, so it is started first and runs
    beside the rest. None outside a work tree."""
    try:
        untracked = subprocess.Popen(_git_command(root, "ls-files", "-z", "-o", "--exclude-standard"),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except FileNotFoundError:
        return None       # no git installed: hash the files instead
    try:
        staged = _git(root, "ls-files", "-s", "-z")
        if staged.returncode != 0:
            return None   # not inside a git work tree
        digests, links = _staged(staged.stdout)
        # -t tags each path: "C" modified, "R" deleted (also listed as modified).
        status = _git(root, "ls-files", "-z", "-t", "-m", "-d")
        new, _ = untracked.communicate()
    finally:
        if untracked.poll() is None:
            untracked.kill()
            untracked.wait()
    for call in (status, untracked):
        if call.returncode != 0:
            raise subprocess.CalledProcessError(call.returncode, "git ls-files")
    changed: list[str] = []
    deleted: set[str] = set()
    for entry in status.stdout.split(b"\0"):
        if entry:
            path = entry[2:].decode("utf-8", "surrogateescape")
            (deleted.add if entry[:1] == b"R" else changed.append)(path)
    changed.extend(entry.decode("utf-8", "surrogateescape") for entry in new.split(b"\0") if entry)
    for path in changed:
        if path in deleted or in_skipped_dir(path):
            continue
        digests.pop(path, None)
        full = root / path
        if full.is_symlink():
            links[path] = ""
        elif not full.is_dir():             # a directory here is a submodule's work tree
            content = walk.content_id(root, path, git=True)
            if content is not None:
                digests[path] = content
    for path in deleted:
        digests.pop(path, None)
    escaping = _resolve_links(root, links, digests, walk, git=True)
    return FileIndex(root, digests, True, escaping)


def may_hold_skipped(listing: bytes) -> bool:
    """Whether a git listing (`<meta>\\t<path>\\0` records) may have a path in a directory that
    is never a source: when not, there is no need to check its paths one by one."""
    return _SKIPPED_PART.search(b"\t" + listing) is not None


def _staged(listing: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """Content ids of the files in git's index (`ls-files -s -z`), and its symlinks. One regex over
    the whole listing: a large repository's index has tens of thousands of entries."""
    entries = _STAGED_ENTRY.findall(listing)
    if len(entries) != listing.count(b"\0"):
        raise ValueError("unexpected `git ls-files -s` output")
    if may_hold_skipped(listing):
        entries = [e for e in entries if not in_skipped_dir(e[2].decode("utf-8", "surrogateescape"))]
    digests: dict[str, str] = {}
    links: dict[str, str] = {}
    for mode, blob, path_b in entries:
        path = path_b.decode("utf-8", "surrogateescape")
        if mode == b"100755":
            digests[path] = f"git:{blob.decode()}+x"
        elif mode == b"120000":
            links[path] = blob.decode()
        elif mode != b"160000":                     # submodules are not our sources
            digests[path] = "git:" + blob.decode()
    return digests, links


_CHUNK = 1 << 20


def _content_id(path: Path, git: bool) -> str:
    """Read in chunks (a large data file is never held whole), through `open_regular`: a FIFO is
    refused, not waited on. Content ids carry the executable bit (all an artifact keeps of a mode)."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        h = hashlib.sha1(b"blob %d\0" % info.st_size) if git else hashlib.sha256()
        read = 0
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            read += len(chunk)
    if git and read != info.st_size:
        # Grew or shrank while read: the header is wrong. The id must still name these bytes.
        raise OSError(errno.EAGAIN, "changed while dkb was reading it; run the command again", str(path))
    return ("git:" if git else "sha256:") + h.hexdigest() + ("+x" if info.st_mode & 0o100 else "")


def _resolve_links(root: Path, links: dict[str, str], digests: dict[str, str], walk: _Walk,
                   git: bool) -> tuple[str, ...]:
    """File symlinks inside the workspace count as their target's content; links out of it are
    listed (escaping); the rest (loops, dangling, directories) are recorded as not followed."""
    escaping = []
    for path in sorted(links):
        full = root / path
        try:
            target = full.resolve(strict=True)
        except RuntimeError:
            walk.unfollowed[path] = "it loops"
            continue
        except OSError as exc:
            walk.unfollowed[path] = "it loops" if exc.errno == errno.ELOOP else "its target does not exist"
            continue
        if not target.is_relative_to(root):
            escaping.append(path)
        elif target.is_dir():
            walk.unfollowed[path] = "it links a directory (directory links are not followed)"
        else:
            content = walk.content_id(root, path, git, full=target)
            if content is not None:
                digests[path] = content
    return tuple(escaping)


def _index_walk(root: Path, walk: _Walk) -> FileIndex:
    """Outside git: every regular file below the root, by one scandir per directory (its entry
    types say, without a stat, what is a file, a directory, a link or something else)."""
    digests: dict[str, str] = {}
    links: dict[str, str] = {}
    pending = [("", str(root))]
    while pending:
        prefix, directory = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except FileNotFoundError:
            continue
        except OSError as exc:
            walk.unreadable[prefix] = exc.strerror or str(exc)
            continue
        subdirs = []
        for entry in entries:
            rel = prefix + entry.name
            try:
                if entry.is_symlink():
                    links[rel] = ""
                elif entry.is_dir(follow_symlinks=False):
                    if entry.name not in ALWAYS_SKIPPED_DIRS:
                        subdirs.append((rel + "/", entry.path))
                elif entry.is_file(follow_symlinks=False):
                    content = walk.content_id(root, rel, git=False, full=Path(entry.path))
                    if content is not None:
                        digests[rel] = content
                else:
                    walk.special[rel] = kind_of(entry.stat(follow_symlinks=False).st_mode)
            except FileNotFoundError:
                continue                    # removed while listed
        pending.extend(reversed(subdirs))
    return FileIndex(root, digests, False, _resolve_links(root, links, digests, walk, git=False))


_GLOB_TOKEN = re.compile(r"\*\*/?|\*|\?|[^*?]+")


@functools.lru_cache(maxsize=1024)      # keys ask for a rule's ignore globs once per target
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob: `**` spans directories, `*` and `?` stay within one. Matches a path or a prefix dir."""
    parts = []
    for token in _GLOB_TOKEN.findall(pattern.strip("/")):
        if token.startswith("**"):
            parts.append("(?:.*/)?" if token.endswith("/") else ".*")
        elif token == "*":
            parts.append("[^/]*")
        elif token == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(token))
    return re.compile("^" + "".join(parts) + "(?:/.*)?$")


def path_selector(include: list[str], exclude: list[str]):  # type: ignore[no-untyped-def]
    """A predicate on workspace-relative paths from include/exclude globs."""
    if not exclude and (not include or "**" in include):
        return lambda path: True          # the default: everything (asked once per file)
    inc = [glob_regex(p) for p in include] or [glob_regex("**")]
    exc = [glob_regex(p) for p in exclude]

    def selected(path: str) -> bool:
        return any(r.match(path) for r in inc) and not any(r.match(path) for r in exc)
    return selected

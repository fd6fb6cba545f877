"""Every file of a workspace with a content id, without trusting mtimes (DESIGN §4).

Inside git, tracked and unmodified files take git's own blob id from one `git ls-files -s` call;
modified and untracked (not ignored) files are hashed the same way git would. Outside git every
file is read and hashed. Either way the same tree gives the same ids in any directory.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

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

    def __contains__(self, path: str) -> bool:
        return path in self.digests


def _exec_suffix(path: Path) -> str:
    """Content ids carry the executable bit (all an artifact keeps of a file's mode)."""
    return "+x" if path.stat().st_mode & 0o100 else ""


def is_executable(content_id: str) -> bool:
    return content_id.endswith("+x")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def index_files(root: Path) -> FileIndex:
    """Every workspace file with its content id, minus what `.dkbignore` files exclude (and, outside
    git, `.gitignore` files; inside git, git applies them)."""
    from dkbuild.ignorefiles import DKBIGNORE, ignored_paths

    root = root.resolve()
    index = _index_git(root) or _index_walk(root)
    names = (DKBIGNORE,) if index.in_git else (DKBIGNORE, ".gitignore")
    for path in ignored_paths(index.digests, lambda p: (root / p).read_bytes(), names):
        del index.digests[path]
    return index


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


def _index_git(root: Path) -> FileIndex | None:
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
        full = root / path
        if full.is_symlink():
            links[path] = ""
            digests.pop(path, None)
            continue
        if full.is_file():
            digests[path] = _content_id(full, git=True)
    for path in deleted:
        digests.pop(path, None)
    escaping = _resolve_links(root, links, digests, git=True)
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


def _content_id(path: Path, git: bool) -> str:
    data = path.read_bytes()
    digest = "git:" + git_blob_id(data) if git else "sha256:" + hashlib.sha256(data).hexdigest()
    return digest + _exec_suffix(path)


def _resolve_links(root: Path, links: dict[str, str], digests: dict[str, str], git: bool) -> tuple[str, ...]:
    """File symlinks inside the workspace count as their target's content; the rest are refused."""
    escaping = []
    for path in sorted(links):
        full = root / path
        try:
            target = full.resolve(strict=True)
        except (OSError, RuntimeError):
            continue  # dangling or looping link: nothing to read
        if not target.is_relative_to(root):
            escaping.append(path)
        elif target.is_file():
            digests[path] = _content_id(target, git)
    return tuple(escaping)


def _index_walk(root: Path) -> FileIndex:
    digests: dict[str, str] = {}
    links: dict[str, str] = {}
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(directory, root)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        kept = []
        for d in dirnames:
            if d in ALWAYS_SKIPPED_DIRS:
                continue
            if os.path.islink(os.path.join(directory, d)):
                # Directory links are not followed; one escaping the workspace is worth a warning.
                target = Path(directory, d).resolve()
                if not target.is_relative_to(root):
                    links[prefix + d] = ""
                continue
            kept.append(d)
        dirnames[:] = sorted(kept)
        for name in filenames:
            full = os.path.join(directory, name)
            if os.path.islink(full):
                links[prefix + name] = ""
                continue
            digests[prefix + name] = _content_id(Path(full), git=False)
    return FileIndex(root, digests, False, _resolve_links(root, links, digests, git=False))


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

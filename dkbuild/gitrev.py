"""A workspace as it was at a git revision, read straight from git objects: no checkout, no temp dir.

`index_at_revision` lists the tree once (`git ls-tree -r -l -z`) and gives every file of the
workspace the same content id the working tree would give it (`git:<blob sha1>`), so keys computed
from a revision equal keys computed from a fresh checkout of it. File bytes come from one
long-lived `git cat-file --batch` process, started on the first read.

Git problems that would make an answer wrong (not a repository, an unknown ref, a shallow clone, no
merge base) are DkbError diagnostics. Nothing here ever falls back to "everything changed".
"""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from dkbuild.diagnostics import DkbError, error
from dkbuild.ignorefiles import ignored_paths
from dkbuild.sources import FileIndex, in_skipped_dir, may_hold_skipped

LINK_MODE, SUBMODULE_MODE, EXECUTABLE_MODE = "120000", "160000", "100755"
_MAX_LINK_HOPS = 40          # like the kernel's ELOOP limit
_OUTSIDE = "\0outside"       # a link resolution that leaves the repository
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class GitError(DkbError):
    """A git problem, as a diagnostic (exit 2)."""


def _fail(code: str, where: str, message: str, hint: str) -> GitError:
    return GitError(error(code, where, message, hint=hint))


def _run(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.run(["git", "-C", str(cwd), "-c", "core.quotepath=off", *args],
                              capture_output=True, check=False, env=_git_env())
    except FileNotFoundError:
        raise _fail("E150", str(cwd), "git is not installed", "install git: --since reads the history from it") from None
    if check and proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        raise _fail("E155", str(cwd), f"git {args[0]} failed: {stderr or 'exit ' + str(proc.returncode)}",
                    "check the repository with `git status` and `git fsck`")
    return proc


def _git_env() -> dict[str, str]:
    # Paths given to git are paths, never globs; messages are never parsed; never page or prompt.
    return {**os.environ, "GIT_LITERAL_PATHSPECS": "1", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"}


# --- repository and revisions -------------------------------------------------------------------

@dataclass(frozen=True)
class Repository:
    toplevel: Path      # the work tree's top directory
    prefix: str         # the workspace root relative to it, posix, "" at the top
    shallow: bool = False


def repository_of(root: Path) -> Repository:
    """The git work tree holding `root` (one `git rev-parse`); an error if there is none."""
    root = root.resolve()
    proc = _run(root, "rev-parse", "--is-inside-work-tree", "--show-toplevel", "--show-prefix",
                "--is-shallow-repository", check=False)
    lines = proc.stdout.decode("utf-8", "surrogateescape").split("\n")
    if proc.returncode != 0 or len(lines) < 4 or lines[0].strip() != "true":
        raise _fail("E150", str(root), "--since needs a git repository, and the workspace is not inside one",
                    "run dkb from a git clone (`git clone ...`), or drop --since")
    return Repository(Path(lines[1].strip()), lines[2].strip().rstrip("/"), lines[3].strip() == "true")


def resolve_commit(root: Path, ref: str) -> str:
    """The commit a ref names (a branch, tag, sha, `HEAD~3`, `origin/main`)."""
    if not ref or ref.startswith("-"):
        raise _fail("E151", ref or "(empty)", f"'{ref}' is not a git revision", "pass a branch, tag or commit")
    proc = _run(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0:
        if ref == "HEAD":
            hint = "commit something first: the repository has no commits"
        elif ref.startswith(("HEAD~", "HEAD^", "@~", "@^")):
            hint = "the history does not go back that far here (in a shallow clone: `git fetch --unshallow`)"
        else:
            hint = f"fetch it first: `git fetch origin {ref.removeprefix('origin/')}`"
        raise _fail("E151", ref, f"unknown git revision '{ref}'", hint)
    return proc.stdout.decode().strip()


@dataclass(frozen=True)
class Since:
    ref: str
    commit: str         # what REF names
    merge_base: str     # where the comparison starts
    repository: Repository


def merge_base(root: Path, ref: str) -> Since:
    """`git merge-base REF HEAD`, refusing shallow clones (their history cannot be trusted to hold it)."""
    repo = repository_of(root)
    if repo.shallow:
        raise _fail("E152", ref, "the repository is a shallow clone: the history needed to compare with "
                    f"'{ref}' may be missing, so the affected targets cannot be known",
                    "fetch the full history: `git fetch --unshallow` (GitHub Actions: "
                    "actions/checkout with `fetch-depth: 0`)")
    commit = resolve_commit(root, ref)
    proc = _run(root, "merge-base", commit, "HEAD", check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        resolve_commit(root, "HEAD")        # a repository with no commit yet says so
        raise _fail("E153", ref, f"'{ref}' and HEAD have no common ancestor (unrelated histories)",
                    f"compare with a revision that shares history with HEAD, e.g. the branch this one "
                    f"was created from; or fetch it fully: `git fetch origin {ref.removeprefix('origin/')}`")
    return Since(ref, commit, proc.stdout.decode().strip(), repo)


# --- the tree at a revision ---------------------------------------------------------------------

@dataclass(frozen=True)
class TreeEntry:
    mode: str
    blob: str
    size: int           # -1 for submodules


class BlobReader:
    """One `git cat-file --batch` process for the life of the reader; started on first use."""

    def __init__(self, toplevel: Path):
        self._toplevel = toplevel
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            self._proc = subprocess.Popen(["git", "-C", str(self._toplevel), "cat-file", "--batch"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, env=_git_env())
        return self._proc

    def read(self, blob: str) -> bytes:
        return self.read_many([blob])[blob]

    def read_many(self, blobs: Iterable[str]) -> dict[str, bytes]:
        """Contents of many objects. A large request is written from a thread while the replies are
        read, so a full pipe in either direction never deadlocks."""
        wanted = list(dict.fromkeys(blobs))
        if not wanted:
            return {}
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            stdin, stdout = proc.stdin, proc.stdout
            request = b"".join(b.encode("ascii") + b"\n" for b in wanted)
            writer_error: list[Exception] = []

            def write() -> None:
                try:
                    stdin.write(request)
                    stdin.flush()
                except (OSError, ValueError) as exc:  # git died: surfaced below, after the reads
                    writer_error.append(exc)

            # A small request always fits the (empty) pipe: no thread needed.
            writer = threading.Thread(target=write, daemon=True)
            if len(request) <= 4096:
                write()
            else:
                writer.start()
            found: dict[str, bytes] = {}
            missing: list[str] = []
            died = False
            try:
                # Every reply is read, even after a missing object, so git never blocks on a full pipe.
                for blob in wanted:
                    header = stdout.readline()
                    if not header:
                        died = True
                        break
                    parts = header.split()
                    if len(parts) != 3:
                        missing.append(blob)       # "<sha> missing"
                        continue
                    found[blob] = stdout.read(int(parts[2]))
                    stdout.read(1)                 # the newline after the contents
            finally:
                if died or len(found) + len(missing) < len(wanted):
                    proc.kill()                    # unblocks the writer
                    self._forget()
                if writer.ident is not None:
                    writer.join()
            if died or writer_error:
                cause = writer_error[0] if writer_error else "the process ended early"
                raise _fail("E155", wanted[0], f"git cat-file failed: {cause}", "check the repository with `git fsck`")
            if missing:
                raise _fail("E155", missing[0], f"git object {missing[0]} is missing from the repository",
                            "the clone is incomplete: fetch the history again (`git fetch`)")
            return found

    def _forget(self) -> None:
        if self._proc is not None:
            self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
            self._proc = None

    def close(self) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            self._forget()


@dataclass(frozen=True, eq=False)
class RevisionTree(FileIndex):
    """A FileIndex of the workspace at one commit, which can also read its files (a manifest source).

    `digests` follows sources.index_files: regular files get `git:<blob>`, file symlinks inside the
    workspace count as their target's content, escaping ones are listed, submodules and the
    always-skipped directories are left out.
    """
    commit: str = ""
    prefix: str = ""                                             # workspace dir inside the repository
    toplevel: Path = Path(".")
    entries: dict[str, TreeEntry] = field(default_factory=dict)  # every tree entry, workspace-relative
    links: dict[str, str] = field(default_factory=dict)          # file link -> the file it resolves to
    reader: BlobReader | None = None
    _prefetched: dict[str, bytes] = field(default_factory=dict, repr=False)

    # --- the manifest-source protocol of manifests.loader (read, size, prefetch) ---
    def _entry(self, path: str) -> TreeEntry:
        if path not in self.digests:
            raise FileNotFoundError(f"{path} is not in the tree of {self.commit[:12]}")
        return self.entries[self.links.get(path, path)]

    def _reader(self) -> BlobReader:
        if self.reader is None:
            raise RuntimeError("this RevisionTree has no blob reader")
        return self.reader

    def size(self, path: str) -> int:
        return self._entry(path).size

    def read(self, path: str) -> bytes:
        blob = self._entry(path).blob
        data = self._prefetched.pop(blob, None)
        return self._reader().read(blob) if data is None else data

    def prefetch(self, paths: Iterable[str]) -> None:
        """Fetch many files in one pipelined exchange with cat-file; `read` then takes them from memory."""
        self._prefetched.update(self._reader().read_many(self._entry(p).blob for p in paths))

    def close(self) -> None:
        self._prefetched.clear()
        if self.reader is not None:
            self.reader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def index_at_revision(root: Path, rev: str, *, repository: Repository | None = None) -> RevisionTree:
    """Every file of the workspace rooted at `root` (a directory of a git work tree), as of `rev`."""
    root = root.resolve()
    repo = repository or repository_of(root)
    commit = rev if _FULL_SHA.fullmatch(rev) else resolve_commit(root, rev)
    args = ["ls-tree", "-r", "-l", "-z", "--full-tree", commit]
    if repo.prefix:
        args += ["--", repo.prefix + "/"]
    listing = _run(repo.toplevel, *args).stdout
    cut = len(repo.prefix) + 1 if repo.prefix else 0
    # One regex over the whole listing: a large tree has tens of thousands of records.
    records = _TREE_RECORD.findall(listing)
    if len(records) != listing.count(b"\0"):
        raise _fail("E150", commit[:12], "unexpected `git ls-tree` output",
                    "check that `git ls-tree -r -l -z` works in this repository")
    entries = {path_b.decode("utf-8", "surrogateescape")[cut:]:
               TreeEntry(mode.decode(), blob.decode(), -1 if size == b"-" else int(size))
               for mode, blob, size, path_b in records}
    check_skipped = may_hold_skipped(listing)
    reader = BlobReader(repo.toplevel)
    digests: dict[str, str] = {}
    links: list[str] = []
    for path, entry in entries.items():
        if entry.mode == SUBMODULE_MODE or (check_skipped and in_skipped_dir(path)):
            continue
        if entry.mode == LINK_MODE:
            links.append(path)
        else:
            digests[path] = _content_id(entry)
    resolved, escaping = _resolve_links(links, entries, repo, reader)
    for link, target in resolved.items():
        digests[link] = _content_id(entries[target])
    # The same .dkbignore rules as the working tree (sources.index_files), read from the commit.
    for path in ignored_paths(digests, lambda p: reader.read(entries[resolved.get(p, p)].blob)):
        del digests[path]
    return RevisionTree(root=root, digests=digests, in_git=True, escaping_links=escaping, commit=commit,
                        prefix=repo.prefix, toplevel=repo.toplevel, entries=entries, links=resolved,
                        reader=reader)


# One `git ls-tree -r -l -z` record: mode, type, object id, size (padded; "-" if none), tab, path.
_TREE_RECORD = re.compile(rb"(\d+) \w+ ([0-9a-f]+) +(-|\d+)\t([^\0]*)\0")


def _content_id(entry: TreeEntry) -> str:
    """As sources.index_files spells it: the blob id, and `+x` for an executable file."""
    return "git:" + entry.blob + ("+x" if entry.mode == EXECUTABLE_MODE else "")


def _resolve_links(links: list[str], entries: dict[str, TreeEntry], repo: Repository,
                   reader: BlobReader) -> tuple[dict[str, str], tuple[str, ...]]:
    """Like sources._resolve_links, on the tree: a link to a file inside the workspace counts as that
    file; one leading out of the workspace is listed (escaping); dangling links, loops and links to
    directories are nothing."""
    if not links:
        return {}, ()
    contents = reader.read_many(entries[p].blob for p in links)
    targets = {p: contents[entries[p].blob].decode("utf-8", "surrogateescape") for p in links}
    directories: set[str] = set()
    for path in entries:
        parent = posixpath.dirname(path)
        while parent and parent not in directories:
            directories.add(parent)
            parent = posixpath.dirname(parent)
    resolver = _LinkResolver(entries, directories, targets, repo)
    resolved: dict[str, str] = {}
    escaping = []
    for path in sorted(links):
        final = resolver.resolve(path)
        if final == _OUTSIDE:
            escaping.append(path)
        elif final is not None:
            resolved[path] = final
    return resolved, tuple(escaping)


class _LinkResolver:
    """Resolves a path component by component, as the kernel does (links in the middle too).

    `resolve` gives the workspace-relative path of a regular file, None (dangling, a loop, a
    directory, a submodule), or _OUTSIDE when the path ends outside the workspace somewhere real.
    """

    def __init__(self, entries: dict[str, TreeEntry], directories: set[str], targets: dict[str, str],
                 repo: Repository):
        self.entries = entries
        self.directories = directories
        self.targets = targets
        self.workspace_on_disk = repo.toplevel / repo.prefix if repo.prefix else repo.toplevel

    def resolve(self, path: str) -> str | None:
        pending = path.split("/")
        done: list[str] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if done:
                    done.pop()
                    continue
                # Above the workspace root: fine if the path comes back into it (`../ws/x`).
                where = self._inside(os.path.normpath(self.workspace_on_disk.parent.joinpath(*pending)))
                if where is None:
                    return self._outside(self.workspace_on_disk.parent.joinpath(*pending))
                done, pending = [], [p for p in where.split("/") if p]
                continue
            candidate = "/".join(done + [part])
            entry = self.entries.get(candidate)
            if entry is not None and entry.mode == LINK_MODE:
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    return None
                target = self.targets[candidate]
                if target.startswith("/"):
                    where = self._inside(os.path.normpath(target))
                    if where is None:
                        return self._outside(Path(target).joinpath(*pending))
                    done, pending = [], where.split("/") + pending
                else:
                    pending = target.split("/") + pending
                continue
            if entry is None and candidate not in self.directories:
                return None                      # nothing there: dangling
            done.append(part)
            if entry is not None and any(p not in ("", ".") for p in pending):
                return None                      # a file (or submodule) used as a directory
        final = "/".join(done)
        entry = self.entries.get(final)
        return final if entry is not None and entry.mode not in (LINK_MODE, SUBMODULE_MODE) else None

    def _inside(self, absolute: str) -> str | None:
        """An absolute path inside this workspace on disk, made workspace-relative."""
        try:
            rel = Path(absolute).relative_to(self.workspace_on_disk).as_posix()
        except ValueError:
            return None
        return "" if rel == "." else rel

    @staticmethod
    def _outside(path: Path) -> str | None:
        # The working tree warns only about escaping links that lead somewhere real.
        return _OUTSIDE if path.exists() else None

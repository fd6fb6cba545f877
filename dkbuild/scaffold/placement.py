"""Where `dkb init` may put a package: only where dkb will index, load and build it later.

A package under a directory dkb never reads (.dkb, .git, node_modules, ...), in the cache
directory, under a directory link, in a path no label can name, or under an ignore rule would be
created and then never seen again: each is refused before anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path

from dkbuild.fsutil import read_regular
from dkbuild.gitinfo import git_output
from dkbuild.graph.labels import PatternError, parse_pattern
from dkbuild.ignorefiles import DKBIGNORE, ignored_paths
from dkbuild.sources import ALWAYS_SKIPPED_DIRS


def unbuildable(root: Path, rel: str, cache_dir: Path) -> tuple[str, str] | None:
    """Why a package at `rel` (workspace-relative, normalised) could never be built, with the fix;
    None when it can be."""
    parts = rel.split("/")
    if parts[0] == "..":
        return (f"{rel} is outside the workspace at {root}",
                "create the package inside the workspace (or create a workspace there with --workspace)")
    skipped = [p for p in parts if p in ALWAYS_SKIPPED_DIRS]
    if skipped:
        return (f"{rel} is inside {skipped[0]}/, a directory dkb never reads",
                "choose a directory outside .dkb, .git, virtualenvs and tool caches, e.g. pipelines/NAME")
    target = root / rel
    if target.absolute().is_relative_to(cache_dir.absolute()):
        return (f"{rel} is inside the cache directory ([cache] dir)", "choose a directory outside it")
    try:
        named = parse_pattern("//" + rel).package == rel
    except PatternError as exc:
        return f"{rel} cannot be named by a label: {exc}", exc.hint or "rename the directory"
    if not named:
        return (f"{rel} cannot be named by a label", "package paths use letters, digits and - _ . + @ = , ~")
    linked = _linked_dir(root, parts)
    if linked:
        return (f"{linked} is a symlink; dkb does not follow directory links, so the package would "
                "never be read", "create the package in a real directory")
    rule = _ignored(root, rel + "/dk.yaml")
    if rule:
        return f"{rel} is ignored by {rule}", f"create it elsewhere, or stop ignoring {rel} in {rule}"
    return None


def _linked_dir(root: Path, parts: list[str]) -> str:
    for depth in range(1, len(parts) + 1):
        path = root.joinpath(*parts[:depth])
        if path.is_symlink():
            return "/".join(parts[:depth])
        if not path.exists():
            break
    return ""


def _ignored(root: Path, path: str) -> str:
    """Which ignore file keeps `path` out of the index: .dkbignore always, .gitignore (by git itself
    in a repository, else by dkb's reading of it)."""
    in_git = git_output(root, "rev-parse", "--is-inside-work-tree") == "true"
    if in_git and git_output(root, "check-ignore", "--", path) is not None:   # prints the path if ignored
        return ".gitignore"
    names = (DKBIGNORE,) if in_git else (DKBIGNORE, ".gitignore")
    dirs = [""] + ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
    files = [f"{d}/{n}" if d else n for d in dirs for n in names if os.path.isfile(root / d / n)]

    def read(p: str) -> bytes:
        try:
            return read_regular(root / p)
        except OSError:
            return b""
    for name in names:
        if path in ignored_paths([path, *(f for f in files if f.endswith(name))], read, (name,)):
            return name
    return ""


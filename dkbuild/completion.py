"""Label completion for PATTERNS/TARGET arguments (click `shell_complete`).

Package paths come from a walk for dk.yaml files (no manifest is parsed), so `//pipe<TAB>` stays
fast on big workspaces. Only `//pkg:<TAB>` (target names) loads the graph.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

MANIFEST = "dk.yaml"
_SKIP_DIRS = {".git", ".dkb", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"}


def package_dirs(root: Path, include: list[str] | None = None, exclude: list[str] | None = None) -> list[str]:
    """Workspace-relative directories holding a dk.yaml, sorted, honouring [workspace] packages/exclude."""
    selected = None
    if include is not None or exclude:
        from dkbuild.sources import path_selector

        selected = path_selector(include if include is not None else ["**"], exclude or [])
    found: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        if MANIFEST in files:
            rel = Path(directory).relative_to(root).as_posix()
            rel = "" if rel == "." else rel
            if selected is None or selected(f"{rel}/{MANIFEST}" if rel else MANIFEST):
                found.append(rel)
    return sorted(found)


def _prefixes(packages: list[str]) -> set[str]:
    """Directories with a package strictly below them (they take `/...`)."""
    out: set[str] = set()
    for package in packages:
        parts = package.split("/") if package else []
        for i in range(1, len(parts)):
            out.add("/".join(parts[:i]))
    return out


def label_candidates(root: Path, incomplete: str, current_package: str = "",
                     include: list[str] | None = None, exclude: list[str] | None = None) -> list[str]:
    """Completions of `incomplete`: `//pkg`, `//dir/...`, `//pkg:all`, `//pkg:name`, `:name`, with a
    leading `-` (subtraction) kept. Relative forms resolve against `current_package`."""
    sign = "-" if incomplete.startswith("-") else ""
    text = incomplete[len(sign):]
    if text.startswith("//"):
        absolute, shown = text[2:], "//"
    elif text.startswith(":"):
        absolute, shown = (current_package + text), ":"
    elif not text:
        absolute, shown = "", "//"
    else:
        return []   # bare relative paths: leave them to the shell
    packages = package_dirs(root, include, exclude)
    path, colon, name = absolute.partition(":")
    if colon:
        names = ["all", *sorted(_target_names(root, path))]
        prefix = "//" + path + ":" if shown == "//" else ":"
        return [sign + prefix + n for n in names if n.startswith(name)]
    dirs = _prefixes(packages)
    out: set[str] = set()
    if "...".startswith(path):
        out.add("//...")
    for package in packages:
        if package and package.startswith(path):
            out.add(f"//{package}")
    for directory in dirs:
        if directory.startswith(path):
            out.add(f"//{directory}/...")
    if path.endswith("/") and path[:-1] in dirs:
        out.add(f"//{path}...")
    # Complete one path segment at a time when there are many matches, as shells do for files.
    result = sorted(out)
    if len(result) > 40:
        depth = path.count("/")
        result = sorted({_cut(c, depth) for c in result})
    return [sign + c for c in result if c.startswith("//" + path)]


def _cut(candidate: str, depth: int) -> str:
    body = candidate[2:]
    parts = body.split("/")
    if len(parts) <= depth + 1:
        return candidate
    return "//" + "/".join(parts[:depth + 1]) + "/"


def _target_names(root: Path, package: str) -> list[str]:
    """Target names in `package` (needs the graph: names live inside manifests)."""
    try:
        from dkbuild.api import load

        loaded = load(root)
    except Exception:  # noqa: BLE001 - completion must never crash the shell
        return []
    names: set[str] = set()
    for node_id in loaded.graph.package_nodes.get(package, ()):
        node = loaded.graph.nodes.get(node_id)
        for label in (node.labels if node else (node_id,)):
            pkg, _, name = label[2:].partition(":")
            if pkg == package and name:
                names.add(name)
        if node is not None and node.package == package:
            names.add(node.name)
    return sorted(names)


def complete_labels(ctx: Any, param: Any, incomplete: str) -> list[Any]:
    """click `shell_complete` for PATTERNS/TARGET arguments (attach with `shell_complete=complete_labels`)."""
    from click.shell_completion import CompletionItem

    from dkbuild.workspace import find_root, load_workspace

    start = Path(_directory(ctx)).resolve()
    root = find_root(start)
    if root is None:
        return []
    include: list[str] | None = None
    exclude: list[str] | None = None
    with contextlib.suppress(Exception):   # a broken workspace.toml still completes paths
        config = load_workspace(start).config
        include, exclude = config.workspace.packages, config.workspace.exclude
    rel = start.relative_to(root).as_posix() if start != root else ""
    current = "" if rel == "." else rel
    return [CompletionItem(c) for c in label_candidates(root, incomplete, current, include, exclude)]


def _directory(ctx: Any) -> str:
    """`-C DIR` of the root command. While completing, click parses resiliently and runs no
    callbacks, so the value is in the root context's params, not yet in ctx.obj."""
    if ctx is None:
        return "."
    root = ctx.find_root()
    return (root.obj or {}).get("directory") or root.params.get("directory") or "."

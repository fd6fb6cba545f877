"""Which packages a promote/rollback/status argument names: a dkb label or pattern (`//pipelines/x`,
`//...`), a directory (`.`, `./pipelines/x`: every package at or below it), or a package name as
dk gives it (`kafka-s3-pipeline`, `team-a/ingest`: a Transform's metadata.name, with its
namespace when two share a name)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from dkbuild.graph.labels import PatternError
from dkbuild.graph.select import select, transforms_named


def _is_pattern(arg: str) -> bool:
    return arg.startswith(("//", ":", "-"))


def _directory_pattern(arg: str, root: Path) -> str | None:
    """`//rel/...` for an existing directory inside the workspace, else None."""
    path = Path(arg)
    if not path.is_dir() or arg.endswith("..."):
        return None
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        raise PatternError(f"directory {arg} is outside the workspace {root}", arg, 1,
                           "name a directory inside the workspace, or a package label") from None
    return "//..." if str(rel) == "." else f"//{rel.as_posix()}/..."


def names_a_package(loaded: Any, arg: str) -> bool:
    """Whether `arg` names something to deploy: a pattern, a directory, a package name or a relative label."""
    if _is_pattern(arg) or Path(arg).is_dir() or transforms_named(loaded.graph, arg):
        return True
    try:
        return bool(select(loaded.graph, [arg], loaded.current_package))
    except PatternError:
        return False


def resolve(loaded: Any, args: list[str]) -> set[str]:
    """Node ids the arguments name (all of them for no argument). Unknown names are PatternError."""
    if not args:
        return select(loaded.graph, [], loaded.current_package)
    root = loaded.workspace.root
    selected: set[str] = set()
    for arg in args:
        if _is_pattern(arg):
            found = select(loaded.graph, [arg.removeprefix("-")], loaded.current_package)
        elif (pattern := _directory_pattern(arg, root)) is not None:
            found = select(loaded.graph, [pattern], "")
        else:
            found = transforms_named(loaded.graph, arg) or _as_label(loaded, arg)
        if arg.startswith("-"):
            selected -= found
        else:
            selected |= found
    return selected


def _as_label(loaded: Any, arg: str) -> set[str]:
    """A relative label (`ingest` from inside `pipelines/`), else a "no such package" error."""
    try:
        return select(loaded.graph, [arg], loaded.current_package)
    except PatternError:
        pass
    names = sorted({n.name for n in loaded.graph.nodes.values() if n.kind == "Transform"})
    close = difflib.get_close_matches(arg, names, n=3, cutoff=0.6)
    where = os.path.relpath(loaded.workspace.root)
    hint = (f"did you mean {', '.join(close)}?" if close
            else "name a package by its dk.yaml metadata.name, its directory, or its label (see `dkb query //...`)")
    raise PatternError(f"no package named '{arg}' in the workspace at {where} (looked for a metadata.name, "
                       "a directory and a label)", arg, 1, hint)

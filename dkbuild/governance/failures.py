"""Which targets a problem blocks, the way Bazel's --keep_going does: a manifest that cannot be
loaded, or a lint error, fails its own target and every target that depends on it, and nothing
else. Pure: it reads the graph, the load result and the lint findings."""

from __future__ import annotations

import posixpath
from collections import deque
from dataclasses import dataclass

from dkbuild.diagnostics import Diagnostic
from dkbuild.graph.model import Graph
from dkbuild.manifests.layout import PACKAGE_FILE, RESOURCE_DIR_OF, owning_package
from dkbuild.manifests.result import LoadResult


@dataclass(frozen=True)
class Blocked:
    """A target that will not be built, and why (each reason one line a person can act on)."""
    label: str
    reasons: tuple[str, ...]
    files: tuple[str, ...] = ()     # the files whose problems block it (its own or a dependency's)


def located(d: Diagnostic) -> str:
    return f"{d.file}:{d.line}:{d.column}: {d.code} {d.message}"


def unloadable_packages(result: LoadResult, graph: Graph) -> dict[str, list[Diagnostic]]:
    """Package directories whose own dk.yaml could not be loaded at all: they have no target in
    the graph, but a build of them must fail, not vanish."""
    broken: dict[str, list[Diagnostic]] = {}
    defined = _defined_files(graph)
    for d in result.diagnostics:
        if d.is_error and posixpath.basename(d.file) == PACKAGE_FILE and d.file not in defined:
            broken.setdefault(posixpath.dirname(d.file), []).append(d)
    return broken


def blocked_targets(graph: Graph, result: LoadResult, diagnostics: list[Diagnostic]) -> dict[str, Blocked]:
    """Every target an error blocks, by label: the targets defined in the file of an error (or in
    the package of a file that could not be loaded), the targets whose references lead to a name
    such a file may have defined, and, transitively, everything that references a blocked target."""
    defined_in: dict[str, set[str]] = {}
    for node in graph.nodes.values():
        for m in node.definitions:
            defined_in.setdefault(m.file, set()).add(node.id)
    # The lint findings carry their final severity; a file that did not load blocks whatever the
    # selection, since nothing else stands for it.
    errors = {d for d in diagnostics if d.is_error} | {d for d in result.skipped if d.file not in defined_in}
    packages = set(graph.package_nodes) | set(unloadable_packages(result, graph))
    reasons: dict[str, list[str]] = {}
    files: dict[str, set[str]] = {}

    def block(node_id: str, why: str, file: str) -> None:
        if why not in reasons.setdefault(node_id, []):
            reasons[node_id].append(why)
        files.setdefault(node_id, set()).add(file)

    lost_names: dict[tuple[str, str], Diagnostic] = {}
    for d in sorted(errors, key=lambda d: (d.file, d.line, d.code)):
        if d.file in defined_in:
            for node_id in defined_in[d.file]:
                block(node_id, located(d), d.file)
            continue
        # A file that defines nothing: it failed to load. Its package is incomplete, and any name
        # it may have defined cannot be trusted to be external.
        package = owning_package(d.file, packages)
        for node_id in graph.package_nodes.get(package, ()) if package is not None else ():
            block(node_id, f"its package has a manifest that could not be loaded: {located(d)}", d.file)
        for kind, name in _names_it_may_define(d.file):
            lost_names.setdefault((kind, name), d)
    for ref in graph.externals:
        lost = lost_names.get((ref.kind, ref.name)) or lost_names.get(("", ref.name))
        if lost is not None:
            block(ref.node, f"references {ref.kind} '{ref.name}' at {ref.field}, which {lost.file} may define "
                            f"but could not be loaded: {located(lost)}", lost.file)
    _propagate(graph, reasons, files)
    return {label: Blocked(label, tuple(why), tuple(sorted(files[label]))) for label, why in sorted(reasons.items())}


def _propagate(graph: Graph, reasons: dict[str, list[str]], files: dict[str, set[str]]) -> None:
    queue = deque(sorted(reasons))
    while queue:
        failed = queue.popleft()
        for edge in graph.in_edges.get(failed, ()):
            if edge.src not in reasons:
                cause = reasons[failed][0]       # the first problem, named all the way up
                link = "which " + cause if cause.startswith("depends on ") else "which has: " + cause
                reasons[edge.src] = [f"depends on {failed} ({edge.field}), {link}"]
                files[edge.src] = set(files[failed])
                queue.append(edge.src)


_KIND_OF_DIR = {directory: kind for kind, directory in RESOURCE_DIR_OF.items()}


def _names_it_may_define(path: str) -> list[tuple[str, str]]:
    """(kind, name) a file that failed to load probably defined: dk names resources after their
    file (`store/s3-raw.yaml`) and packages after their directory (`datasets/events/dk.yaml`).
    Kind "" means any kind."""
    directory, base = posixpath.split(path)
    stem = base.rsplit(".", 1)[0]
    parent = posixpath.basename(directory)
    if base == PACKAGE_FILE:
        return [("", parent)] if parent else []
    if parent in _KIND_OF_DIR:
        return [(_KIND_OF_DIR[parent], stem)]
    return [("", parent)] if parent else []         # a scaffolding file: datasets/<name>/dataset.yaml


def _defined_files(graph: Graph) -> set[str]:
    return {m.file for node in graph.nodes.values() for m in node.definitions}


def select_with_unloadable(graph: Graph, patterns: list[str], current_package: str,
                           unloadable: dict[str, list[Diagnostic]]) -> tuple[set[str], dict[str, Blocked]]:
    """The targets the patterns select, and the packages they name whose dk.yaml could not be
    loaded (as blocked pseudo-targets `//pkg`), so `dkb build //b` reports b's broken file instead
    of "no target matches", and `//...` lists it as failed."""
    from dkbuild.graph.select import select_naming

    selected, named = select_naming(graph, patterns, current_package, unloadable, empty_ok=True)
    broken = {f"//{package}": Blocked(f"//{package}", tuple(located(d) for d in unloadable[package]),
                                      tuple(sorted({d.file for d in unloadable[package]})))
              for package in sorted(named)}
    return selected, broken

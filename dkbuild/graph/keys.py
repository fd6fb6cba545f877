"""Content keys (DESIGN §4): sha256 over a canonical JSON of everything a target depends on.

Components: the kind, the normalized manifest, the digests of the source files the target owns,
the keys of the targets it references, the rule's identity and the workspace.toml sections the
rule reads. Never mtimes, absolute paths, hosts, users or the clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from dkbuild.graph.model import Graph, Node
from dkbuild.manifests.layout import PACKAGE_FILE, is_resource_path, owning_package
from dkbuild.manifests.manifest import Manifest, canonical_json
from dkbuild.sources import FileIndex, glob_regex

if TYPE_CHECKING:     # the typed configuration: imported only by commands that compute keys
    from dkbuild.config_model import WorkspaceConfig
    from dkbuild.workspace import Workspace

KEY_SCHEMA = "dkb-key-v1"   # bump when the key layout itself changes


@dataclass(frozen=True)
class RuleIdentity:
    """What of a build rule goes into keys: its name, version, settings, files it ignores, and the
    digest of its own code (so an edit that forgets to bump `version` still re-keys)."""
    name: str
    version: str
    config_sections: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    code: str = ""


RuleFor = Callable[[Node], "RuleIdentity | None"]


@dataclass(frozen=True)
class KeyComponents:
    kind: str
    manifest: Any
    files: dict[str, str]
    refs: list[list[str]]           # [edge kind, field, referenced kind, referenced name, its key]
    rule: dict[str, Any] | None
    config: dict[str, Any]

    @classmethod
    def bound(cls, source: Manifest, kind: str, files: dict[str, str], refs: list[list[str]],
              rule: dict[str, Any] | None, config: dict[str, Any]) -> KeyComponents:
        """Components whose manifest part is `source`'s data, read only when asked for (a snapshot's
        keys must not unpickle every manifest body to answer a no-op build)."""
        components = object.__new__(cls)
        components.__dict__.update(kind=kind, files=files, refs=refs, rule=rule, config=config, _source=source)
        return components

    def __getattr__(self, name: str) -> Any:
        source = self.__dict__.get("_source")
        if name != "manifest" or source is None:
            raise AttributeError(name)
        self.__dict__["manifest"] = source.data
        return source.data

    def to_json(self) -> dict[str, Any]:
        return {"schema": KEY_SCHEMA, "kind": self.kind, "manifest": self.manifest, "files": self.files,
                "refs": self.refs, "rule": self.rule, "config": self.config}


@dataclass(frozen=True)
class Keys:
    keys: dict[str, str]
    components: dict[str, KeyComponents]
    # The graph's strongly connected components, dependencies first, as the keys were computed in:
    # a later computation over the same graph starts from it instead of walking the graph again.
    order: list[list[str]] | None = field(default=None, compare=False)


def owned_files(graph: Graph, files: FileIndex) -> dict[str, dict[str, str]]:
    """Source files per package-default target: files under the package directory that are not
    manifests, not in resource directories, and not inside a nested package."""
    packages = set(graph.package_default)
    manifest_paths = {d.file for n in graph.nodes.values() for d in n.definitions}
    owned: dict[str, dict[str, str]] = {p: {} for p in packages}
    for path, digest in files.digests.items():
        if path in manifest_paths:
            continue
        package = owning_package(path, packages)
        if package is None or is_resource_path(path, package):
            continue
        owned[package][path[len(package) + 1:] if package else path] = digest
    return owned


def compute_keys(graph: Graph, files: FileIndex, config: WorkspaceConfig | Workspace, rule_for: RuleFor,
                 previous: Keys | None = None, previous_graph: Graph | None = None) -> Keys:
    """Every target's key (`config`: the typed configuration, or a workspace that builds it only if
    a rule hashes a section).

    `previous` may give the keys of `previous_graph` (default: this very graph) under the same rules
    and configuration. A target whose manifest is the very same object there and whose own files
    are unchanged keeps its components; it keeps its key too when its references are the same and
    lead to unchanged keys. Only the rest are keyed again, and the kept ones' manifest bodies stay
    unread: after a source edit that is one package, after a manifest edit that manifest and what
    references it."""
    same_graph = previous_graph is None or previous_graph is graph
    before = graph if previous_graph is None else previous_graph
    if previous is not None and same_graph and previous.keys.keys() != graph.nodes.keys():
        previous = None                   # not this graph's keys after all
    owned = owned_files(graph, files)
    default_of = {node: pkg for pkg, node in graph.package_default.items()}
    local: dict[str, KeyComponents] = {}
    dirty: set[str] = set()
    for node_id, node in graph.nodes.items():
        rule = rule_for(node)
        sources = owned.get(default_of[node_id], {}) if node_id in default_of else {}
        if rule and rule.ignored and sources:
            patterns = [glob_regex(g) for g in rule.ignored]
            sources = {p: d for p, d in sources.items() if not any(r.match(p) for r in patterns)}
        if node_id in default_of and node.kind == "Transform" and node.manifest.layout == "dk.yaml":
            # The package artifact carries its dk.yaml as written (dk's manifest layer), comments
            # and all: the file's own content id is an input, not only its normalized data.
            own = files.digests.get(node.manifest.file)
            if own is not None:
                sources = {**sources, PACKAGE_FILE: own}
        sources = dict(sorted(sources.items()))
        kept = previous.components.get(node_id) if previous is not None else None
        if kept is not None and kept.files == sources and (same_graph or _same_manifest(before, node)):
            local[node_id] = kept
            continue
        dirty.add(node_id)
        local[node_id] = KeyComponents(
            kind=node.kind,
            manifest=node.manifest.data,
            files=sources,
            refs=[],
            rule=None if rule is None else {"name": rule.name, "version": rule.version,
                                            "settings": rule.settings, "code": rule.code},
            config={} if rule is None else {s: config.section(s) for s in rule.config_sections},
        )
    if previous is not None and same_graph and not dirty:
        return previous
    keys: dict[str, str] = {}
    components: dict[str, KeyComponents] = {}
    order = previous.order if previous is not None and same_graph and previous.order is not None \
        else _strongly_connected(graph)
    for scc in order:
        if previous is not None and not any(
                n in dirty or (not same_graph and _references_changed(before, graph, n))
                or any(keys[e.dst] != previous.keys.get(e.dst) for e in graph.out_edges[n]
                       if e.dst in keys and e.dst not in scc) for n in scc):
            for node_id in scc:           # nothing it rests on changed: as before
                components[node_id], keys[node_id] = previous.components[node_id], previous.keys[node_id]
            continue
        cycle_salt = ""
        if len(scc) > 1 or any(e.dst == scc[0] for e in graph.out_edges[scc[0]]):
            # A reference cycle (a lint error) still gets stable keys: members share a salt.
            cycle_salt = _sha256(canonical_json(sorted(canonical_json({**local[n].to_json(), "refs": []})
                                                       for n in scc)))
        for node_id in scc:
            refs = sorted(
                [e.kind.value, e.field, graph.nodes[e.dst].kind, graph.nodes[e.dst].name,
                 keys.get(e.dst, cycle_salt)]
                for e in graph.out_edges[node_id])
            comp = KeyComponents(**{**_fields(local[node_id]), "refs": refs})
            components[node_id] = comp
        for node_id in scc:
            keys[node_id] = _sha256(canonical_json(components[node_id].to_json()) + cycle_salt)
    return Keys(keys, components, order)


def _same_manifest(before: Graph, node: Node) -> bool:
    old = before.nodes.get(node.id)
    return old is not None and old.manifest is node.manifest and old.kind == node.kind


def _references_changed(before: Graph, graph: Graph, node_id: str) -> bool:
    """Whether a target's outgoing references differ between two graphs (a referenced target
    appeared, went away, or became another), or it is in a reference cycle now (its key then
    depends on the whole cycle's)."""
    edges = graph.out_edges[node_id]
    return before.out_edges.get(node_id) != edges or any(e.dst == node_id for e in edges)


def _fields(components: KeyComponents) -> dict[str, Any]:
    return {"kind": components.kind, "manifest": components.manifest, "files": components.files,
            "refs": components.refs, "rule": components.rule, "config": components.config}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components come out dependencies-first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in sorted(graph.nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.dependencies(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.dependencies(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(sorted(component))
    return result

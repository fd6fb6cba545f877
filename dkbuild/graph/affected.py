"""Affected targets: the content-key diff between two graphs (DESIGN §4), each with its reasons.

A target is matched across the two graphs by its identity (kind, namespace, name and scope: shared,
or the package of a package-local copy), never by its label, so a package that moved is the same
target. External nodes are not targets; a change to them shows in the keys of what references them. It is affected when it is new, when its key changed, or when
its label changed (moved). Targets only in the old graph are reported as deleted.

On request, dependents are added: downstream along the data flow (the Transforms that read what an
affected Transform writes) and backwards along reference edges. Keys already fold in the keys of
referenced targets, so the reference direction rarely adds anything; the data-flow direction is
what CI wants when a changed producer should re-run or re-test its consumers.

Reasons name what changed without showing values: a Store's connection may hold secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from dkbuild.graph.keys import KeyComponents, Keys
from dkbuild.graph.model import EdgeKind, Graph
from dkbuild.manifests.layout import PACKAGE_FILE
from dkbuild.manifests.manifest import FieldPath, format_field

DependentsMode = Literal["none", "direct", "transitive"]
DEPENDENTS: tuple[str, ...] = ("none", "direct", "transitive")
COMPONENTS = ("new", "moved", "file", "manifest", "reference", "rule", "config", "dependent")


@dataclass(frozen=True)
class Reason:
    component: str               # one of COMPONENTS
    detail: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"component": self.component, "detail": self.detail}

    def describe(self) -> str:
        d = self.detail
        if self.component == "new":
            return "new target"
        if self.component == "moved":
            return f"moved from {d['from']}"
        if self.component == "file":
            return f"file {_verb(d['change'])}: {d['path']}"
        if self.component == "manifest":
            return f"manifest field {_verb(d['change'])}: {d['field']}"
        if self.component == "reference" and d["change"] == "cycle":
            return "a target in its reference cycle changed"
        if self.component == "reference":
            where = f" ({d['field']})" if d.get("field") else ""
            if d["change"] == "modified":
                return f"referenced target changed: {d['label']}{where}"
            return f"reference {d['change']}: {d['label']}{where}"
        if self.component == "rule":
            return f"rule {d['rule']} changed: {', '.join(d['changes'])}"
        if self.component == "config":
            fields = f": {', '.join(d['fields'])}" if d.get("fields") else ""
            change = "changed" if d.get("change", "modified") == "modified" else d["change"]
            return f"workspace.toml [{d['section']}] {change}{fields}"
        if self.component == "dependent":
            return f"dependent of {d['of']} ({d['via']} {d['field']})"
        return f"{self.component}: {d}"


def _verb(change: str) -> str:
    return {"modified": "changed", "mode": "mode changed"}.get(change, change)


@dataclass(frozen=True)
class AffectedTarget:
    label: str                   # the label now (the node id in the new graph)
    kind: str
    name: str
    reasons: tuple[Reason, ...]

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "reasons": [r.to_json() for r in self.reasons]}


@dataclass(frozen=True)
class AffectedResult:
    targets: dict[str, AffectedTarget]       # by label, sorted
    deleted: tuple[str, ...]                 # labels in the old graph, sorted
    dependents: str = "none"
    since: str = ""                          # the ref asked for (filled in by the caller)
    merge_base: str = ""                     # the commit compared with (filled in by the caller)
    shard: str = ""                          # "k/N" when only one shard's part is listed

    @property
    def labels(self) -> list[str]:
        return list(self.targets)

    def scoped(self, labels: set[str], deleted: set[str]) -> AffectedResult:
        """Only the targets in `labels` (new graph) and deleted ones in `deleted` (old graph)."""
        return replace(self, targets={k: v for k, v in self.targets.items() if k in labels},
                       deleted=tuple(d for d in self.deleted if d in deleted))

    def to_json(self) -> dict[str, Any]:
        document = {"since": self.since, "merge_base": self.merge_base, "dependents": self.dependents,
                    "targets": [t.to_json() for t in self.targets.values()], "deleted": list(self.deleted)}
        if self.shard:
            document["shard"] = self.shard
        return document


def affected(base: Keys, head: Keys, graph_base: Graph, graph_head: Graph,
             dependents: str = "none") -> AffectedResult:
    """Targets of `graph_head` that differ from `graph_base`, with reasons; see the module doc."""
    if dependents not in DEPENDENTS:
        raise ValueError(f"dependents must be one of {', '.join(DEPENDENTS)}, not {dependents!r}")
    base_package = {node: pkg for pkg, node in graph_base.package_default.items()}
    head_package = {node: pkg for pkg, node in graph_head.package_default.items()}
    found: dict[str, tuple[Reason, ...]] = {}
    for label in sorted(graph_head.nodes):
        node = graph_head.nodes[label]
        if node.external:            # not a target: its change shows in what references it
            continue
        old = graph_base.identity.get(node.identity)
        if old is None:
            found[label] = (Reason("new", {}),)
            continue
        reasons: list[Reason] = []
        if old != label:
            reasons.append(Reason("moved", {"from": old, "to": label}))
        if base.keys.get(old) != head.keys.get(label):
            reasons.extend(explain(base.components[old], head.components[label], graph_base, graph_head,
                                   base_package.get(old), head_package.get(label)))
        if reasons:
            found[label] = tuple(reasons)
    deleted = tuple(sorted(label for label, node in graph_base.nodes.items()
                           if not node.external and node.identity not in graph_head.identity))
    if dependents != "none":
        found.update(_dependents(found, deleted, graph_base, graph_head, transitive=dependents == "transitive"))
    targets = {label: AffectedTarget(label, graph_head.nodes[label].kind, graph_head.nodes[label].name, reasons)
               for label, reasons in sorted(found.items())}
    return AffectedResult(targets, deleted, dependents)


def _dependents(found: dict[str, tuple[Reason, ...]], deleted: tuple[str, ...], graph_base: Graph,
                graph_head: Graph, *, transitive: bool) -> dict[str, tuple[Reason, ...]]:
    """Targets reached from the affected (and deleted) ones, each with the edge it was reached by:
    consumers of what an affected Transform writes, and targets referencing an affected one; one
    hop, or all of them."""
    seen = set(found)
    added: dict[str, tuple[Reason, ...]] = {}

    def reach(src: str, of: str, edge: Any) -> None:
        if src not in seen:
            seen.add(src)
            added[src] = (Reason("dependent", {"of": of, "via": edge.kind.value, "field": edge.field}),)
            frontier.append(src)

    frontier: list[str] = []
    for gone in deleted:
        for edge in sorted(graph_base.in_edges.get(gone, ()), key=lambda e: (e.src, e.field)):
            src = graph_base.nodes[edge.src]
            now = graph_head.identity.get(src.identity)
            if now is not None:
                reach(now, gone, edge)
    level = sorted(found) + frontier
    while level:
        frontier = []
        for label in level:
            for edge in sorted(graph_head.in_edges.get(label, ()), key=lambda e: (e.src, e.field)):
                reach(edge.src, label, edge)
            for written in graph_head.out_edges.get(label, ()):
                if written.kind is EdgeKind.WRITES:
                    for edge in sorted(graph_head.in_edges.get(written.dst, ()), key=lambda e: (e.src, e.field)):
                        if edge.kind is EdgeKind.READS:
                            reach(edge.src, label, edge)
        if not transitive:
            break
        level = frontier
    return added


def explain(old: KeyComponents, new: KeyComponents, graph_base: Graph, graph_head: Graph,
            old_package: str | None, new_package: str | None) -> list[Reason]:
    """Which components of a target's key differ, most specific first."""
    fields = [Reason("manifest", {"field": format_field(path) or "(document)", "change": change})
              for path, change in diff_fields(old.manifest, new.manifest)]
    old_files, new_files = old.files, new.files
    if fields:   # the package's own dk.yaml (its bytes are packed) changed with its fields: name the fields
        old_files = {rel: d for rel, d in old_files.items() if rel != PACKAGE_FILE}
        new_files = {rel: d for rel, d in new_files.items() if rel != PACKAGE_FILE}
    reasons = _file_reasons(old_files, new_files, old_package or "", new_package or "") + fields
    reasons += _reference_reasons(old.refs, new.refs, graph_base, graph_head)
    if old.rule != new.rule:
        reasons.append(_rule_reason(old.rule, new.rule))
    for section in sorted(set(old.config) | set(new.config)):
        if section not in old.config or section not in new.config:
            change = "now read by the rule" if section not in old.config else "no longer read by the rule"
            reasons.append(Reason("config", {"section": section, "fields": [], "change": change}))
        elif old.config[section] != new.config[section]:
            fields = [format_field((section, *p)) for p, _ in diff_fields(old.config[section], new.config[section])]
            reasons.append(Reason("config", {"section": section, "fields": fields, "change": "modified"}))
    if not reasons:
        # Same components, different key: only a change elsewhere in a reference cycle does that.
        reasons.append(Reason("reference", {"label": "", "kind": "", "name": "", "via": "", "field": "",
                                            "change": "cycle"}))
    return reasons


def _file_reasons(old: dict[str, str], new: dict[str, str], old_package: str, new_package: str) -> list[Reason]:
    def where(package: str, rel: str) -> str:
        return f"{package}/{rel}" if package else rel

    reasons = []
    for rel in sorted(set(old) | set(new)):
        if rel not in old:
            reasons.append(Reason("file", {"path": where(new_package, rel), "change": "added"}))
        elif rel not in new:
            reasons.append(Reason("file", {"path": where(old_package, rel), "change": "removed"}))
        elif old[rel] != new[rel]:
            mode_only = old[rel].removesuffix("+x") == new[rel].removesuffix("+x")
            reasons.append(Reason("file", {"path": where(new_package, rel),
                                           "change": "mode" if mode_only else "modified"}))
    return reasons


def _reference_reasons(old: list[list[str]], new: list[list[str]], graph_base: Graph,
                       graph_head: Graph) -> list[Reason]:
    # A ref is [edge kind, field, kind, name, key]; the field makes the first four unique.
    old_keys = {tuple(r[:4]): r[4] for r in old}
    new_keys = {tuple(r[:4]): r[4] for r in new}

    def label_of(kind: str, name: str) -> str:
        node = graph_head.lookup(kind, name) or graph_base.lookup(kind, name)
        return node.id if node is not None else f"{kind} {name}"

    def defined(graph: Graph, kind: str, name: str) -> bool:
        node = graph.lookup(kind, name)
        return node is not None and not node.external

    reasons = []
    for ref in sorted(set(old_keys) | set(new_keys)):
        edge, where, kind, name = ref
        if ref not in old_keys:
            change = "added"
        elif ref not in new_keys:
            change = "removed"
        elif old_keys[ref] != new_keys[ref]:
            # A definition that went away leaves the reference pointing outside the workspace.
            was, now = defined(graph_base, kind, name), defined(graph_head, kind, name)
            change = "removed" if was and not now else "added" if now and not was else "modified"
        else:
            continue
        reasons.append(Reason("reference", {"label": label_of(kind, name), "kind": kind, "name": name,
                                            "via": edge, "field": where, "change": change}))
    return reasons


def _rule_reason(old: dict[str, Any] | None, new: dict[str, Any] | None) -> Reason:
    if old is None or new is None:
        present = new or old or {}
        change = "now built by this rule" if old is None else "no longer built by this rule"
        return Reason("rule", {"rule": present.get("name", ""), "changes": [change]})
    changes = []
    if old["name"] != new["name"]:
        changes.append(f"name {old['name']} -> {new['name']}")
    if old["version"] != new["version"]:
        changes.append(f"version {old['version']} -> {new['version']}")
    if old.get("code") != new.get("code"):
        changes.append(f"code {str(old.get('code'))[:12]} -> {str(new.get('code'))[:12]}")
    changes += [format_field(("settings", *p)) for p, _ in diff_fields(old["settings"], new["settings"])]
    return Reason("rule", {"rule": new["name"], "changes": changes or ["identity"]})


def diff_fields(old: Any, new: Any, path: FieldPath = ()) -> list[tuple[FieldPath, str]]:
    """Paths where two JSON-like values differ: ("added" | "removed" | "modified" | "reordered").

    Lists of mappings with unique `name`s (schema columns, env vars) are matched by name, so a column
    inserted at the top reports one addition rather than every column after it; the path uses the
    index in the new list (the old list for a removal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[FieldPath, str]] = []
        for key in sorted(set(old) | set(new), key=str):
            if key not in old:
                out.append((path + (key,), "added"))
            elif key not in new:
                out.append((path + (key,), "removed"))
            else:
                out += diff_fields(old[key], new[key], path + (key,))
        return out
    if isinstance(old, list) and isinstance(new, list):
        old_names, new_names = _names(old), _names(new)
        if old_names is not None and new_names is not None:
            return _diff_named(old, new, old_names, new_names, path)
        out = []
        for i in range(max(len(old), len(new))):
            if i >= len(old):
                out.append((path + (i,), "added"))
            elif i >= len(new):
                out.append((path + (i,), "removed"))
            else:
                out += diff_fields(old[i], new[i], path + (i,))
        return out
    if type(old) is not type(new) or old != new:      # 1, 1.0 and true are different values
        return [(path, "modified")]
    return []


def _names(items: list[Any]) -> list[str] | None:
    names = [item.get("name") for item in items if isinstance(item, dict)]
    if len(names) != len(items) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    return names


def _diff_named(old: list[Any], new: list[Any], old_names: list[str], new_names: list[str],
                path: FieldPath) -> list[tuple[FieldPath, str]]:
    out: list[tuple[FieldPath, str]] = []
    old_at = {n: i for i, n in enumerate(old_names)}
    new_set = set(new_names)
    for i, name in enumerate(new_names):
        if name not in old_at:
            out.append((path + (i,), "added"))
        else:
            out += diff_fields(old[old_at[name]], new[i], path + (i,))
    for i, name in enumerate(old_names):
        if name not in new_set:
            out.append((path + (i,), "removed"))
    kept_old = [n for n in old_names if n in new_set]
    kept_new = [n for n in new_names if n in old_at]
    if kept_old != kept_new:
        out.append((path, "reordered"))
    return out

"""cloudquery: a CloudQuery sync rendered from the package's stores and connectors (contract §1.13).

Inputs are grouped by (connector, store) into `kind: source` specs, outputs into `kind: destination`
specs. Store secrets stay `${VAR}` references: they are resolved at run time, never at build time."""

from __future__ import annotations

from typing import Any

from dkbuild.diagnostics import Diagnostic, error
from dkbuild.engine.rules import Rule
from dkbuild.engine.target import BuildTarget
from dkbuild.graph.model import Node


class CloudQuery(Rule):
    name = "cloudquery"
    version = "1"
    config_sections = ("registry",)

    def check(self, target: BuildTarget) -> list[Diagnostic]:
        found = []
        for side, role, code in (("inputs", "source", "E730"), ("outputs", "destination", "E731")):
            for i, (dataset, store, connector) in enumerate(_chain(target, side)):
                if connector is None or getattr(connector.manifest.model.spec.plugin, role, None):
                    continue
                m = target.node.manifest
                line, column = m.position(("spec", side, i))
                found.append(error(code, m.file, f"connector '{connector.name}' (store '{store.name}' of dataset "
                                   f"'{dataset.name}') has no {role} plugin image", line=line, column=column,
                                   field=f"spec.{side}[{i}]",
                                   hint=f"set spec.plugin.{role} in {connector.manifest.file}"))
        return found

    def extra_manifest_files(self, target: BuildTarget) -> dict[str, bytes]:
        import yaml  # rules load on every command; YAML only when an artifact is packed

        docs = render_specs(target)
        return {"cloudquery/sync.yaml": yaml.safe_dump_all(docs, sort_keys=True).encode()} if docs else {}


def _by_name(target: BuildTarget, kind: str, name: str) -> Node | None:
    return next((n for n in target.references if n.kind == kind and n.name == name), None)


def _chain(target: BuildTarget, side: str) -> list[tuple[Node, Node, Node | None]]:
    """(dataset, store, connector) for every resolvable dataset reference on one side."""
    chain = []
    for ref in getattr(target.node.manifest.model.spec, side):
        dataset = _by_name(target, "DataSet", ref.dataset or "")
        store = _by_name(target, "Store", dataset.manifest.model.spec.store) if dataset else None
        if dataset is None or store is None:
            continue
        chain.append((dataset, store, _by_name(target, "Connector", store.manifest.model.spec.connector)))
    return chain


def _location(dataset: Node) -> str:
    spec = dataset.manifest.model.spec
    return spec.table or spec.topic or spec.prefix or dataset.name


def render_specs(target: BuildTarget) -> list[dict[str, Any]]:
    sources = _group(_chain(target, "inputs"))
    destinations = _group(_chain(target, "outputs"))
    dest_names = sorted({c.name for (c, _s) in destinations})
    docs: list[dict[str, Any]] = []
    for (connector, store), datasets in sorted(sources.items(), key=lambda kv: (kv[0][0].name, kv[0][1].name)):
        docs.append({"kind": "source", "spec": {
            "name": connector.name, "registry": "docker", "path": connector.manifest.model.spec.plugin.source,
            "tables": sorted(_location(d) for d in datasets), "destinations": dest_names,
            "spec": _store_spec(store)}})
    for (connector, store), datasets in sorted(destinations.items(), key=lambda kv: (kv[0][0].name, kv[0][1].name)):
        first = datasets[0].manifest.model.spec
        spec = {"name": connector.name, "registry": "docker", "path": connector.manifest.model.spec.plugin.destination,
                "write_mode": "append", "spec": _store_spec(store)}
        if first.format:
            spec["spec"]["format"] = first.format
        if first.prefix:
            rotate = "" if store.manifest.model.spec.connection.get("no_rotate") else "/{{UUID}}"
            spec["spec"]["path"] = f"{first.prefix.rstrip('/')}/{{{{TABLE}}}}{rotate}.{{{{FORMAT}}}}"
        docs.append({"kind": "destination", "spec": spec})
    return docs


def _group(chain: list[tuple[Node, Node, Node | None]]) -> dict[tuple[Node, Node], list[Node]]:
    groups: dict[tuple[Node, Node], list[Node]] = {}
    for dataset, store, connector in chain:
        if connector is not None and connector.manifest.model.spec.plugin is not None:
            groups.setdefault((connector, store), []).append(dataset)
    return groups


def _store_spec(store: Node) -> dict[str, Any]:
    from dkbuild.redaction import redacted

    spec = redacted(store.manifest.data).get("spec", {})
    return {**spec.get("connection", {}), **spec.get("secrets", {})}


RULE = CloudQuery()

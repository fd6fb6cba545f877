"""cloudquery: `cloudquery sync` of a spec generated from the Transform's stores and connectors.

The spec is dk's (sdk/runner/cqconfig.go): one source per (connector, store) of the inputs with the
input tables, one destination per (connector, store) of the outputs, plugin images from the
Connectors' `spec.plugin` with `registry: docker`, and the store's connection and secrets as the
plugin spec. Secrets stay `${VAR}` in the file: CloudQuery expands environment variables itself.
dk runs the sync as a Kubernetes Job with plugin sidecars; dkb runs the CLI locally, or the
CloudQuery image with the spec mounted.
"""

from __future__ import annotations

import json
from typing import Any

from dkbuild.lineage.runtimes.base import RunContext, RuntimeError_, Step
from dkbuild.lineage.storeenv import variables_in

CLOUDQUERY_IMAGE = "ghcr.io/cloudquery/cloudquery:latest"     # dk's DefaultCloudQueryImage
SPEC_FILE = "cloudquery.yaml"


class CloudQueryRuntime:
    name = "cloudquery"
    image = CLOUDQUERY_IMAGE         # dk runs the CloudQuery image, not a package image
    tools = ("cloudquery",)
    install = ("the CloudQuery CLI (https://www.cloudquery.io/docs/quickstart; it is not packaged on PyPI, "
               "npm or Debian) and Docker for its plugins")

    def local_steps(self, ctx: RunContext, tools: dict[str, str]) -> list[Step]:
        spec = ctx.work_dir / SPEC_FILE
        ctx.files[spec] = sync_spec(ctx)
        return [Step([tools["cloudquery"], "sync", str(spec), "--log-console", *ctx.extra_args], ctx.package_dir,
                     what="cloudquery sync")]

    def container_command(self, ctx: RunContext) -> list[str]:
        ctx.files[ctx.work_dir / SPEC_FILE] = sync_spec(ctx)
        return ["sync", f"/dkb-run/{SPEC_FILE}", "--log-console", *ctx.extra_args]


def _table(dataset: Any) -> str:
    spec = dataset.spec
    return spec.table or spec.topic or spec.prefix or dataset.metadata.name


def connector_of(ctx: RunContext, store: Any, kind: str) -> tuple[str, str]:
    """(connector name, plugin image) of a store, for a source or a destination, as dk resolves it."""
    name = store.connector
    connector = ctx.graph.lookup("Connector", name) if name else None
    plugin = connector.manifest.model.spec.plugin if connector is not None else None
    image = getattr(plugin, kind, None) if plugin is not None else None
    if not image:
        where = f'store "{store.name}"' + (f" ({store.origin})" if store.origin != "workspace" else "")
        raise RuntimeError_(f'connector "{name}" of {where} has no CloudQuery {kind} plugin: define a Connector '
                            f'named "{name}" with spec.plugin.{kind}')
    return name, image


def _check_secrets(store: Any) -> None:
    for key, raw in store.secrets.items():
        if not variables_in(raw):
            raise RuntimeError_(f'store "{store.name}": secret "{key}" must be a ${{VAR}} reference, so that its '
                                "value is never written to the CloudQuery spec")


def sync_spec(ctx: RunContext) -> str:
    """The multi-document CloudQuery spec (JSON documents are YAML)."""
    stores = {s.name: s for s in ctx.stores}
    sources: dict[tuple[str, str], dict[str, Any]] = {}
    destinations: dict[tuple[str, str], dict[str, Any]] = {}
    for datasets, kind, groups in ((ctx.inputs, "source", sources), (ctx.outputs, "destination", destinations)):
        for dataset in datasets:
            store = stores.get(dataset.spec.store)
            if store is None:
                raise RuntimeError_(f'{ctx.transform_id}: dataset "{dataset.metadata.name}" has no store')
            name, plugin = connector_of(ctx, store, kind)
            _check_secrets(store)
            group = groups.setdefault((name, store.name), {
                "name": name, "registry": "docker", "path": plugin,
                "spec": {**store.connection, **store.secrets}, "datasets": []})
            group["datasets"].append(dataset)
    names = [g["name"] for g in destinations.values()]
    docs = []
    for group in sources.values():
        docs.append({"kind": "source", "spec": {
            "name": group["name"], "registry": "docker", "path": group["path"],
            "tables": [_table(d) for d in group["datasets"]], "destinations": names, "spec": group["spec"]}})
    for group in destinations.values():
        plugin_spec = dict(group["spec"])
        first = group["datasets"][0].spec
        if first.format:
            plugin_spec["format"] = first.format
        if first.prefix:     # file destinations want a full key template (dk's rule)
            rotate = "/{{TABLE}}.{{FORMAT}}" if plugin_spec.get("no_rotate") else "/{{TABLE}}/{{UUID}}.{{FORMAT}}"
            plugin_spec["path"] = first.prefix.rstrip("/") + rotate
            plugin_spec["format"] = first.format or "{{FORMAT}}"
        docs.append({"kind": "destination", "spec": {
            "name": group["name"], "registry": "docker", "path": group["path"], "write_mode": "append",
            "spec": plugin_spec}})
    if not sources or not destinations:
        raise RuntimeError_(f"{ctx.transform_id}: a CloudQuery sync needs input and output datasets")
    return "---\n".join(json.dumps(doc, indent=2, default=str) + "\n" for doc in docs)

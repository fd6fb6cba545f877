"""`dkb governance report`: the report as one plain JSON-compatible document.

Pure: it reads the graph (and the `[policy]` config) and returns a dict whose shape is published as
`report.schema.json` next to this module. Renderers (report_render.py) only format this document.

Judgement calls (also in the schema's descriptions):

- A *package* is a Transform; a *dataset* is a DataSet node.
- Owner: annotation `datakit.infoblox.dev/owner`, else label `owner`, else label `team`. A dataset
  that declares none inherits its producer's owner (owner_source "producer").
- Namespace: `metadata.namespace`; a dataset without one takes its producer's namespace.
- A package's classification is the most sensitive level among the datasets it reads and writes.
- "owner defined" is checked on packages; "classification present" on datasets.
- Patterns select targets; the datasets a selected package reads or writes are included too.
  Filters then narrow packages and datasets; policies and flows are reported for what remains.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dkbuild.config_model import PolicySection
from dkbuild.governance.classification import LEVELS, level_name, rank
from dkbuild.graph.model import EdgeKind, Graph, Node

SCHEMA_VERSION = 1
OWNER_ANNOTATION = "datakit.infoblox.dev/owner"
FILTER_KEYS = ("pii", "classification", "runtime", "namespace")

POLICIES = (
    # id, code, title, subject
    ("pii_classification", "E600", "datasets with PII are classified confidential or restricted", "dataset"),
    ("pii_propagation", "E601", "columns derived from PII are pii: true or masked", "column"),
    ("classification_downgrade", "E602", "no dataset is classified below what it is derived from", "dataset"),
    ("classification_present", None, "every dataset declares spec.classification", "dataset"),
    ("owner_defined", None, "every package names an owner (annotation, owner or team label)", "package"),
)


class FilterError(ValueError):
    pass


def parse_filters(items: Iterable[str], namespace: str | None = None) -> dict[str, str]:
    filters: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise FilterError(f"filter '{item}' must be written key=value")
        if key not in FILTER_KEYS:
            raise FilterError(f"unknown filter key '{key}' (use one of: {', '.join(FILTER_KEYS)})")
        if key == "pii" and value.lower() not in ("true", "false"):
            raise FilterError(f"filter pii={value}: use pii=true or pii=false")
        if key == "classification" and value not in (*LEVELS, "unclassified"):
            raise FilterError(f"filter classification={value}: use one of {', '.join((*LEVELS, 'unclassified'))}")
        filters[key] = value.lower() if key == "pii" else value
    if namespace:
        filters["namespace"] = namespace
    return filters


# ---------------------------------------------------------------------------------------- helpers

def _owner(node: Node) -> str | None:
    meta = node.manifest.model.metadata
    return meta.annotations.get(OWNER_ANNOTATION) or meta.labels.get("owner") or meta.labels.get("team") or None


def _ds_name(graph: Graph, ref: Any) -> str:
    """A dataset named by node id, label or plain name -> its metadata.name."""
    ref = str(ref)
    node_id = ref if ref in graph.nodes else graph.aliases.get(ref)
    return graph.nodes[node_id].name if node_id else ref


def _column_ref(graph: Graph, ref: Any) -> dict[str, str]:
    if isinstance(ref, (tuple, list)) and len(ref) == 2:
        return {"dataset": _ds_name(graph, ref[0]), "column": str(ref[1])}
    text = str(ref)
    dataset, _, column = text.rpartition(".")
    return {"dataset": _ds_name(graph, dataset or text), "column": column}


def _path(graph: Graph, path: Any) -> list[dict[str, Any]]:
    """Hops of a flow: each column, the transform carrying the edge into it, and any masking there."""
    out = []
    for step in path or ():
        dataset = getattr(step, "dataset", None)
        if dataset is None and isinstance(step, (tuple, list)) and step:
            dataset = step[0]
        column = getattr(step, "column", None) or (step[1] if isinstance(step, (tuple, list)) and len(step) > 1 else "")
        via = getattr(step, "via", None)
        out.append({"dataset": _ds_name(graph, dataset), "column": str(column),
                    "via": graph.nodes[via].name if via in graph.nodes else via,
                    "masking": getattr(step, "masking", None)})
    return out


def _pct(passed: int, checked: int) -> float:
    return 100.0 if checked == 0 else round(100.0 * passed / checked, 1)


# ------------------------------------------------------------------------------------------ model

def build_report(graph: Graph, policy: PolicySection, *, selected: set[str] | None = None,
                 filters: dict[str, str] | None = None, patterns: list[str] | None = None,
                 workspace: str = "") -> dict[str, Any]:
    from dkbuild.governance.policy import check_policies
    from dkbuild.lineage.pii import (  # lazily: lineage is optional for lint
        pii_columns,
        pii_flows,
    )

    filters = dict(filters or {})
    origins = pii_columns(graph)
    flows = pii_flows(graph)

    transforms = {n.id: n for _, n in sorted(graph.nodes.items()) if n.kind == "Transform"}
    datasets = {n.id: n for _, n in sorted(graph.nodes.items()) if n.kind == "DataSet"}

    reads: dict[str, list[str]] = {t: [] for t in transforms}
    writes: dict[str, list[str]] = {t: [] for t in transforms}
    producers: dict[str, list[str]] = {d: [] for d in datasets}
    consumers: dict[str, list[str]] = {d: [] for d in datasets}
    for t in transforms:
        for e in graph.out_edges.get(t, ()):
            if e.dst not in datasets:
                continue
            if e.kind is EdgeKind.READS:
                reads[t].append(e.dst)
                consumers[e.dst].append(t)
            elif e.kind is EdgeKind.WRITES:
                writes[t].append(e.dst)
                producers[e.dst].append(t)

    # PII columns per dataset name, declared and derived.
    pii_by_ds: dict[str, list[dict[str, Any]]] = {}
    for (ds_ref, column), origin in sorted(origins.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        name = _ds_name(graph, ds_ref)
        pii_by_ds.setdefault(name, []).append({
            "column": column,
            "declared": bool(origin.declared),
            "sources": [_column_ref(graph, s) for s in origin.sources],
        })
    for node in datasets.values():   # declared pii: true even if the lineage module missed it
        have = {c["column"] for c in pii_by_ds.get(node.name, [])}
        for col in node.manifest.model.spec.schema_:
            if col.pii and col.name not in have:
                pii_by_ds.setdefault(node.name, []).append({"column": col.name, "declared": True, "sources": []})
    for cols in pii_by_ds.values():
        cols.sort(key=lambda c: c["column"])

    def ds_namespace(d: str) -> str | None:
        own = datasets[d].manifest.model.metadata.namespace
        if own:
            return own
        spaces = sorted({transforms[p].manifest.model.metadata.namespace or "" for p in producers[d]} - {""})
        return spaces[0] if len(spaces) == 1 else None

    dataset_rows: dict[str, dict[str, Any]] = {}
    for d, node in datasets.items():
        spec = node.manifest.model.spec
        owner, source = _owner(node), "declared"
        if owner is None:
            owners = sorted({o for p in producers[d] if (o := _owner(transforms[p]))})
            owner, source = (owners[0], "producer") if len(owners) == 1 else (None, None)
        pii = pii_by_ds.get(node.name, [])
        dataset_rows[d] = {
            "name": node.name,
            "label": node.id,
            "file": node.manifest.file,
            "external": node.external,
            "namespace": ds_namespace(d),
            "classification": spec.classification if spec.classification in LEVELS else None,
            "owner": owner,
            "owner_source": source,
            "has_pii": bool(pii),
            "pii_columns": pii,
            "declassified": bool(spec.declassify and spec.declassify.reason.strip()),
            "producers": sorted(transforms[p].name for p in producers[d]),
            "consumers": sorted(transforms[c].name for c in consumers[d]),
        }

    package_rows: dict[str, dict[str, Any]] = {}
    for t, node in transforms.items():
        io = reads[t] + writes[t]
        worst = max((rank(datasets[d].manifest.model.spec.classification) for d in io), default=-1)
        pii_io = sorted({datasets[d].name for d in io if dataset_rows[d]["has_pii"]})
        model = node.manifest.model
        package_rows[t] = {
            "name": node.name,
            "label": node.id,
            "package": node.package,
            "file": node.manifest.file,
            "namespace": model.metadata.namespace,
            "runtime": model.spec.runtime or None,
            "mode": model.spec.mode or None,
            "owner": _owner(node),
            "classification": level_name(worst) if worst >= 0 else None,
            "handles_pii": bool(pii_io),
            "pii_datasets": pii_io,
            "reads": sorted(datasets[d].name for d in reads[t]),
            "writes": sorted(datasets[d].name for d in writes[t]),
        }

    # Scope: patterns, then filters.
    if selected is not None:
        keep_t = {t for t in transforms if t in selected}
        keep_d = {d for d in datasets if d in selected} | {d for t in keep_t for d in reads[t] + writes[t]}
    else:
        keep_t, keep_d = set(transforms), set(datasets)
    keep_t = {t for t in keep_t if _matches(package_rows[t], filters, "package",
                                            [dataset_rows[d] for d in reads[t] + writes[t]])}
    keep_d = {d for d in keep_d if _matches(dataset_rows[d], filters, "dataset",
                                            [package_rows[p] for p in producers[d] + consumers[d]])}
    packages = [package_rows[t] for t in sorted(keep_t, key=lambda t: package_rows[t]["name"])]
    data = [dataset_rows[d] for d in sorted(keep_d, key=lambda d: dataset_rows[d]["name"])]
    in_files = {r["file"] for r in packages} | {r["file"] for r in data}
    for d in keep_d:   # copies of a contract live in other files too
        in_files |= {m.file for m in datasets[d].definitions}
    kept_names = {r["name"] for r in data}

    # Policies.
    diagnostics = check_policies(graph, policy)
    ignored = set(policy.ignore)
    policies = []
    for pid, code, title, subject in POLICIES:
        level = getattr(policy, pid, "error")
        if subject == "package":
            offenders = [r for r in packages if not r["owner"]]
            checked = len(packages)
            violations = [{"file": r["file"], "line": 0, "message": f"package '{r['name']}' has no owner "
                           f"(set annotation {OWNER_ANNOTATION}, or label owner or team)"} for r in offenders]
        elif pid == "classification_present":
            defined = [r for r in data if not r["external"]]     # an external contract is not ours to fix
            offenders = [r for r in defined if not r["classification"]]
            checked = len(defined)
            violations = [{"file": r["file"], "line": 0,
                           "message": f"DataSet '{r['name']}' has no spec.classification"} for r in offenders]
        else:
            found = [d for d in diagnostics if d.code == code and d.file in in_files]
            violations = [{"file": d.file, "line": d.line, "message": d.message} for d in found]
            if pid == "pii_classification":
                checked = sum(1 for r in data if any(c["declared"] for c in r["pii_columns"]))
            elif pid == "pii_propagation":
                checked = sum(1 for r in data for c in r["pii_columns"] if c["sources"] or not c["declared"])
                checked = max(checked, len(violations))
            else:
                checked = len(data)
        level = "off" if level == "off" or (code and code in ignored) else level
        failed = len({v["file"] + v["message"] for v in violations}) if level != "off" else 0
        policies.append({
            "id": pid, "code": code, "title": title, "level": level,
            "status": "off" if level == "off" else ("fail" if violations else "pass"),
            "checked": checked, "failed": failed,
            "compliance_percent": _pct(max(checked - failed, 0), max(checked, failed)),
            "violations": [] if level == "off" else sorted(violations, key=lambda v: (v["file"], v["line"],
                                                                                     v["message"])),
            "files": [] if level == "off" else sorted({v["file"] for v in violations}),
        })

    # Flows.
    flow_rows = []
    for f in flows:
        src, sink = _column_ref(graph, f.source), _column_ref(graph, f.sink)
        if src["dataset"] not in kept_names and sink["dataset"] not in kept_names:
            continue
        flow_rows.append({
            "source": src, "sink": sink, "hops": int(f.hops), "path": _path(graph, f.path),
            "crosses_namespace": bool(f.crosses_namespace), "downgrade": bool(f.downgrade),
            "masked": bool(f.masked), "cross_boundary": bool(f.crosses_namespace or f.downgrade),
        })
    flow_rows.sort(key=lambda r: (r["source"]["dataset"], r["source"]["column"], r["sink"]["dataset"],
                                  r["sink"]["column"], r["hops"]))
    sources = sorted({(r["source"]["dataset"], r["source"]["column"]) for r in flow_rows})
    sinks = sorted({(r["sink"]["dataset"], r["sink"]["column"]) for r in flow_rows})

    counts = {level: sum(1 for r in data if r["classification"] == level) for level in LEVELS}
    counts["unclassified"] = sum(1 for r in data if not r["classification"])
    active = [p for p in policies if p["status"] != "off"]
    summary = {
        "packages": len(packages),
        "packages_with_pii": sum(r["handles_pii"] for r in packages),
        "packages_confidential": sum(r["classification"] == "confidential" for r in packages),
        "packages_restricted": sum(r["classification"] == "restricted" for r in packages),
        "packages_internal": sum(r["classification"] == "internal" for r in packages),
        "packages_without_owner": sum(not r["owner"] for r in packages),
        "datasets": len(data),
        "datasets_with_pii": sum(r["has_pii"] for r in data),
        "datasets_by_classification": counts,
        "pii_columns": sum(len(r["pii_columns"]) for r in data),
        "pii_sources": len(sources),
        "pii_sinks": len(sinks),
        "pii_flows": len(flow_rows),
        "cross_boundary_flows": sum(r["cross_boundary"] for r in flow_rows),
        "policies_passed": sum(p["status"] == "pass" for p in active),
        "policies_failed": sum(p["status"] == "fail" for p in active),
        "compliance_percent": _pct(sum(p["status"] == "pass" for p in active), len(active)),
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "workspace": workspace,
        "scope": {"patterns": list(patterns or ["//..."]), "filters": filters},
        "summary": summary,
        "packages": packages,
        "datasets": data,
        "policies": policies,
        "flows": {
            "sources": [{"dataset": d, "column": c} for d, c in sources],
            "sinks": [{"dataset": d, "column": c} for d, c in sinks],
            "flows": flow_rows,
        },
    }


def _matches(row: dict[str, Any], filters: dict[str, str], kind: str, related: list[dict[str, Any]]) -> bool:
    for key, value in filters.items():
        if key == "pii":
            has = row["handles_pii"] if kind == "package" else row["has_pii"]
            if has != (value == "true"):
                return False
        elif key == "classification":
            if (row["classification"] or "unclassified") != value:
                return False
        elif key == "runtime":
            runtimes = {row["runtime"]} if kind == "package" else {r["runtime"] for r in related}
            if value not in runtimes:
                return False
        elif key == "namespace" and row["namespace"] != value:
            return False
    return True

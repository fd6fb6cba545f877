"""Renderers for the governance report document (report_model.build_report): text, Markdown, HTML.

The HTML is one self-contained file: inline CSS, an inline SVG lineage picture and an inline
script (lineage_view.js) that makes the picture navigable: zoom, pan, search, focus on one node.
No external resources. The picture is laid out in layers by data-flow depth (longest path from a
root over reads/writes edges); within a layer, nodes are ordered by the mean position of what feeds
them (ties by name), which keeps edges short, and the same graph always gives the same picture.
"""

from __future__ import annotations

from html import escape
from importlib import resources
from typing import Any

Report = dict[str, Any]


def _col(ref: dict[str, str]) -> str:
    return f"{ref['dataset']}.{ref['column']}"


def _pii_cols(row: dict[str, Any]) -> str:
    return ", ".join(c["column"] + ("" if c["declared"] else " (derived)") for c in row["pii_columns"]) or "-"


def _flags(flow: dict[str, Any]) -> str:
    flags = [f for f in ("masked", "downgrade", "crosses_namespace") if flow[f]]
    return ", ".join(f.replace("_", " ") for f in flags) or "-"


def _summary_lines(r: Report) -> list[tuple[str, str]]:
    s = r["summary"]
    c = s["datasets_by_classification"]
    return [
        ("packages", (f"{s['packages']} ({s['packages_with_pii']} handle PII, {s['packages_restricted']} restricted, "
                     f"{s['packages_confidential']} confidential, {s['packages_internal']} internal)")),
        ("datasets", f"{s['datasets']} ({s['datasets_with_pii']} with PII; "
                     + ", ".join(f"{k} {v}" for k, v in c.items() if v) + ")"),
        ("PII flows", (f"{s['pii_flows']} from {s['pii_sources']} source column(s) to {s['pii_sinks']} sink "
                      f"column(s); {s['cross_boundary_flows']} cross a boundary")),
        ("compliance", (f"{s['compliance_percent']}% of policies pass ({s['policies_passed']} pass, "
                       f"{s['policies_failed']} fail)")),
    ]


# ------------------------------------------------------------------------------------------- text

def render_text(r: Report) -> str:
    out = [f"Governance report: {r['workspace'] or 'workspace'}  "
           f"[{' '.join(r['scope']['patterns'])}"
           + "".join(f" {k}={v}" for k, v in r["scope"]["filters"].items()) + "]", ""]
    out += [f"  {k:<11} {v}" for k, v in _summary_lines(r)]
    out += ["", "Policies"]
    for p in r["policies"]:
        out.append(f"  {p['status'].upper():<4}  {p['code'] or '----'}  {p['id']:<25} {p['compliance_percent']:>5}%  {p['title']}")
        for v in p["violations"]:
            out.append(f"        {v['file']}{':' + str(v['line']) if v['line'] else ''}: {v['message']}")
    out += ["", "Packages"]
    for p in r["packages"]:
        out.append(f"  {p['name']}  ns={p['namespace'] or '-'} runtime={p['runtime'] or '-'} "
                   f"owner={p['owner'] or '-'} class={p['classification'] or '-'}"
                   f"{'  PII' if p['handles_pii'] else ''}")
        out.append(f"      reads: {', '.join(p['reads']) or '-'}   writes: {', '.join(p['writes']) or '-'}")
    out += ["", "Datasets"]
    for d in r["datasets"]:
        out.append(f"  {d['name']}  ns={d['namespace'] or '-'} owner={d['owner'] or '-'} "
                   f"class={d['classification'] or 'unclassified'}{'  declassified' if d['declassified'] else ''}"
                   f"{'  EXTERNAL (not defined in this workspace)' if d['external'] else ''}")
        if d["has_pii"]:
            out.append(f"      PII: {_pii_cols(d)}")
    out += ["", "PII flows"]
    for f in r["flows"]["flows"]:
        out.append(f"  {_col(f['source'])} -> {_col(f['sink'])}  hops={f['hops']}  "
                   f"{'CROSS-BOUNDARY ' if f['cross_boundary'] else ''}[{_flags(f)}]")
    if not r["flows"]["flows"]:
        out.append("  (none)")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------- markdown

def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return out + [""]


def render_markdown(r: Report) -> str:
    out = [f"# Governance report: {r['workspace'] or 'workspace'}", "", "## Summary", ""]
    out += _md_table(["", ""], [[k, v] for k, v in _summary_lines(r)])
    out += ["## Policy compliance", ""]
    out += _md_table(["policy", "code", "status", "compliance", "offending files"],
                     [[p["id"], p["code"] or "-", p["status"], f"{p['compliance_percent']}%", ", ".join(p["files"]) or "-"]
                      for p in r["policies"]])
    out += ["## Packages", ""]
    out += _md_table(["package", "namespace", "runtime", "owner", "classification", "PII", "reads", "writes"],
                     [[p["name"], p["namespace"] or "-", p["runtime"] or "-", p["owner"] or "-",
                       p["classification"] or "-", "yes" if p["handles_pii"] else "no",
                       ", ".join(p["reads"]) or "-", ", ".join(p["writes"]) or "-"] for p in r["packages"]])
    out += ["## Datasets", ""]
    out += _md_table(["dataset", "namespace", "owner", "classification", "PII columns", "producers", "consumers"],
                     [[d["name"], d["namespace"] or "-", d["owner"] or "-", d["classification"] or "unclassified",
                       _pii_cols(d), ", ".join(d["producers"]) or "-", ", ".join(d["consumers"]) or "-"]
                      for d in r["datasets"]])
    out += ["## PII flows", ""]
    out += _md_table(["source", "sink", "hops", "cross-boundary", "flags"],
                     [[_col(f["source"]), _col(f["sink"]), f["hops"], "yes" if f["cross_boundary"] else "no",
                       _flags(f)] for f in r["flows"]["flows"]])
    return "\n".join(out)


# ------------------------------------------------------------------------------------------- html

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2430;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea}
.scope{color:#5b6575;margin-bottom:12px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #dde2ea;border-radius:8px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:#5b6575;font-size:12px}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{border:1px solid #dde2ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f8}.pass{color:#137333;font-weight:600}.fail{color:#b3261e;font-weight:600}.off{color:#888}
.pii{color:#b3261e;font-weight:600}.tag{display:inline-block;border-radius:4px;padding:0 5px;font-size:12px;background:#eef1f5}
.restricted{background:#fde2e1}.confidential{background:#fff0d6}.internal{background:#e3efff}.public{background:#e4f5e8}
svg{border:1px solid #dde2ea;border-radius:8px;background:#fbfcfd;max-width:100%;height:auto}
.legend span{margin-right:14px}
#lineage svg{width:100%;max-width:none;cursor:grab;touch-action:none}
#lineage svg:active{cursor:grabbing}#lineage g.node{cursor:pointer}
.tools{display:flex;gap:6px;align-items:center;margin:8px 0}.tools input{padding:3px 8px;min-width:240px}
.tools button{padding:2px 10px}#lineage-status{color:#5b6575;font-size:12px}
.dim,.faded{opacity:.12}g.match rect,g.focus rect{stroke:#1a73e8;stroke-width:4}
g.near rect{stroke-width:2}path.near{stroke-width:2.5}
"""


def _layers(r: Report) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Node keys ('d:name' / 't:name') -> depth, and the edges, from the report rows."""
    edges: list[tuple[str, str]] = []
    nodes = {f"d:{d['name']}" for d in r["datasets"]} | {f"t:{p['name']}" for p in r["packages"]}
    for p in r["packages"]:
        t = f"t:{p['name']}"
        edges += [(f"d:{d}", t) for d in p["reads"] if f"d:{d}" in nodes]
        edges += [(t, f"d:{d}") for d in p["writes"] if f"d:{d}" in nodes]
    incoming: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        incoming[b].append(a)
    depth: dict[str, int] = {}

    def visit(n: str, trail: frozenset[str]) -> int:
        if n in depth:
            return depth[n]
        if n in trail:          # a cycle (lint reports W506): break it here
            return 0
        d = max((visit(p, trail | {n}) + 1 for p in incoming[n]), default=0)
        depth[n] = d
        return d

    for n in sorted(nodes):
        visit(n, frozenset())
    return depth, sorted(set(edges))


def _ordered_layers(depth: dict[str, int], edges: list[tuple[str, str]]) -> dict[int, list[str]]:
    """Members of each layer, top to bottom: the first by name, each next one by the mean rank of
    its predecessors in earlier layers (a barycenter sweep), so lines mostly run straight."""
    layers: dict[int, list[str]] = {}
    for n, d in depth.items():
        layers.setdefault(d, []).append(n)
    preds: dict[str, list[str]] = {}
    for a, b in edges:
        preds.setdefault(b, []).append(a)
    rank: dict[str, float] = {}
    for d in sorted(layers):
        def key(n: str) -> tuple[float, str, str]:
            seen = [rank[p] for p in preds.get(n, []) if p in rank]
            return (sum(seen) / len(seen) if seen else -1.0, n[2:], n[0])
        layers[d].sort(key=key)
        rank.update((n, i) for i, n in enumerate(layers[d]))
    return layers


def _shorten(name: str, limit: int) -> str:
    """Cut in the middle: generated names differ at both ends (`customer-enrich-…-00042-out0`)."""
    if len(name) <= limit:
        return name
    head = (limit - 1) * 3 // 5
    return name[:head] + "…" + name[len(name) - (limit - 1 - head):]


def render_svg(r: Report) -> str:
    depth, edges = _layers(r)
    if not depth:
        return '<p>No datasets or packages in scope.</p>'
    ds = {d["name"]: d for d in r["datasets"]}
    pii_nodes = {f"d:{n}" for n, d in ds.items() if d["has_pii"]}
    pii_nodes |= {f"t:{p['name']}" for p in r["packages"] if p["handles_pii"]}
    # Edges a PII flow travels: into each hop's transform (`via`) from the previous hop's dataset,
    # and out of it into the hop's dataset; the masking hop is drawn as masked.
    hot: dict[tuple[str, str], str] = {}
    for f in r["flows"]["flows"]:
        for prev, hop in zip(f["path"], f["path"][1:]):
            if not hop["via"] or prev["dataset"] == hop["dataset"]:
                continue
            style = "masked" if hop["masking"] else "pii"
            t = f"t:{hop['via']}"
            for edge in ((f"d:{prev['dataset']}", t), (t, f"d:{hop['dataset']}")):
                if hot.get(edge) != "pii":
                    hot[edge] = style
    layers = _ordered_layers(depth, edges)
    w, h, gx, gy, pad = 210, 40, 70, 22, 20
    pos = {n: (pad + d * (w + gx), pad + i * (h + gy)) for d, members in layers.items() for i, n in enumerate(members)}
    width = pad * 2 + (max(layers) + 1) * (w + gx) - gx
    height = pad * 2 + max(len(m) for m in layers.values()) * (h + gy) - gy
    # A small picture is as tall as its shape needs; a big one gets most of the window to zoom in.
    tall = "72vh" if len(pos) > 60 else f"clamp(240px, calc((100vw - 60px) * {height / width:.4f}), 72vh)"
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" style="height:{tall}" role="img" aria-label="lineage of datasets and packages">'),
           ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#8a94a6"/></marker>'
           '<marker id="arrow-pii" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#d93025"/></marker></defs>')]
    for a, b in edges:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        x1, y1, y2 = x1 + w, y1 + h / 2, y2 + h / 2
        style = hot.get((a, b))
        stroke = {"pii": 'stroke="#d93025" stroke-width="2.5"',
                  "masked": 'stroke="#e8a317" stroke-width="2.5" stroke-dasharray="6 4"'}.get(
                      style or "", 'stroke="#a9b2c2" stroke-width="1.2"')
        marker = "arrow-pii" if style == "pii" else "arrow"
        mx = (x1 + x2) / 2
        out.append(f'<path class="edge{" " + style if style else ""}" data-from="{escape(a)}" data-to="{escape(b)}" '
                   f'd="M{x1:.0f},{y1:.0f} C{mx:.0f},{y1:.0f} '
                   f'{mx:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" fill="none" {stroke} marker-end="url(#{marker})"/>')
    for n, (x, y) in sorted(pos.items()):
        kind, name = n[0], n[2:]
        pii = n in pii_nodes
        fill = "#fde8e7" if pii else ("#eef4ff" if kind == "d" else "#f1f3f6")
        line = "#d93025" if pii else "#7d8799"
        rx = 20 if kind == "t" else 4
        sub = ds[name]["classification"] or "unclassified" if kind == "d" else "transform"
        out.append(f'<g class="node {"dataset" if kind == "d" else "transform"}{" pii" if pii else ""}" '
                   f'data-id="{escape(n)}" data-name="{escape(name)}">'
                   f'<title>{escape(name)}</title>'
                   f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="{rx}" fill="{fill}" stroke="{line}" '
                   f'stroke-width="{2 if pii else 1}"/>'
                   f'<text x="{x + w / 2:.0f}" y="{y + 17}" text-anchor="middle" font-size="13" '
                   f'font-family="sans-serif" fill="#1d2430">{escape(_shorten(name, 28))}</text>'
                   f'<text x="{x + w / 2:.0f}" y="{y + 32}" text-anchor="middle" font-size="10" '
                   f'font-family="sans-serif" fill="#5b6575">{escape(sub)}{" · PII" if pii else ""}</text></g>')
    out.append("</svg>")
    return "\n".join(out)


def _view_js() -> str:
    return resources.files("dkbuild.governance").joinpath("lineage_view.js").read_text(encoding="utf-8")


def _table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _tag(level: str | None) -> str:
    level = level or "unclassified"
    return f'<span class="tag {escape(level)}">{escape(level)}</span>'


def render_html(r: Report) -> str:
    e = escape
    s = r["summary"]
    cards = [(s["packages"], "packages"), (s["packages_with_pii"], "packages with PII"),
             (s["datasets"], "datasets"), (s["datasets_with_pii"], "datasets with PII"),
             (s["datasets_by_classification"]["restricted"], "restricted"),
             (s["datasets_by_classification"]["confidential"], "confidential"),
             (s["datasets_by_classification"]["internal"], "internal"),
             (s["pii_flows"], "PII flows"), (s["cross_boundary_flows"], "cross-boundary flows"),
             (f"{s['compliance_percent']}%", "policies passing")]
    scope = " ".join(r["scope"]["patterns"]) + "".join(f" {k}={v}" for k, v in r["scope"]["filters"].items())
    policies = _table(["policy", "code", "status", "compliance", "offending files"], [
        [e(p["title"]), e(p["code"] or "-"), f'<span class="{p["status"]}">{p["status"].upper()}</span>',
         f"{p['compliance_percent']}%",
         "<br>".join(e(v["file"] + (f":{v['line']}" if v["line"] else "") + " — " + v["message"])
                     for v in p["violations"]) or "-"] for p in r["policies"]])
    packages = _table(["package", "namespace", "runtime", "owner", "classification", "PII", "reads", "writes"], [
        [e(p["name"]), e(p["namespace"] or "-"), e(p["runtime"] or "-"), e(p["owner"] or "-"), _tag(p["classification"]),
         '<span class="pii">yes</span>' if p["handles_pii"] else "no", e(", ".join(p["reads"]) or "-"),
         e(", ".join(p["writes"]) or "-")] for p in r["packages"]])
    datasets = _table(["dataset", "namespace", "owner", "classification", "PII columns", "producers", "consumers"], [
        [e(d["name"]), e(d["namespace"] or "-"), e(d["owner"] or "-"),
         _tag(d["classification"]) + (" declassified" if d["declassified"] else ""),
         f'<span class="pii">{e(_pii_cols(d))}</span>' if d["has_pii"] else "-",
         e(", ".join(d["producers"]) or "-"), e(", ".join(d["consumers"]) or "-")] for d in r["datasets"]])
    flows = _table(["source", "sink", "hops", "cross-boundary", "flags", "path"], [
        [e(_col(f["source"])), e(_col(f["sink"])), str(f["hops"]),
         '<span class="fail">yes</span>' if f["cross_boundary"] else "no", e(_flags(f)), e(" → ".join(_col(h) for h in f["path"]))]
        for f in r["flows"]["flows"]])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Governance report: {e(r['workspace'] or 'workspace')}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>Governance report: {e(r['workspace'] or 'workspace')}</h1>
<div class="scope">scope: {e(scope)}</div>
<div class="cards">{''.join(f'<div class="card"><b>{e(str(v))}</b><span>{e(k)}</span></div>' for v, k in cards)}</div>
<h2>Lineage</h2>
<div class="legend"><span style="color:#d93025">━ PII flow</span><span style="color:#e8a317">╍ masked PII flow</span>
<span>square corners: dataset</span><span>rounded: transform</span><span class="pii">red outline: holds or handles PII</span></div>
<div id="lineage">
<div class="tools"><input id="lineage-search" type="search" placeholder="search datasets and packages"
aria-label="search the lineage"><button id="lineage-in" title="zoom in">+</button><button id="lineage-out"
title="zoom out">−</button><button id="lineage-fit" title="whole picture">Fit</button><button
id="lineage-all" title="leave focus and search">Show all</button><span id="lineage-status"></span></div>
{render_svg(r)}
</div>
<script>{_view_js()}</script>
<h2>Policy compliance</h2>{policies}
<h2>Packages</h2>{packages}
<h2>Datasets</h2>{datasets}
<h2>PII flows</h2>{flows}
</body></html>
"""

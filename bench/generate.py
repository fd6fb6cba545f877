"""Generate a synthetic but realistic DataKit workspace for benchmarking dkb.

    python -m bench.generate --packages N --seed S DIR

The workspace is a git repository (one commit) holding:

* three connectors (postgres, aws-s3, kafka), each with CloudQuery plugin images;
* a few dozen stores spread over them, secrets as `${VAR}` references;
* source datasets (no producer in the repo) and one or two output datasets per transform, with 5-30
  columns, some PII, and column lineage (`from:`) on derived datasets;
* N Transform packages in nested directories (`pipelines/<domain>/<team>/<name>`), arranged in a
  layered DAG: each transform reads 1-4 datasets from earlier layers (mostly the previous one),
  with a heavy-tailed popularity so that a few hub datasets fan out to many readers, and writes its
  own outputs (exactly one producer per dataset). Mostly generic-python, plus some dbt, generic-go
  and cloudquery packages with the files their rules check.

Everything is classified `confidential` and PII propagates along `from:` lineage, so the workspace
lints clean. Output is a pure function of (N, seed): same seed, same bytes.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# libyaml's emitter writes the same bytes as PyYAML's pure-Python one for these documents (tested),
# five times faster.
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

API = "datakit.infoblox.dev/v1alpha1"
DOMAINS = ["customer", "finance", "web", "marketing", "risk", "ops", "product", "supply"]
TEAMS = ["core", "analytics", "platform", "growth", "insights"]
WORDS = ["orders", "events", "sessions", "profiles", "invoices", "payments", "clicks", "accounts", "carts",
         "shipments", "returns", "stock", "leads", "campaigns", "alerts", "metrics", "ledger", "refunds",
         "devices", "tickets"]
VERBS = ["enrich", "dedupe", "rollup", "join", "score", "clean", "aggregate", "sessionize", "flatten", "mart"]
COLUMNS = [("id", "integer"), ("created_at", "timestamp"), ("updated_at", "timestamp"), ("amount", "decimal"),
           ("currency", "string"), ("status", "string"), ("country_code", "string"), ("quantity", "integer"),
           ("price", "decimal"), ("category", "string"), ("region", "string"), ("channel", "string"),
           ("score", "double"), ("is_active", "boolean"), ("sku", "string"), ("page_views", "integer"),
           ("duration_ms", "integer"), ("source", "string"), ("campaign_id", "string"), ("device", "string"),
           ("browser", "string"), ("event_date", "date"), ("revenue", "decimal"), ("discount", "decimal"),
           ("tier", "string"), ("segment", "string"), ("latency_ms", "integer"), ("error_count", "integer"),
           ("region_code", "string"), ("partner_id", "integer"), ("warehouse_id", "integer"),
           ("order_count", "integer"), ("session_id", "string")]
PII_COLUMNS = [("email", "string"), ("phone", "string"), ("full_name", "string"), ("ip_address", "string"),
               ("street_address", "string"), ("birth_date", "date")]
CONNECTORS = {
    "postgres": {"protocol": "postgresql", "source": "ghcr.io/cloudquery/cq-source-postgresql:v8.0.0",
                 "destination": "ghcr.io/cloudquery/cq-destination-postgresql:v8.0.0"},
    "aws-s3": {"protocol": "s3", "source": "ghcr.io/cloudquery/cq-source-s3:v1.4.0",
               "destination": "ghcr.io/cloudquery/cq-destination-s3:v7.2.0"},
    "kafka": {"protocol": "kafka", "source": "ghcr.io/cloudquery/cq-source-kafka:v1.2.0",
              "destination": "ghcr.io/cloudquery/cq-destination-kafka:v5.4.0"},
}
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
           "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}


@dataclass
class DataSet:
    name: str
    domain: str
    layer: int
    store: str
    connector: str
    columns: list[dict[str, Any]] = field(default_factory=list)
    weight: float = 1.0  # popularity: how likely a later transform is to read it
    readers: int = 0


@dataclass
class Transform:
    name: str
    domain: str
    team: str
    layer: int
    runtime: str
    inputs: list[DataSet] = field(default_factory=list)
    outputs: list[DataSet] = field(default_factory=list)

    @property
    def package(self) -> str:
        return f"pipelines/{self.domain}/{self.team}/{self.name}"


@dataclass
class Plan:
    stores: dict[str, str]  # store name -> connector
    datasets: list[DataSet]
    transforms: list[Transform]

    def layers(self) -> int:
        return max(t.layer for t in self.transforms)


def _layers(n: int) -> int:
    return max(3, min(12, round(math.log2(max(n, 2)))))


def _schema(rng: random.Random, pii_prob: float) -> list[dict[str, Any]]:
    width = rng.randint(5, 30)
    cols = [{"name": "id", "type": "integer"}]
    pool = rng.sample(COLUMNS[1:], min(width - 1, len(COLUMNS) - 1))
    for name, typ in pool:
        cols.append({"name": name, "type": typ})
    if rng.random() < pii_prob:
        for name, typ in rng.sample(PII_COLUMNS, rng.randint(1, 3)):
            cols.append({"name": name, "type": typ, "pii": True})
    return cols[:max(width, 5)] if not any(c.get("pii") for c in cols) else cols


def _derived_schema(rng: random.Random, inputs: list[DataSet]) -> list[dict[str, Any]]:
    """Columns of an output dataset: about half carried over from inputs with `from:` lineage
    (PII stays PII), the rest computed here."""
    width = rng.randint(5, 30)
    cols: list[dict[str, Any]] = []
    seen: set[str] = set()
    candidates = [(d, c) for d in inputs for c in d.columns]
    rng.shuffle(candidates)
    for d, c in candidates[:max(1, width // 2)]:
        if c["name"] in seen:
            continue
        seen.add(c["name"])
        col = {"name": c["name"], "type": c["type"], "from": f"{d.name}.{c['name']}"}
        if c.get("pii"):
            col["pii"] = True
        cols.append(col)
    for name, typ in rng.sample(COLUMNS, len(COLUMNS)):
        if len(cols) >= width:
            break
        if name not in seen:
            seen.add(name)
            cols.append({"name": name, "type": typ, "description": f"Computed {name.replace('_', ' ')}."})
    return cols


def plan(n: int, seed: int) -> Plan:
    rng = random.Random(seed)
    layers = _layers(n)
    n_stores = max(3, min(60, n // 25))
    connectors = list(CONNECTORS)
    stores = {}
    for i in range(n_stores):
        conn = connectors[i % len(connectors)]
        stores[f"{conn}-{DOMAINS[i % len(DOMAINS)]}-{i:03d}"] = conn
    store_names = list(stores)

    def new_dataset(name: str, domain: str, layer: int) -> DataSet:
        st = rng.choice(store_names)
        # Pareto popularity: a few hubs are read by many transforms (fan-out).
        return DataSet(name, domain, layer, st, stores[st], weight=rng.paretovariate(1.2))

    datasets: list[DataSet] = []
    for i in range(max(4, n // 8)):
        domain = rng.choice(DOMAINS)
        d = new_dataset(f"src-{domain}-{rng.choice(WORDS)}-{i:05d}", domain, 0)
        d.columns = _schema(rng, pii_prob=0.35)
        datasets.append(d)

    # Spread transforms over layers 1..L, a bit wider in the middle (like a real platform).
    shape = [1.0 + math.sin(math.pi * (k + 0.5) / layers) for k in range(layers)]
    counts = [max(1, int(n * s / sum(shape))) for s in shape]
    k = 0
    while sum(counts) < n:
        counts[k % layers] += 1
        k += 1
    while sum(counts) > n:
        j = max(range(layers), key=lambda x: counts[x])
        counts[j] -= 1
    by_layer: dict[int, list[DataSet]] = {0: list(datasets)}
    transforms: list[Transform] = []
    idx = 0
    for layer in range(1, layers + 1):
        by_layer[layer] = []
        earlier = [d for lv in range(layer) for d in by_layer[lv]]
        previous = by_layer[layer - 1] or earlier
        # choices() would accumulate the weights on every draw (quadratic in N); the same sums
        # computed once per layer give the same draws.
        cum = {id(earlier): list(itertools.accumulate(x.weight for x in earlier)),
               id(previous): list(itertools.accumulate(x.weight for x in previous))}
        for _ in range(counts[layer - 1]):
            domain = rng.choice(DOMAINS)
            r = rng.random()
            runtime = ("generic-python" if r < 0.85 else "dbt" if r < 0.92 else "generic-go" if r < 0.96
                       else "cloudquery")
            t = Transform(f"{domain}-{rng.choice(VERBS)}-{rng.choice(WORDS)}-{idx:05d}", domain,
                          rng.choice(TEAMS), layer, runtime)
            idx += 1
            want = rng.choices([1, 2, 3, 4], weights=[3, 4, 2, 1])[0]
            chosen: dict[str, DataSet] = {}
            for _ in range(want * 3):
                if len(chosen) >= want:
                    break
                pool = previous if rng.random() < 0.7 else earlier
                d = rng.choices(pool, cum_weights=cum[id(pool)])[0]
                chosen.setdefault(d.name, d)
            t.inputs = sorted(chosen.values(), key=lambda d: d.name)
            for d in t.inputs:
                d.readers += 1
            for j in range(1 if rng.random() < 0.8 else 2):
                out = new_dataset(f"{t.name}-out{j}", domain, layer)
                out.columns = _derived_schema(rng, t.inputs)
                t.outputs.append(out)
                by_layer[layer].append(out)
                datasets.append(out)
            transforms.append(t)
    return Plan(stores, datasets, transforms)


# --- rendering ---------------------------------------------------------------------------------

def _doc(kind: str, metadata: dict[str, Any], spec: dict[str, Any], comment: str) -> str:
    body = {"apiVersion": API, "kind": kind, "metadata": metadata, "spec": spec}
    return f"# {comment}\n" + _dump(body, width=120)


def _dump(data: Any, **kw: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, **kw)


def _connector(name: str) -> str:
    c = CONNECTORS[name]
    return _doc("Connector", {"name": name, "labels": {"datakit.infoblox.dev/provider": name}},
                {"type": name, "provider": name, "version": "1.0.0", "protocol": c["protocol"],
                 "capabilities": ["source", "destination"],
                 "plugin": {"source": c["source"], "destination": c["destination"]}},
                f"{name} as a technology type, owned by the platform team.")


def _store(name: str, connector: str) -> str:
    env = name.upper().replace("-", "_")
    if connector == "postgres":
        conn = {"host": f"{name}.db.internal", "port": 5432, "database": "analytics", "user": "dk_pipelines"}
        secrets = {"password": f"${{{env}_PASSWORD}}"}
    elif connector == "aws-s3":
        conn = {"bucket": f"acme-{name}", "region": "us-east-1"}
        secrets = {"access_key_id": f"${{{env}_ACCESS_KEY_ID}}", "secret_access_key": f"${{{env}_SECRET_ACCESS_KEY}}"}
    else:
        conn = {"bootstrapServers": f"kafka-0.{name}.internal:9093", "securityProtocol": "SASL_SSL"}
        secrets = {"saslPassword": f"${{{env}_SASL_PASSWORD}}"}
    return _doc("Store", {"name": name}, {"connector": connector, "connection": conn, "secrets": secrets},
                f"Store {name} ({connector}).")


def _dataset(d: DataSet) -> str:
    spec: dict[str, Any] = {"store": d.store}
    if d.connector == "postgres":
        spec.update(table=f"{d.domain}.{d.name.replace('-', '_')}", format="table")
    elif d.connector == "aws-s3":
        spec.update(prefix=f"{d.domain}/{d.name}/", format="parquet")
    else:
        spec.update(topic=f"{d.domain}.{d.name}.v1", format="json")
    spec["classification"] = "confidential"
    spec["schema"] = d.columns
    meta = {"name": d.name, "version": "1.0.0", "labels": {"domain": d.domain, "tier": _tier(d.layer)}}
    return _doc("DataSet", meta, spec, "Source contract; nothing in this repo writes it." if d.layer == 0
                else f"Written by the layer-{d.layer} transform that owns it.")


def _tier(layer: int) -> str:
    return "source" if layer == 0 else "raw" if layer == 1 else "curated" if layer < 5 else "mart"


def _transform(t: Transform, rng: random.Random) -> str:
    spec: dict[str, Any] = {"runtime": t.runtime, "mode": "batch"}
    if t.runtime != "cloudquery":
        spec["image"] = f"registry.acme.dev/{t.domain}/{t.name}:1.0.0"
    spec["inputs"] = [{"dataset": d.name} for d in t.inputs]
    spec["outputs"] = [{"dataset": d.name} for d in t.outputs]
    if rng.random() < 0.5:
        spec["trigger"] = {"policy": "on-change"}
    else:
        spec["trigger"] = {"policy": "schedule",
                           "schedule": {"cron": f"{rng.randint(0, 59)} {rng.randint(0, 23)} * * *", "timezone": "UTC"}}
    spec["timeout"] = rng.choice(["30m", "1h", "2h"])
    spec["resources"] = {"cpu": rng.choice(["500m", "1", "2"]), "memory": rng.choice(["512Mi", "1Gi", "2Gi", "4Gi"])}
    if t.runtime != "cloudquery":
        spec["env"] = [{"name": "LOG_LEVEL", "value": "info"}]
    spec["lineage"] = {"enabled": True, "emitter": "marquez", "namespace": "acme-data"}
    meta = {"name": t.name, "namespace": t.domain, "version": "1.0.0", "labels": {"team": f"{t.domain}-{t.team}"}}
    return _doc("Transform", meta, spec, f"{t.runtime} job: {', '.join(d.name for d in t.inputs)} -> "
                f"{', '.join(d.name for d in t.outputs)}.")


def _package_files(t: Transform) -> dict[str, str]:
    mod = t.name.replace("-", "_")
    if t.runtime == "generic-python":
        ins = ", ".join(repr(d.name) for d in t.inputs)
        return {
            f"src/{mod}/__init__.py": f'"""{t.name}."""\n',
            f"src/{mod}/main.py": (f'"""Entry point of {t.name}."""\n\nimport os\n\nINPUTS = [{ins}]\n\n\n'
                                   "def main() -> int:\n"
                                   "    level = os.environ.get('LOG_LEVEL', 'info')\n"
                                   f"    print(f'{t.name}: reading {{len(INPUTS)}} datasets (log level {{level}})')\n"
                                   "    return 0\n\n\nif __name__ == '__main__':\n    raise SystemExit(main())\n"),
            "requirements.txt": "pyarrow==15.0.0\n",
            "tests/test_main.py": f"from {mod}.main import main\n\n\ndef test_main():\n    assert main() == 0\n",
        }
    if t.runtime == "dbt":
        sels = "\nunion all\n".join(f"select * from {{{{ source('{t.domain}', '{d.name.replace('-', '_')}') }}}}"
                                    for d in t.inputs)
        return {
            "dbt_project.yml": (f"name: {mod}\nversion: \"1.0.0\"\nconfig-version: 2\nprofile: acme_warehouse\n"
                                "model-paths: [\"models\"]\n"),
            f"models/{mod}.sql": sels + "\n",
            "models/sources.yml": _dump({"version": 2, "sources": [{"name": t.domain, "tables": [
                {"name": d.name.replace("-", "_")} for d in t.inputs]}]}),
        }
    if t.runtime == "generic-go":
        return {
            "go.mod": f"module acme.dev/pipelines/{t.name}\n\ngo 1.22\n",
            "main.go": (f"// Command {t.name} is a generated benchmark job.\npackage main\n\nimport \"fmt\"\n\n"
                        f"func main() {{\n\tfmt.Println(\"{t.name}\")\n}}\n"),
        }
    return {"README.md": f"# {t.name}\n\nCloudQuery sync from {', '.join(d.name for d in t.inputs)}.\n"}


def files(p: Plan, seed: int) -> dict[str, str]:
    """Every file of the workspace, path -> text."""
    rng = random.Random(seed ^ 0x5EED)
    out: dict[str, str] = {
        "workspace.toml": "[workspace]\nname = \"bench\"\n",
        "README.md": f"# bench\n\nSynthetic DataKit workspace: {len(p.transforms)} transforms, "
                     f"{len(p.datasets)} datasets, {p.layers()} layers.\n",
        ".gitignore": ".dkb/\n",
    }
    for name in CONNECTORS:
        out[f"platform/connectors/{name}/dk.yaml"] = _connector(name)
    for name, conn in p.stores.items():
        out[f"platform/stores/{name}/dk.yaml"] = _store(name, conn)
    for d in p.datasets:
        out[f"datasets/{d.domain}/{_tier(d.layer)}/{d.name}/dk.yaml"] = _dataset(d)
    for t in p.transforms:
        out[f"{t.package}/dk.yaml"] = _transform(t, rng)
        for rel, text in _package_files(t).items():
            out[f"{t.package}/{rel}"] = text
    return out


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


COMMIT_TIME = "1704067200 +0000"  # GIT_*_DATE above, as fast-import wants it


def write_files(root: Path, tree: dict[str, str]) -> None:
    """Write every file of `tree` under `root`, one mkdir per directory, not per file."""
    made: set[Path] = set()
    for rel, text in tree.items():
        path = root / rel
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)


def commit_tree(root: Path, tree: dict[str, str], message: str) -> None:
    """A new repository at `root` whose one commit holds `tree`, checked out.

    One `git fast-import` stream (a single pack, no loose object per file), then git itself
    writes the work tree and the index: at 50,000 packages this is seconds, where writing the
    files from Python and `git add -A` took minutes. The commit is the one `git commit` made.
    """
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "bench")
    git(root, "config", "user.email", "bench@example.com")
    who = f"bench <bench@example.com> {COMMIT_TIME}"
    msg = (message + "\n").encode()
    chunks = [b"commit refs/heads/main\n", f"author {who}\ncommitter {who}\n".encode(),
              b"data %d\n" % len(msg), msg]
    for rel, text in sorted(tree.items()):
        data = text.encode()
        chunks += [b"M 100644 inline ", rel.encode(), b"\ndata %d\n" % len(data), data, b"\n"]
    subprocess.run(["git", "-C", str(root), "fast-import", "--quiet", "--done"], input=b"".join(chunks) + b"done\n",
                   check=True, capture_output=True, env={**os.environ, **GIT_ENV})
    git(root, "reset", "-q", "--hard", "main")


def generate(root: Path, n: int, seed: int = 0, *, commit: bool = True) -> Plan:
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise SystemExit(f"bench.generate: {root} is not empty")
    p = plan(n, seed)
    tree = files(p, seed)
    if commit:
        root.mkdir(parents=True, exist_ok=True)
        commit_tree(root, tree, f"synthetic workspace: {n} packages, seed {seed}")
    else:
        write_files(root, tree)
    return p


def stats(p: Plan) -> dict[str, Any]:
    fan_in = [len(t.inputs) for t in p.transforms]
    fan_out = [d.readers for d in p.datasets]
    return {"transforms": len(p.transforms), "datasets": len(p.datasets), "stores": len(p.stores),
            "layers": p.layers(), "max_fan_in": max(fan_in), "max_fan_out": max(fan_out),
            "runtimes": {r: sum(t.runtime == r for t in p.transforms)
                         for r in sorted({t.runtime for t in p.transforms})}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=1000, help="number of Transform packages")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-git", action="store_true", help="write files only, no git commit")
    ap.add_argument("dir", type=Path)
    args = ap.parse_args(argv)
    p = generate(args.dir, args.packages, args.seed, commit=not args.no_git)
    print(yaml.safe_dump(stats(p), sort_keys=False), end="", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

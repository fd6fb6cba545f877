"""dk-shaped manifests for the suite's own fixtures, written the way dk's examples and `dk init`
templates write them (fields from dk's contracts: sdk/manifest, sdk/validate). Each builder returns
a plain dict; `workspace()` writes a tree of them as a committed git workspace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import git, write_tree

API = "datakit.infoblox.dev/v1alpha1"


def _meta(name: str, namespace: str | None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta.update(extra)
    return meta


def connector(name: str = "s3", type_: str | None = None) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Connector", "metadata": _meta(name, None),
            "spec": {"type": type_ or name, "protocol": type_ or name, "capabilities": ["source", "destination"]}}


def s3_store(name: str, bucket: str, namespace: str | None = None) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Store", "metadata": _meta(name, namespace),
            "spec": {"connector": "s3", "connection": {"bucket": bucket, "region": "us-east-1"}}}


def pg_store(name: str, namespace: str | None = None) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Store", "metadata": _meta(name, namespace),
            "spec": {"connector": "postgres",
                     "connection": {"connection_string": "postgresql://dk@db.internal:5432/datakit"}}}


def dataset(name: str, store: str, *, namespace: str | None = None, prefix: str | None = None,
            table: str | None = None, schema: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"store": store}
    if table:
        spec["table"] = table
    else:
        spec["prefix"] = prefix if prefix is not None else f"data/{name}/"
        spec["format"] = "parquet"
    spec["classification"] = "internal"
    spec["schema"] = schema if schema is not None else [{"name": "id", "type": "string"}]
    return {"apiVersion": API, "kind": "DataSet", "metadata": _meta(name, namespace), "spec": spec}


def transform(name: str, inputs: list[str], outputs: list[str], *, namespace: str | None = None,
              runtime: str = "generic-python", image: str | None = "auto", version: str = "0.1.0") -> dict[str, Any]:
    spec: dict[str, Any] = {"runtime": runtime, "mode": "batch"}
    if image:
        spec["image"] = f"registry.example.com/{name}:{version}" if image == "auto" else image
    spec["inputs"] = [{"dataset": d} for d in inputs]
    spec["outputs"] = [{"dataset": d} for d in outputs]
    spec["trigger"] = {"policy": "on-change"}
    spec["timeout"] = "30m"
    return {"apiVersion": API, "kind": "Transform",
            "metadata": _meta(name, namespace, version=version, labels={"team": "data"}), "spec": spec}


def python_package(directory: str, manifest: dict[str, Any],
                   resources: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A generic-python package as `dk init --runtime generic-python` lays it out, plus the package's
    resource copies, e.g. {"store/s3-raw.yaml": {...}, "dataset/raw.yaml": {...}}."""
    files: dict[str, Any] = {f"{directory}/dk.yaml": manifest,
                             f"{directory}/main.py": "print('hello')\n",
                             f"{directory}/requirements.txt": "# dependencies\n"}
    for rel, doc in (resources or {}).items():
        files[f"{directory}/{rel}"] = doc
    return files


def workspace(root: Path, files: dict[str, Any]) -> Path:
    """Write files (dicts become YAML) with a one-line workspace.toml, git init and commit."""
    write_tree(root, {"workspace.toml": "[workspace]\n", **files})
    git(root, "init", "--quiet", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "--no-verify", "-m", "fixture")
    return root


# --- reading dkb's answers without depending on their exact shape -------------------------------

def walk(doc: Any) -> Iterator[dict[str, Any]]:
    """Every mapping inside a JSON document."""
    if isinstance(doc, dict):
        yield doc
        for value in doc.values():
            yield from walk(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from walk(value)


def _is_external_marker(key: str, value: Any) -> bool:
    return ("external" in key.lower() and value is True) or (isinstance(value, str) and value.lower() == "external")


def marked_external(doc: Any, name: str) -> bool:
    """True when some object of `doc` names the dataset `name` and marks it external (a true
    `external`/`is_external` key, or a value "external" such as a kind or status)."""
    for node in walk(doc):
        names = {str(v) for k, v in node.items() if isinstance(v, str)
                 and k.lower() in ("name", "id", "label", "dataset", "target")}
        if not any(n == name or n.endswith((f"/{name}", f":{name}")) for n in names):
            continue
        if any(_is_external_marker(k, v) for k, v in node.items()):
            return True
    return False


def diagnostics(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc.get("diagnostics") or [])


def text_of(diagnostic: dict[str, Any]) -> str:
    return json.dumps(diagnostic)

"""`dkb schema`: generated JSON Schemas accept every example manifest and reject broken ones."""

from __future__ import annotations

import copy
import json
import tomllib

import jsonschema
import pytest
import yaml

from dkbuild.manifests.models import KINDS
from tests.conftest import EXAMPLE, REPO

FILES = ["connector", "store", "dataset", "datasetgroup", "transform", "dk", "workspace"]


def example_manifests() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(EXAMPLE.rglob("*.y*ml")):
        rel = path.relative_to(EXAMPLE).as_posix()
        if rel.startswith((".dkb/", ".ruff_cache/")):
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in KINDS:
                found.append((rel, doc))
    return found


MANIFESTS = example_manifests()


@pytest.fixture(scope="module")
def schemas(tmp_path_factory) -> dict[str, dict]:
    import subprocess
    import sys
    out = tmp_path_factory.mktemp("schemas")
    proc = subprocess.run([sys.executable, "-m", "dkbuild", "schema", "--output", str(out)],
                          check=False, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.schema.json" for n in FILES)
    return {n: json.loads((out / f"{n}.schema.json").read_text()) for n in FILES}


def validator(schema: dict) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_schemas_are_valid_draft_2020_12(schemas):
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(f"/{name}.schema.json") and schema["title"] and schema["description"]


def test_every_object_is_closed(schemas):
    def walk(node, path):
        if isinstance(node, dict):
            # The dk.schema.json root only picks the kind; its oneOf branches are closed.
            if "properties" in node and path[-1:] != ("if",) and path != ("dk",):
                # False, or a schema for map-like tables ([environments.<name>], [rules.<rule>]).
                assert node.get("additionalProperties", True) is not True, path
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))
    for name, schema in schemas.items():
        walk(schema, (name,))
    assert "only warns" in schemas["transform"]["description"]


def test_enums(schemas):
    defs = schemas["dk"]["$defs"]
    assert defs["TransformSpec"]["properties"]["runtime"]["enum"] == ["cloudquery", "generic-go", "generic-python", "dbt"]
    assert defs["TransformSpec"]["properties"]["mode"]["enum"] == ["batch", "streaming"]
    assert "confidential" in json.dumps(defs["DataSetSpec"]["properties"]["classification"])
    assert "on-change" in json.dumps(defs["Trigger"]["properties"]["policy"])
    assert "tokenize" in json.dumps(defs["SchemaField"]["properties"]["masking"])
    assert defs["Transform"]["properties"]["kind"]["const"] == "Transform"
    assert "datakit.infoblox.dev/v1alpha1" in defs["Transform"]["properties"]["apiVersion"]["enum"]
    assert schemas["dk"]["properties"]["kind"]["enum"] == list(KINDS)


def test_examples_exist():
    kinds = {doc["kind"] for _rel, doc in MANIFESTS}
    assert kinds >= {"Transform", "DataSet", "Store", "Connector"}
    assert len(MANIFESTS) > 30


@pytest.mark.parametrize("rel,doc", MANIFESTS, ids=[rel for rel, _ in MANIFESTS])
def test_every_example_manifest_validates(schemas, rel, doc):
    kind_file = doc["kind"].lower()
    assert list(validator(schemas[kind_file]).iter_errors(doc)) == []
    assert list(validator(schemas["dk"]).iter_errors(doc)) == []


def _one(kind: str) -> dict:
    return copy.deepcopy(next(doc for _rel, doc in MANIFESTS if doc["kind"] == kind))


BROKEN = [
    ("wrong type", "Transform", lambda d: d["spec"].__setitem__("inputs", "raw-events")),
    ("unknown field", "Transform", lambda d: d["spec"].__setitem__("schedule", "0 2 * * *")),
    ("unknown nested field", "DataSet", lambda d: d["spec"]["schema"][0].__setitem__("nullable", True)),
    ("bad runtime enum", "Transform", lambda d: d["spec"].__setitem__("runtime", "spark")),
    ("bad mode", "Transform", lambda d: d["spec"].__setitem__("mode", "realtime")),
    ("bad classification", "DataSet", lambda d: d["spec"].__setitem__("classification", "secret")),
    ("bad apiVersion", "Store", lambda d: d.__setitem__("apiVersion", "v1")),
    ("missing store", "DataSet", lambda d: d["spec"].pop("store")),
    ("bad name", "Connector", lambda d: d["metadata"].__setitem__("name", "Postgres_DB")),
    ("bad capability", "Connector", lambda d: d["spec"].__setitem__("capabilities", ["sink"])),
    ("image missing for generic", "Transform", lambda d: (d["spec"].__setitem__("runtime", "generic-go"),
                                                          d["spec"].pop("image", None))),
    ("ref with dataset and tags", "Transform", lambda d: d["spec"]["inputs"][0].__setitem__("tags", {"a": "b"})),
]


@pytest.mark.parametrize("what,kind,breaker", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_manifests_are_rejected(schemas, what, kind, breaker):
    doc = _one(kind)
    assert list(validator(schemas["dk"]).iter_errors(doc)) == []
    breaker(doc)
    assert list(validator(schemas[kind.lower()]).iter_errors(doc)), what
    assert list(validator(schemas["dk"]).iter_errors(doc)), what


def test_dk_schema_rejects_unknown_kind(schemas):
    doc = _one("Store")
    doc["kind"] = "Pipeline"
    assert list(validator(schemas["dk"]).iter_errors(doc))


@pytest.mark.parametrize("path", [REPO / "workspace.toml", EXAMPLE / "workspace.toml"],
                         ids=["repo", "example"])
def test_workspace_toml_validates(schemas, path):
    data = tomllib.loads(path.read_text())
    assert list(validator(schemas["workspace"]).iter_errors(data)) == []


def test_workspace_schema_rejects_unknown_and_wrong_types(schemas):
    v = validator(schemas["workspace"])
    assert list(v.iter_errors({"workspace": {"pakages": ["x/**"]}}))
    assert list(v.iter_errors({"cache": {"remote": 5}}))
    assert list(v.iter_errors({"lineage": {"transport": "kafka"}}))
    assert list(v.iter_errors({"policy": {"pii_propagation": "fatal"}}))
    assert list(v.iter_errors({"environments": {"prod": {"aprovals": 2}}}))
    assert not list(v.iter_errors({"environments": {"order": ["dev"], "dev": {"approvals": 1}},
                                   "rules": {"generic-python": {"base_image": "x"}}}))


def test_generated_workspace_and_scaffolds_validate(schemas, workspace, dkb):
    root = workspace(base=False)
    for runtime, mode in (("generic-python", "streaming"), ("dbt", "batch"), ("cloudquery", "batch")):
        assert dkb("init", f"p/{runtime}-{mode}", "--runtime", runtime, "--mode", mode, cwd=root).code == 0
    docs = [yaml.safe_load(p.read_text()) for p in (root / "p").rglob("*.yaml")]
    assert len(docs) > 10
    for doc in docs:
        assert list(validator(schemas["dk"]).iter_errors(doc)) == [], doc
    from dkbuild.scaffold import render_workspace_toml
    assert not list(validator(schemas["workspace"]).iter_errors(tomllib.loads(render_workspace_toml())))


def test_stdout_single_kind_combined_and_errors(dkb):
    one = dkb("schema", "Transform")
    assert one.code == 0 and one.json()["title"] == "DataKit Transform"
    lower = dkb("schema", "dataset")
    assert lower.code == 0 and lower.json()["$id"].endswith("/dataset.schema.json")
    combined = dkb("schema")
    assert combined.code == 0 and len(combined.json()["oneOf"]) == 5
    ws = dkb("schema", "workspace")
    assert ws.code == 0 and "workspace" in ws.json()["properties"]
    bad = dkb("schema", "Transfrom")
    assert bad.code == 2 and "did you mean 'Transform'" in bad.err
    both = dkb("schema", "Store", "--output", "x")
    assert both.code == 2

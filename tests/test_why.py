"""`dkb why`: what changed since the last cached build of a target."""

from __future__ import annotations

import yaml


def test_why_explains_files_fields_and_references(workspace, dkb) -> None:
    root = workspace()
    assert "no earlier build" in dkb("why", "//pipelines/publish", cwd=root).out
    dkb("build", cwd=root)
    assert "cache hit" in dkb("why", "//pipelines/publish", cwd=root).out
    (root / "pipelines/publish/src/main.py").write_text("print('v2')\n")
    path = root / "datasets/report/dk.yaml"
    data = yaml.safe_load(path.read_text())
    data["spec"]["schema"][0]["type"] = "bigint"
    path.write_text(yaml.safe_dump(data))
    res = dkb("why", "//pipelines/publish", cwd=root)
    assert "file changed: pipelines/publish/src/main.py" in res.out
    assert "//datasets/report" in res.out and "spec.schema[0].type" in res.out
    doc = dkb("why", "//pipelines/publish", "--output", "json", cwd=root).json()
    assert doc["status"] == "changed"
    ref = next(r for r in doc["reasons"] if r["component"] == "reference")
    assert ref["inside"][0]["detail"]["field"] == "spec.schema[0].type"


def test_why_on_non_buildable_and_bad_targets(workspace, dkb) -> None:
    root = workspace()
    assert "only Transforms are built" in dkb("why", "//datasets/raw", cwd=root).out
    assert dkb("why", "//pipelines/...", cwd=root).code == 2
    assert dkb("why", "//pipelines/nope", cwd=root).code == 2


def test_why_after_eviction(workspace, dkb) -> None:
    root = workspace()
    dkb("build", cwd=root)
    for entry in (root / ".dkb/cache/ac").glob("*.json"):
        entry.unlink()
    assert dkb("why", "//pipelines/ingest", "--output", "json", cwd=root).json()["status"] == "evicted"

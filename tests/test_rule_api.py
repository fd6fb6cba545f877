"""The open rule API (dkbuild.rule): a workspace rule adds a runtime that lint accepts and build
builds, seeing the Transform and the datasets it reaches through the typed Target view; without
the rule, that runtime is a lint error that lists what the loaded rules provide."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dkbuild.oci.package import LAYER_TYPE
from tests import dk_client
from tests.conftest import dataset, dump, transform

SPARK_RULE = '''\
"""A JVM (Spark) runtime: checks the job's entry point and renders a SparkApplication."""
import json

from dkbuild.rule import Diagnostic, Rule, Target, error


class Spark(Rule):
    name = "spark"
    version = "1"

    def check(self, target: Target) -> list[Diagnostic]:
        if not any(f.endswith((".scala", ".java", ".jar")) for f in target.files):
            return [error("E900", f"{target.node.package}/dk.yaml", "a spark package needs sources or a jar",
                          hint="add src/main/scala/...")]
        return []

    def extra_manifest_files(self, target: Target) -> dict[str, bytes]:
        app = {"name": target.name, "namespace": target.namespace, "version": target.version,
               "inputs": [d.name for d in target.inputs], "outputs": [d.name for d in target.outputs],
               "pii": {d.name: list(d.pii_columns) for d in target.datasets if d.pii_columns},
               "stores": sorted({d.store for d in target.datasets})}
        return {"spark-application.json": json.dumps(app, sort_keys=True).encode()}


RULE = Spark()
'''


def _spark_workspace(root: Path, *, with_rule: bool = True) -> Path:
    files: dict[str, Any] = {
        "workspace.toml": '[workspace]\nname = "jvm"\n',
        "datasets/events/dk.yaml": dump(dataset("events", columns=[{"name": "id", "type": "integer"},
                                                                   {"name": "email", "type": "string", "pii": True}],
                                                classification="confidential")),
        "datasets/sessions/dk.yaml": dump(dataset("sessions")),
        "platform/lake/dk.yaml": dump({"apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": "Store",
                                       "metadata": {"name": "lake"},
                                       "spec": {"connector": "postgres", "connection": {"host": "db"}}}),
        "platform/postgres/dk.yaml": dump({"apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": "Connector",
                                           "metadata": {"name": "postgres"},
                                           "spec": {"type": "postgres", "capabilities": ["source", "destination"]}}),
        "pipelines/spark-sessions/dk.yaml": dump(transform("spark-sessions", ["events"], ["sessions"], runtime="spark")),
        "pipelines/spark-sessions/src/main/scala/Sessions.scala": "object Sessions { def main(a: Array[String]) = () }\n",
    }
    if with_rule:
        files["rules/spark.py"] = SPARK_RULE
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_a_workspace_rule_adds_a_runtime_that_lints_and_builds(tmp_path: Path, dkb: Any) -> None:
    root = _spark_workspace(tmp_path / "ws")
    lint = dkb("lint", "--strict", "-o", "json", cwd=root)
    assert lint.code == 0, lint
    built = dkb("build", "-o", "json", cwd=root)
    assert built.code == 0, built
    [target] = [t for t in json.loads(built.out)["targets"] if t["label"] == "//pipelines/spark-sessions"]
    assert target["status"] == "built"
    index = json.loads((root / ".dkb/oci/index.json").read_text())
    refs = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]
            if "spark-sessions" in m.get("annotations", {}).get("org.opencontainers.image.ref.name", "")]
    artifact = dk_client.pull(dk_client.LayoutSource(root / ".dkb/oci", refs[0]))
    [resources] = [layer for layer in artifact.layers if layer.annotations.get(LAYER_TYPE) == "dkb-resources"]
    layer = dk_client.files_of(resources)
    [name] = [n for n in layer if n.endswith("spark-application.json")]
    app = json.loads(layer[name])
    assert app == {"name": "spark-sessions", "namespace": app["namespace"], "version": app["version"],
                   "inputs": ["events"], "outputs": ["sessions"], "pii": {"events": ["email"]}, "stores": ["lake"]}


def test_the_rules_own_check_runs(tmp_path: Path, dkb: Any) -> None:
    root = _spark_workspace(tmp_path / "ws")
    (root / "pipelines/spark-sessions/src/main/scala/Sessions.scala").unlink()
    lint = dkb("lint", "-o", "json", cwd=root)
    assert lint.code == 1 and "a spark package needs sources or a jar" in lint.out


def test_without_the_rule_the_runtime_is_an_error_that_lists_the_available_ones(tmp_path: Path, dkb: Any) -> None:
    root = _spark_workspace(tmp_path / "ws", with_rule=False)
    lint = dkb("lint", "-o", "json", cwd=root)
    assert lint.code == 1, lint
    [found] = [d for d in json.loads(lint.out)["diagnostics"] if d["code"] == "E233"]
    assert found["file"] == "pipelines/spark-sessions/dk.yaml" and found["line"] > 0
    assert found["message"] == "spec.runtime must be a valid runtime (cloudquery, generic-go, generic-python, dbt)"
    assert "add a build rule for 'spark'" in found["hint"] and "docs/rules.md" in found["hint"]
    with_rule = _spark_workspace(tmp_path / "other")
    (with_rule / "pipelines/spark-sessions/dk.yaml").write_text(
        (with_rule / "pipelines/spark-sessions/dk.yaml").read_text().replace("runtime: spark", "runtime: sprak"))
    typo = [d for d in json.loads(dkb("lint", "-o", "json", cwd=with_rule).out)["diagnostics"] if d["code"] == "E233"]
    assert typo and "spark" in typo[0]["message"] and "did you mean 'spark'?" in typo[0]["hint"]


def test_the_public_api_names_are_importable() -> None:
    import dkbuild.rule as api

    for name in api.__all__:
        assert getattr(api, name) is not None, name

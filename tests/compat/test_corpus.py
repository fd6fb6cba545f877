"""Every dk example and every `dk init` template, unedited, through dkb: lint --strict, build, publish
to a real registry, promote to dev, and the read-only commands. What `dk` accepts, dkb accepts."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.compat.corpus import Workspace, built_packages, layout_blob, layout_index
from tests.conftest import Result, git
from tests.registry import Registry

DK_PACKAGE = "application/vnd.infoblox.dk.package.v1"
DK_CONFIG = "application/vnd.infoblox.dk.config.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def ok(res: Result, what: str, ws: Workspace) -> Result:
    assert res.code == 0, f"{ws.case.id}: `dkb {what}` must exit 0 as dk accepts this case\n{res!r}"
    return res


def build(ws: Workspace) -> dict[str, Any]:
    res = ok(ws.once("build", "//...", "--output", "json"), "build //...", ws)
    return res.json()


def publish(ws: Workspace, registry: Registry) -> dict[str, Any]:
    res = ws.once("publish", "//...", "--registry", f"oci://{registry.host}/compat", "--plain-http",
                  "--output", "json")
    return ok(res, "publish //...", ws).json()


def package_config(ws: Workspace, digest: str) -> dict[str, Any]:
    manifest = json.loads(layout_blob(ws.root, digest))
    assert manifest["mediaType"] == OCI_MANIFEST and manifest["artifactType"] == DK_PACKAGE, manifest
    assert manifest["config"]["mediaType"] == DK_CONFIG, manifest
    return json.loads(layout_blob(ws.root, manifest["config"]["digest"]))


def test_lint_strict_passes(corpus: Workspace) -> None:
    ok(corpus.once("lint", "--strict", "//..."), "lint --strict //...", corpus)


def test_build_produces_every_package_artifact(corpus: Workspace) -> None:
    report = build(corpus)
    digests = built_packages(report)
    listed = {m["digest"] for m in layout_index(corpus.root)["manifests"]}
    assert set(digests) <= listed, "every built package artifact is in .dkb/oci/index.json"
    built = sorted((package_config(corpus, d)["manifest"]["metadata"].get("namespace") or "",
                    package_config(corpus, d)["manifest"]["metadata"]["name"]) for d in digests)
    assert built == sorted((t.namespace, t.name) for t in corpus.transforms), \
        f"one dk package artifact per Transform of {corpus.case.id}"


def test_publish_reaches_the_registry(corpus: Workspace, shared_registry: Registry) -> None:
    doc = publish(corpus, shared_registry)
    published = doc["published"]
    assert len(published) == len(corpus.transforms), published
    for transform in corpus.transforms:
        (entry,) = [p for p in published if f"/{transform.name}:" in p["reference"]]
        assert entry["status"] in ("pushed", "unchanged"), entry
        raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{entry['reference']}"],
                             capture_output=True, timeout=60)
        assert raw.returncode == 0, raw.stderr.decode()
        assert "sha256:" + hashlib.sha256(raw.stdout).hexdigest() == entry["digest"]
        assert json.loads(raw.stdout)["artifactType"] == DK_PACKAGE


def test_promote_to_dev(corpus: Workspace, shared_registry: Registry) -> None:
    published = {p["reference"]: p["digest"] for p in publish(corpus, shared_registry)["published"]}
    res = corpus.once("promote", "//...", "--to", "dev", "--registry", f"oci://{shared_registry.host}/compat",
                      "--plain-http", "-o", "json")
    ok(res, "promote //... --to dev", corpus)
    bare = corpus.root / ".dkb" / "gitops.git"            # the embedded default GitOps repository
    branches = [r for r in git(bare, "for-each-ref", "--format=%(refname)", "refs/heads").split()
                if r != "refs/heads/main"]
    values: dict[str, str] = {}
    for ref in branches:
        for path in git(bare, "ls-tree", "-r", "--name-only", ref).splitlines():
            parts = path.split("/")
            if path.startswith("gitops/envs/dev/cells/") and parts[-1] == "values.yaml" and parts[-3] == "apps":
                values[parts[-2]] = git(bare, "show", f"{ref}:{path}")
    for transform in corpus.transforms:
        assert transform.name in values, f"no dev values.yaml for {transform.name} on {branches}"
        (digest,) = [d for ref, d in published.items() if f"/{transform.name}:" in ref]
        assert digest.split(":")[1] in values[transform.name], values[transform.name]
        assert transform.version in values[transform.name]


def test_query_lists_every_transform(corpus: Workspace) -> None:
    res = ok(corpus.once("query", "//...", "--output", "json"), "query //...", corpus)
    files = {t["file"] for t in res.json()["targets"]}
    assert {t.file for t in corpus.transforms} <= files


def test_lineage_answers_for_every_dataset(corpus: Workspace) -> None:
    for dataset in corpus.datasets:
        ok(corpus.once("lineage", dataset, "--output", "json"), f"lineage {dataset}", corpus)


def test_governance_report_answers(corpus: Workspace) -> None:
    res = ok(corpus.once("governance", "report", "--output", "json"), "governance report --output json", corpus)
    names = {p["name"] for p in res.json()["packages"]}
    assert {t.name for t in corpus.transforms} <= names


def test_lint_dot_inside_each_package(corpus: Workspace) -> None:
    for transform in corpus.transforms:
        ok(corpus.once("lint", ".", cwd=transform.directory), f"lint . (in {transform.directory or 'the root'})",
           corpus)


def test_build_with_a_directory_argument(corpus: Workspace) -> None:
    for transform in corpus.transforms:
        arg = f"./{transform.directory}" if transform.directory else "."
        res = ok(corpus.once("build", arg, "--output", "json"), f"build {arg}", corpus)
        names = [package_config(corpus, d)["manifest"]["metadata"]["name"] for d in built_packages(res.json())]
        assert transform.name in names, f"`dkb build {arg}` builds {transform.name}: {res!r}"

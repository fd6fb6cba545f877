"""Every dk example and every `dk init` template, unedited, through dkb: lint --strict, build, publish
to a real registry, promote to dev, and the read-only commands. What `dk` accepts, dkb accepts."""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Any

import yaml

from tests.compat.corpus import Workspace, artifact_files, built_packages, layout_blob, layout_index
from tests.conftest import Result, git
from tests.registry import Registry

DK_PACKAGE = "application/vnd.infoblox.dk.package.v1"
DK_CONFIG = "application/vnd.infoblox.dk.config.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DK_MANIFEST_LAYER = "application/vnd.infoblox.dk.manifest.v1+yaml"
OCI_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


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
    metadata = [package_config(corpus, d)["manifest"]["metadata"] for d in digests]
    built = sorted((m.get("namespace") or "", m["name"]) for m in metadata)
    assert built == sorted((t.namespace, t.name) for t in corpus.transforms), \
        f"one dk package artifact per Transform of {corpus.case.id}"


def test_publish_reaches_the_registry(corpus: Workspace, shared_registry: Registry) -> None:
    published = publish(corpus, shared_registry)["published"]
    assert len(published) == len(corpus.transforms), published
    for transform in corpus.transforms:
        (entry,) = [p for p in published if f"/{transform.name}:" in p["reference"]]
        assert entry["status"] in ("pushed", "unchanged"), entry
        assert skopeo_digest(entry["reference"]) == entry["digest"], f"skopeo sees {entry['reference']}"


def promoted_values(ws: Workspace, registry: Registry) -> dict[str, str]:
    """Publish, `dkb promote //... --to dev` once, and read each package's dev values.yaml from the
    change's branch in the embedded default GitOps repository (`.dkb/gitops.git`)."""
    publish(ws, registry)
    res = ws.once("promote", "//...", "--to", "dev", "--registry", f"oci://{registry.host}/compat",
                  "--plain-http", "-o", "json")
    ok(res, "promote //... --to dev", ws)
    bare = ws.root / ".dkb" / "gitops.git"
    branches = [r for r in git(bare, "for-each-ref", "--format=%(refname)", "refs/heads").split()
                if r != "refs/heads/main"]
    values: dict[str, str] = {}
    for ref in branches:
        for path in git(bare, "ls-tree", "-r", "--name-only", ref).splitlines():
            parts = path.split("/")
            if path.startswith("gitops/envs/dev/cells/") and parts[-1] == "values.yaml" and parts[-3] == "apps":
                values[parts[-2]] = git(bare, "show", f"{ref}:{path}")
    return values


def published_digest(ws: Workspace, registry: Registry, name: str) -> str:
    (digest,) = [p["digest"] for p in publish(ws, registry)["published"] if f"/{name}:" in p["reference"]]
    return digest


def test_promote_to_dev(corpus: Workspace, shared_registry: Registry) -> None:
    values = promoted_values(corpus, shared_registry)
    for transform in corpus.transforms:
        assert transform.name in values, f"no dev values.yaml for {transform.name}: {sorted(values)}"
        text = values[transform.name]
        assert published_digest(corpus, shared_registry, transform.name).split(":")[1] in text, text
        assert yaml.safe_load(text)["appVersion"] == transform.version, text


def test_promoted_values_render_a_pullable_package_reference(corpus: Workspace, shared_registry: Registry) -> None:
    """gitops/charts/dk-app renders `package: {name: <release>, version: .Values.appVersion, registry:
    .Values.registry | default "ghcr.io/infoblox-cto/dk"}`: registry is a prefix, so
    <registry>/[<namespace>/]<name>:<version> must be the published package."""
    values = promoted_values(corpus, shared_registry)
    for transform in corpus.transforms:
        doc = yaml.safe_load(values.get(transform.name, "")) or {}
        prefix = doc.get("registry") or "ghcr.io/infoblox-cto/dk"
        candidates = [f"{prefix}/{transform.name}:{doc.get('appVersion')}"]
        if transform.namespace:
            candidates.insert(0, f"{prefix}/{transform.namespace}/{transform.name}:{doc.get('appVersion')}")
        digests = [skopeo_digest(ref) for ref in candidates]
        assert published_digest(corpus, shared_registry, transform.name) in digests, \
            f"values.yaml {doc} renders {candidates}, none of which is the published package"


def skopeo_digest(reference: str) -> str | None:
    raw = subprocess.run(["skopeo", "--command-timeout", "30s", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{reference}"], capture_output=True, timeout=60)
    return "sha256:" + hashlib.sha256(raw.stdout).hexdigest() if raw.returncode == 0 else None


def test_artifact_layers_are_what_dk_reads(corpus: Workspace) -> None:
    """sdk/registry/bundler.go: layer 1 `application/vnd.infoblox.dk.manifest.v1+yaml` (a tar.gz of
    the original dk.yaml and schemas/), layer 2 the content tar.gz, config {manifest, kind, buildInfo},
    dk's annotations."""
    for digest in built_packages(build(corpus)):
        manifest = json.loads(layout_blob(corpus.root, digest))
        config = package_config(corpus, digest)
        meta = config["manifest"]["metadata"]
        (transform,) = [t for t in corpus.transforms
                        if (t.name, t.namespace) == (meta["name"], meta.get("namespace") or "")]
        first, second = manifest["layers"][:2]
        assert first["mediaType"] == DK_MANIFEST_LAYER, first
        assert first.get("annotations") == {"io.infoblox.dk.layer.type": "manifests"}, first
        assert second["mediaType"] == OCI_TAR_GZIP, second
        assert second.get("annotations") == {"io.infoblox.dk.layer.type": "content"}, second
        carried = {key.split(":", 1)[1].removeprefix("./"): data
                   for key, data in artifact_files(corpus.root, digest).items() if key.startswith("layer0:")}
        package_dir = corpus.root / transform.directory
        expected = {"dk.yaml": (package_dir / "dk.yaml").read_bytes()}
        expected |= {str(p.relative_to(package_dir)): p.read_bytes()
                     for p in sorted((package_dir / "schemas").rglob("*")) if p.is_file()}
        assert carried == expected, f"{transform.file}: layer 1 holds the original dk.yaml and schemas/"
        assert {"manifest", "kind", "buildInfo"} <= set(config) and config["kind"] == "Transform", config
        annotations = manifest.get("annotations") or {}
        assert annotations.get("org.opencontainers.image.title") == transform.name, annotations
        assert annotations.get("org.opencontainers.image.version") == transform.version, annotations
        assert annotations.get("io.infoblox.dk.kind") == "Transform", annotations
        assert annotations.get("io.infoblox.dk.namespace", "") == transform.namespace, annotations


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

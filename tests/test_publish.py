"""`dkb publish` against a real registry (Debian's docker-registry on loopback), checked with skopeo."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import transform

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is installed by `make test`")


def publish(dkb, root: Path, registry, *args: str):  # type: ignore[no-untyped-def]
    return dkb("publish", "--registry", f"oci://{registry.host}/acme", "--plain-http", "--output", "json", *args,
               cwd=root)


def skopeo_raw(registry, ref: str) -> bytes:  # type: ignore[no-untyped-def]
    return subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/{ref}"],
                          check=True, capture_output=True).stdout


def test_publish_pushes_exact_bytes(workspace, dkb, registry) -> None:
    root = workspace()
    res = publish(dkb, root, registry)
    assert res.code == 0, res
    doc = res.json()
    published = {p["label"]: p for p in doc["published"]}
    ingest = published["//pipelines/ingest"]
    assert ingest["status"] == "pushed"
    assert ingest["reference"] == f"{registry.host}/acme/ingest:1.0.0"     # no namespace set: none added
    local = (root / ".dkb/oci/blobs/sha256" / ingest["digest"][7:]).read_bytes()
    assert skopeo_raw(registry, "acme/ingest:1.0.0") == local
    assert ingest["size"] == len(local)


def test_namespace_is_added_once(workspace, dkb, registry) -> None:
    root = workspace()
    path = root / "pipelines/ingest/dk.yaml"
    data = yaml.safe_load(path.read_text())
    data["metadata"]["namespace"] = "analytics"
    path.write_text(yaml.safe_dump(data))
    res = publish(dkb, root, registry, "//pipelines/ingest")
    assert res.json()["published"][0]["reference"] == f"{registry.host}/acme/analytics/ingest:1.0.0"


def test_republish_is_a_no_op_and_conflicts_are_refused(workspace, dkb, registry) -> None:
    root = workspace()
    assert publish(dkb, root, registry).code == 0
    again = publish(dkb, root, registry)
    assert again.code == 0
    assert {p["status"] for p in again.json()["published"]} == {"unchanged"}
    (root / "pipelines/ingest/src/main.py").write_text("print('changed, same version')\n")
    conflict = publish(dkb, root, registry)
    assert conflict.code == 1
    ingest = next(p for p in conflict.json()["published"] if p["label"] == "//pipelines/ingest")
    assert ingest["status"] == "conflict" and "immutable" in ingest["errors"][0]


def test_dry_run_pushes_nothing(workspace, dkb, registry) -> None:
    root = workspace()
    res = publish(dkb, root, registry, "--dry-run")
    assert res.code == 0
    assert {p["status"] for p in res.json()["published"]} == {"would-push"}
    probe = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                            f"docker://{registry.host}/acme/ingest:1.0.0"], capture_output=True)
    assert probe.returncode != 0


def test_version_must_be_semver(workspace, dkb, registry) -> None:
    root = workspace()
    res = publish(dkb, root, registry, "--tag", "v2")
    assert res.code == 1
    assert all("not SemVer" in p["errors"][0] for p in res.json()["published"])


def test_sbom_and_provenance_are_discoverable_referrers(workspace, dkb, registry) -> None:
    root = workspace()
    doc = publish(dkb, root, registry, "//pipelines/ingest").json()
    ingest = doc["published"][0]
    index = json.loads(skopeo_raw(registry, f"acme/ingest:{ingest['digest'].replace(':', '-')}"))
    types = {m["artifactType"] for m in index["manifests"]}
    assert types == {"application/vnd.cyclonedx+json", "application/vnd.in-toto+json"}
    for m in index["manifests"]:
        referrer = json.loads(skopeo_raw(registry, f"acme/ingest@{m['digest']}"))
        assert referrer["subject"]["digest"] == ingest["digest"]
    sbom_manifest = next(json.loads(skopeo_raw(registry, f"acme/ingest@{m['digest']}"))
                         for m in index["manifests"] if m["artifactType"] == "application/vnd.cyclonedx+json")
    from dkbuild.oci.registry import RegistryClient
    sbom = json.loads(RegistryClient(registry.host, plain_http=True).pull_blob("acme/ingest",
                                                                                sbom_manifest["layers"][0]["digest"]))
    assert sbom["bomFormat"] == "CycloneDX"
    assert [c["name"] for c in sbom["components"] if c["type"] == "file"] == ["src/main.py"]


def test_registry_down_before_publish(workspace, dkb, registry) -> None:
    root = workspace()
    registry.stop()
    res = dkb("publish", "--registry", f"oci://{registry.host}/acme", "--plain-http", cwd=root)
    assert res.code == 1
    assert "nothing was published" in res.err and registry.host in res.err


def test_credentials_never_printed(workspace, dkb, auth_registry) -> None:
    root = workspace()
    secret = "wrong-" + auth_registry.password
    res = dkb("publish", "--registry", f"oci://{auth_registry.host}/acme", "--plain-http", cwd=root,
              env={"DKB_REGISTRY_USERNAME": auth_registry.username, "DKB_REGISTRY_PASSWORD": secret})
    assert res.code == 1
    assert secret not in res.out + res.err and auth_registry.password not in res.out + res.err
    ok = dkb("publish", "--registry", f"oci://{auth_registry.host}/acme", "--plain-http", "--output", "json",
             cwd=root, env={"DKB_REGISTRY_USERNAME": auth_registry.username,
                            "DKB_REGISTRY_PASSWORD": auth_registry.password})
    assert ok.code == 0, ok
    assert auth_registry.password not in ok.out + ok.err
    assert auth_registry.password not in "".join(p.read_text(errors="ignore") for p in (root / ".dkb").rglob("*")
                                                  if p.is_file())


def test_dk_registry_environment_and_precedence(workspace, dkb, registry) -> None:
    root = workspace()
    env = {"DK_REGISTRY": f"{registry.host}/dk-env", "DKB_REGISTRY": f"oci://{registry.host}/dkb-env"}
    res = dkb("publish", "--plain-http", "--output", "json", "//pipelines/ingest", cwd=root, env=env)
    assert res.code == 0, res
    assert res.json()["published"][0]["reference"] == f"{registry.host}/dk-env/ingest:1.0.0"   # dk's name first
    alias = dkb("publish", "--plain-http", "--output", "json", "//pipelines/ingest", cwd=root,
                env={"DK_REGISTRY": "", "DKB_REGISTRY": f"oci://{registry.host}/dkb-env"})
    assert alias.json()["published"][0]["reference"] == f"{registry.host}/dkb-env/ingest:1.0.0"
    flag = publish(dkb, root, registry, "//pipelines/ingest")       # --registry beats both
    assert flag.json()["published"][0]["reference"] == f"{registry.host}/acme/ingest:1.0.0"


def test_no_registry_configured_publishes_to_the_embedded_registry(workspace, dkb) -> None:
    """dk would push to ghcr.io/<namespace>; dkb publishes to .dkb/registry (tests/test_embedded_registry.py)."""
    from dkbuild.engine.publish import configured_registry, repository_for

    assert configured_registry(None, None, env={}) is None
    assert repository_for("", "analytics", "enrich") == "analytics/enrich"
    assert repository_for("", None, "enrich") == "enrich"                              # never an empty segment
    assert repository_for("acme", "analytics", "enrich") == "acme/analytics/enrich"
    root = workspace()
    res = dkb("publish", "//pipelines/ingest", cwd=root, env={"DK_REGISTRY": "", "DKB_REGISTRY": ""})
    assert res.code == 0, res
    assert "pushed     oci:.dkb/registry/ingest:1.0.0" in res.out and "ghcr.io" not in res.out + res.err
    assert "--registry oci://HOST/PREFIX" in res.out                                   # how to move on


def test_insecure_reaches_a_plain_http_registry(workspace, dkb, registry) -> None:
    root = workspace()
    strict = dkb("publish", "--registry", f"oci://{registry.host}/acme", cwd=root)
    assert strict.code == 1 and "TLS" in strict.err
    res = dkb("publish", "--registry", f"oci://{registry.host}/acme", "--insecure", "--output", "json", cwd=root)
    assert res.code == 0, res
    assert {p["status"] for p in res.json()["published"]} == {"pushed"}
    assert skopeo_raw(registry, "acme/ingest:1.0.0")


def test_a_name_that_is_no_repository_is_refused_before_pushing(workspace, tmp_path: Path) -> None:
    from dkbuild.api import load
    from dkbuild.engine.action import ActionResult
    from dkbuild.engine.publish import Publisher
    from dkbuild.oci.layout import OciLayout

    root = workspace()
    path = root / "pipelines/ingest/dk.yaml"
    data = yaml.safe_load(path.read_text())
    data["metadata"]["namespace"] = "Analytics_Team"
    path.write_text(yaml.safe_dump(data))
    loaded = load(root)
    publisher = Publisher(client=None, host="registry.test", prefix="acme", layout=OciLayout(tmp_path / "oci"),
                          graph=loaded.graph)
    out = publisher.publish(ActionResult("//pipelines/ingest", "k", "k", "built"))
    assert out.status == "failed" and "'acme/Analytics_Team/ingest' is not an OCI repository name" in out.errors[0]
    assert "pipelines/ingest/dk.yaml" in out.errors[0]


def test_a_blocked_target_is_reported_and_the_rest_is_published(workspace, dkb, registry) -> None:
    bad = transform("bad", ["raw"], ["bad-out"])
    del bad["spec"]["image"]                                  # E232: dk rejects it too
    res = publish(dkb, workspace({"pipelines/bad/dk.yaml": bad}), registry)
    assert res.code == 1, res
    published = {p["label"]: p for p in res.json()["published"]}
    assert published["//pipelines/bad"]["status"] == "failed" and "E232" in published["//pipelines/bad"]["errors"][0]
    assert published["//pipelines/ingest"]["status"] == "pushed"
    assert skopeo_raw(registry, "acme/ingest:1.0.0")

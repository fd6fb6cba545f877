"""dk's artifact, byte for byte in structure: what dkb builds and publishes is what dk's registry
client pulls and decodes (tests/dk_client.py follows sdk/registry/oras.go step by step), from the
real loopback registry after `dkb publish` and from the local OCI layout; skopeo and umoci agree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests import dk_client
from tests.conftest import git

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dk-corpus"
if not CORPUS.is_dir():
    CORPUS = Path("/work/shared/reference/dk-corpus")
KAFKA = CORPUS / "examples" / "kafka-s3-pipeline"
API = "datakit.infoblox.dev/v1alpha1"
DK_ANNOTATIONS = {"org.opencontainers.image.created", "org.opencontainers.image.version",
                  "org.opencontainers.image.title", "org.opencontainers.image.description",
                  "io.infoblox.dk.namespace", "io.infoblox.dk.kind"}

pytestmark = [pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is installed by `make test`"),
              pytest.mark.skipif(not KAFKA.is_dir(), reason="the dk corpus is not beside the repository")]


def kafka_workspace(root: Path) -> Path:
    """dk's kafka-s3-pipeline example, its package at the workspace root as dk has it, plus what
    today's lint needs of it (a go.mod and the two datasets, as package-local copies)."""
    shutil.copytree(KAFKA, root)
    (root / "workspace.toml").write_text('[workspace]\nname = "kafka"\n')
    (root / "go.mod").write_text("module example.com/kafka-s3-pipeline\n\ngo 1.22\n")
    (root / "schemas" / "nested").mkdir()
    (root / "schemas" / "nested" / "key.json").write_text('{"type": "string"}\n')
    resources = {
        "connector/s3.yaml": {"kind": "Connector", "metadata": {"name": "s3"},
                              "spec": {"type": "s3", "capabilities": ["source", "destination"]}},
        "store/lake.yaml": {"kind": "Store", "metadata": {"name": "lake"},
                            "spec": {"connector": "s3", "connection": {"bucket": "events"},
                                     "secrets": {"accessKey": "${LAKE_ACCESS_KEY}"}}},
        "dataset/kafka-events.yaml": {"kind": "DataSet", "metadata": {"name": "kafka-events"},
                                      "spec": {"store": "lake", "topic": "events", "classification": "internal"}},
        "dataset/processed-events.yaml": {"kind": "DataSet", "metadata": {"name": "processed-events"},
                                          "spec": {"store": "lake", "prefix": "processed/",
                                                   "classification": "internal"}},
    }
    for rel, doc in resources.items():
        (root / rel).parent.mkdir(exist_ok=True)
        (root / rel).write_text(yaml.safe_dump({"apiVersion": API, **doc}, sort_keys=False))
    return root


def build(dkb, root: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    res = dkb("build", "--output", "json", *args, cwd=root, env=env)
    assert res.code == 0, res
    (target,) = res.json()["targets"]
    return target


def check_dk_artifact(artifact: dk_client.Artifact, root: Path) -> None:
    """Everything dk reads, where and as dk put it."""
    manifest = artifact.manifest
    assert manifest["mediaType"] == dk_client.IMAGE_MANIFEST and manifest["schemaVersion"] == 2
    assert manifest["artifactType"] == dk_client.MEDIA_TYPE_DK_PACKAGE
    assert manifest["config"]["mediaType"] == dk_client.MEDIA_TYPE_DK_CONFIG
    # Layer 1: dk's manifests layer, found by its media type, with the original dk.yaml and schemas/.
    first = artifact.layers[0]
    assert dk_client.manifests_layer(artifact) is first
    assert first.annotations == {"io.infoblox.dk.layer.type": "manifests"}
    packed = dk_client.files_of(first)
    assert set(packed) == {"dk.yaml", "schemas/processed-events.avsc", "schemas/nested/key.json"}
    for rel in ("schemas/processed-events.avsc", "schemas/nested/key.json"):
        assert packed[rel] == (root / rel).read_bytes()
    # dk.yaml in normal form: dk's parser reads the very document the package's dk.yaml holds.
    kind, document = dk_client.parse_manifest(packed["dk.yaml"])
    assert kind == "Transform" and document == yaml.safe_load((root / "dk.yaml").read_text())
    # Layer 2: dk's content layer: the package's other files, never its manifests or resource copies.
    second = artifact.layers[1]
    assert second.media_type == dk_client.MEDIA_TYPE_TAR_GZ
    assert second.annotations == {"io.infoblox.dk.layer.type": "content"}
    content = dk_client.files_of(second)
    assert set(content) == {"Dockerfile", "go.mod", "src/main.go"}
    assert content["src/main.go"] == (root / "src/main.go").read_bytes()
    # dkb's additions come after dk's layers, under a media type no dk code reads.
    extra = artifact.layers[2:]
    assert [layer.media_type for layer in extra] == ["application/vnd.dkbuild.resources.v1.tar+gzip"]
    assert set(dk_client.files_of(extra[0])) == {"dataset/kafka-events.yaml", "dataset/processed-events.yaml",
                                                 "store/lake.yaml", "connector/s3.yaml"}
    # The config, decoded into dk's ArtifactConfig: {manifest, kind, buildInfo}, reproducible.
    config = artifact.config
    assert config["kind"] == "Transform"
    assert config["manifest"]["metadata"] == {"name": "kafka-s3-pipeline", "namespace": "analytics",
                                              "version": "1.0.0", "labels": {"team": "datakit", "domain": "events"}}
    assert config["buildInfo"] == {"timestamp": "1970-01-01T00:00:00Z", "builder": "dkb"}
    # dk's annotations, every key dk writes (and no revision: no commit unless stamped).
    annotations = manifest["annotations"]
    assert set(annotations) == DK_ANNOTATIONS
    assert annotations["org.opencontainers.image.title"] == "kafka-s3-pipeline"
    assert annotations["org.opencontainers.image.version"] == "1.0.0"
    assert annotations["io.infoblox.dk.namespace"] == "analytics"
    assert annotations["io.infoblox.dk.kind"] == "Transform"
    assert annotations["org.opencontainers.image.created"] == config["buildInfo"]["timestamp"]


def test_dk_client_pulls_what_dkb_publishes(tmp_path: Path, dkb, registry) -> None:  # type: ignore[no-untyped-def]
    root = kafka_workspace(tmp_path / "kafka")
    res = dkb("publish", "--registry", f"{registry.host}/acme", "--plain-http", "--output", "json", cwd=root)
    assert res.code == 0, res        # the Dockerfile's base is unreachable here: reported, not blocking
    (published,) = res.json()["published"]
    # dk's reference scheme: Reference(registry, namespace, name, version).
    ref = dk_client.reference(f"{registry.host}/acme", "analytics", "kafka-s3-pipeline", "1.0.0")
    assert published["reference"] == ref and published["status"] == "pushed"
    assert published["image"]["status"] == "not-built"
    artifact = dk_client.pull(dk_client.RegistrySource(ref))
    assert artifact.digest == published["digest"]
    check_dk_artifact(artifact, root)
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"], check=True,
                         capture_output=True).stdout
    assert dk_client.sha256(raw) == published["digest"]


def test_dk_client_decodes_the_local_layout(tmp_path: Path, dkb) -> None:  # type: ignore[no-untyped-def]
    root = kafka_workspace(tmp_path / "kafka")
    target = build(dkb, root)
    assert target["label"] == "//:kafka-s3-pipeline"
    # A package at the workspace root: valid refs, its label's and dk's <namespace>/<name>:<version>.
    assert target["refs"] == ["kafka-s3-pipeline", "analytics/kafka-s3-pipeline:1.0.0"]
    layout = root / ".dkb" / "oci"
    for ref in target["refs"]:
        artifact = dk_client.pull(dk_client.LayoutSource(layout, ref))
        assert artifact.digest == target["artifacts"]["package"]
        check_dk_artifact(artifact, root)
        inspected = json.loads(subprocess.run(["skopeo", "inspect", "--raw", f"oci:{layout}:{ref}"], check=True,
                                              capture_output=True).stdout)
        assert inspected["artifactType"] == dk_client.MEDIA_TYPE_DK_PACKAGE
    if shutil.which("umoci"):
        listed = subprocess.run(["umoci", "ls", "--layout", str(layout)], check=True, capture_output=True, text=True)
        assert set(listed.stdout.split()) == set(target["refs"])


def test_same_tree_same_digest_and_stamp_only_when_asked(tmp_path: Path, dkb) -> None:  # type: ignore[no-untyped-def]
    a = kafka_workspace(tmp_path / "a")
    b = kafka_workspace(tmp_path / "elsewhere" / "b")
    for path in b.rglob("*"):
        os.utime(path, (1_234_567_890, 1_234_567_890))
    first, second = build(dkb, a), build(dkb, b)
    assert first["artifacts"]["package"] == second["artifacts"]["package"]
    git(a, "init", "-q", "-b", "main")
    git(a, "add", "-A")
    git(a, "commit", "-qm", "init")
    stamped = build(dkb, a, "--stamp")
    assert stamped["artifacts"]["package"] != first["artifacts"]["package"]
    artifact = dk_client.pull(dk_client.LayoutSource(a / ".dkb" / "oci", "kafka-s3-pipeline"))
    info = artifact.config["buildInfo"]
    assert info["host"] and info["gitCommit"] == git(a, "rev-parse", "HEAD").strip() and info["gitBranch"] == "main"
    assert info["timestamp"] != "1970-01-01T00:00:00Z" and info["builder"].startswith("dkb/")
    assert artifact.manifest["annotations"]["org.opencontainers.image.revision"] == info["gitCommit"]


def test_dk_yaml_is_packed_as_written_and_keyed_by_its_bytes(tmp_path: Path, dkb) -> None:  # type: ignore[no-untyped-def]
    """dk's manifest layer carries dk.yaml byte for byte, so its bytes are in the content key: a
    comment rebuilds the package (never a stale artifact), and the layer holds the comment."""
    root = kafka_workspace(tmp_path / "kafka")
    before = build(dkb, root)
    text = (root / "dk.yaml").read_text()
    commented = "# owned by the events team\n" + text
    (root / "dk.yaml").write_text(commented)
    after = build(dkb, root)
    assert after["status"] == "built" and after["artifacts"]["package"] != before["artifacts"]["package"]
    artifact = dk_client.pull(dk_client.LayoutSource(root / ".dkb" / "oci", "kafka-s3-pipeline"))
    assert dk_client.files_of(artifact.layers[0])["dk.yaml"] == commented.encode()
    (root / "dk.yaml").write_text(text)                       # back: the first artifact, from the cache
    again = build(dkb, root)
    assert again["status"] == "cached" and again["artifacts"] == before["artifacts"]
    (root / "dk.yaml").write_text(text.replace("value: info", "value: debug"))
    changed = build(dkb, root)
    assert changed["status"] == "built" and changed["artifacts"]["package"] != before["artifacts"]["package"]
    artifact = dk_client.pull(dk_client.LayoutSource(root / ".dkb" / "oci", "kafka-s3-pipeline"))
    _, document = dk_client.parse_manifest(dk_client.files_of(artifact.layers[0])["dk.yaml"])
    assert document["spec"]["env"] == [{"name": "LOG_LEVEL", "value": "debug"}]


def test_source_date_epoch_is_in_the_action_key(tmp_path: Path, dkb) -> None:  # type: ignore[no-untyped-def]
    root = kafka_workspace(tmp_path / "kafka")
    plain = build(dkb, root)
    dated = build(dkb, root, env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert dated["status"] == "built" and dated["action_key"] != plain["action_key"]
    artifact = dk_client.pull(dk_client.LayoutSource(root / ".dkb" / "oci", "kafka-s3-pipeline"))
    assert artifact.config["buildInfo"]["timestamp"] == "2023-11-14T22:13:20Z"


def test_build_tag_names_the_local_artifact(tmp_path: Path, dkb) -> None:  # type: ignore[no-untyped-def]
    root = kafka_workspace(tmp_path / "kafka")
    tagged = build(dkb, root, "--tag", "2.0.0-rc1")
    assert tagged["refs"] == ["kafka-s3-pipeline", "analytics/kafka-s3-pipeline:2.0.0-rc1"]
    artifact = dk_client.pull(dk_client.LayoutSource(root / ".dkb" / "oci", "analytics/kafka-s3-pipeline:2.0.0-rc1"))
    assert artifact.digest == tagged["artifacts"]["package"]
    # The tag names the artifact; it is not in it (dk's version annotation is metadata.version).
    assert artifact.manifest["annotations"]["org.opencontainers.image.version"] == "1.0.0"
    again = build(dkb, root, "-t", "2.0.0")
    assert again["status"] == "cached" and again["refs"][1] == "analytics/kafka-s3-pipeline:2.0.0"
    bad = dkb("build", "--tag", "-nope", cwd=root)
    assert bad.code == 2 and "--tag" in bad.err


def test_package_without_version_is_tagged_latest(tmp_path: Path, dkb) -> None:  # type: ignore[no-untyped-def]
    root = kafka_workspace(tmp_path / "kafka")
    manifest = (root / "dk.yaml").read_text().replace("  version: 1.0.0\n", "")
    (root / "dk.yaml").write_text(manifest)
    assert build(dkb, root)["refs"] == ["kafka-s3-pipeline", "analytics/kafka-s3-pipeline:latest"]

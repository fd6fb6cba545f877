"""The embedded registry (.dkb/registry): what `dkb publish` fills when no registry is configured.

Read back with standard tools (skopeo, umoci), copied by skopeo into the real loopback registry,
and promoted from. oras is not installable here (no Debian/PyPI/npm package; its Go module needs a
newer Go than this machine's), so referrers are checked against the OCI 1.1 image-layout reading
that oras-go uses: untagged manifests listed in index.json whose `subject` is the package.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_gitops import run, seed_bare

NO_REGISTRY = {"DK_REGISTRY": "", "DKB_REGISTRY": ""}
REF_NAME = "org.opencontainers.image.ref.name"
SBOM, PROVENANCE = "application/vnd.cyclonedx+json", "application/vnd.in-toto+json"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run `make system-deps`")
    return found


def publish(dkb, root: Path, *args: str):  # type: ignore[no-untyped-def]
    return dkb("publish", "--output", "json", *args, cwd=root, env=NO_REGISTRY)


def published(res) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    return {p["label"]: p for p in res.json()["published"]}


def skopeo_raw(where: str, *flags: str) -> bytes:
    return subprocess.run([tool("skopeo"), "inspect", "--raw", *flags, where], check=True,
                          capture_output=True).stdout


def index(root: Path, repo: str) -> dict[str, Any]:
    return json.loads((root / ".dkb/registry" / repo / "index.json").read_text())


def test_publish_with_nothing_configured_writes_an_oci_layout_skopeo_and_umoci_read(workspace, dkb) -> None:
    root = workspace()
    res = publish(dkb, root)
    assert res.code == 0, res
    doc = res.json()
    assert doc["registry"]["embedded"] is True and doc["registry"]["path"] == str(root / ".dkb/registry")
    ingest = published(res)["//pipelines/ingest"]
    assert ingest["status"] == "pushed" and ingest["reference"] == "oci:.dkb/registry/ingest:1.0.0"
    built = (root / ".dkb/oci/blobs/sha256" / ingest["digest"][7:]).read_bytes()
    assert skopeo_raw(f"oci:{root}/.dkb/registry/ingest:1.0.0") == built        # the exact bytes built
    assert (root / ".dkb/registry/ingest/oci-layout").is_file()
    ls = subprocess.run([tool("umoci"), "ls", "--layout", str(root / ".dkb/registry/ingest")], check=True,
                        capture_output=True, text=True).stdout
    assert ls.split() == ["1.0.0"]
    text = dkb("publish", cwd=root, env=NO_REGISTRY)
    assert text.code == 0, text
    assert "embedded registry .dkb/registry/" in text.out
    for hint in ("--registry oci://HOST/PREFIX", "DK_REGISTRY", "workspace.toml"):
        assert hint in text.out
    command = next(line.split("inspect: ", 1)[1] for line in text.out.splitlines() if "inspect: " in line)
    assert command.startswith("skopeo inspect --raw oci:.dkb/registry/")
    shown = subprocess.run(command.split(), cwd=root, check=True, capture_output=True).stdout   # works as printed
    assert json.loads(shown)["artifactType"] == "application/vnd.infoblox.dk.package.v1"


def test_skopeo_copies_it_into_a_real_registry_byte_for_byte(workspace, dkb, registry) -> None:
    root = workspace()
    ingest = published(publish(dkb, root))["//pipelines/ingest"]
    subprocess.run([tool("skopeo"), "copy", "--quiet", "--dest-tls-verify=false",
                    f"oci:{root}/.dkb/registry/ingest:1.0.0", f"docker://{registry.host}/copied/ingest:1.0.0"],
                   check=True, capture_output=True)
    raw = skopeo_raw(f"docker://{registry.host}/copied/ingest:1.0.0", "--tls-verify=false")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == ingest["digest"]


def test_tags_are_immutable_and_republishing_is_a_no_op(workspace, dkb) -> None:
    root = workspace()
    first = published(publish(dkb, root))["//pipelines/ingest"]
    before = (root / ".dkb/registry/ingest/index.json").read_bytes()
    again = publish(dkb, root)
    assert again.code == 0 and {p["status"] for p in again.json()["published"]} == {"unchanged"}
    assert (root / ".dkb/registry/ingest/index.json").read_bytes() == before        # nothing rewritten
    (root / "pipelines/ingest/src/main.py").write_text("print('changed, same version')\n")
    conflict = publish(dkb, root)
    assert conflict.code == 1
    ingest = published(conflict)["//pipelines/ingest"]
    assert ingest["status"] == "conflict" and "immutable" in ingest["errors"][0]
    assert f"oci:.dkb/registry/ingest:1.0.0 already exists with digest {first['digest']}" in ingest["errors"][0]
    tagged = {m["annotations"][REF_NAME]: m["digest"] for m in index(root, "ingest")["manifests"]
              if REF_NAME in m.get("annotations", {})}
    assert tagged == {"1.0.0": first["digest"]}                                     # the old content stays
    bumped = publish(dkb, root, "--tag", "1.1.0", "//pipelines/ingest")
    assert bumped.code == 0 and published(bumped)["//pipelines/ingest"]["status"] == "pushed"
    ls = subprocess.run([tool("umoci"), "ls", "--layout", str(root / ".dkb/registry/ingest")], check=True,
                        capture_output=True, text=True).stdout
    assert sorted(ls.split()) == ["1.0.0", "1.1.0"]


def test_sbom_and_provenance_are_referrers_of_the_package(workspace, dkb) -> None:
    from dkbuild.oci.embedded import EmbeddedRegistry

    root = workspace()
    ingest = published(publish(dkb, root, "//pipelines/ingest"))["//pipelines/ingest"]
    assert {r["artifactType"] for r in ingest["referrers"]} == {SBOM, PROVENANCE}
    untagged = [m for m in index(root, "ingest")["manifests"] if REF_NAME not in m.get("annotations", {})]
    assert {m["artifactType"] for m in untagged} == {SBOM, PROVENANCE}
    blobs = root / ".dkb/registry/ingest/blobs/sha256"
    documents = {}
    for entry in untagged:
        data = (blobs / entry["digest"][7:]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == entry["digest"] and len(data) == entry["size"]
        manifest = json.loads(data)
        assert manifest["subject"]["digest"] == ingest["digest"]
        documents[entry["artifactType"]] = json.loads((blobs / manifest["layers"][0]["digest"][7:]).read_bytes())
    assert [c["name"] for c in documents[SBOM]["components"] if c["type"] == "file"] == ["src/main.py"]
    assert documents[PROVENANCE]["subject"][0]["name"] == "oci:.dkb/registry/ingest:1.0.0"
    found = EmbeddedRegistry(root).referrers("ingest", ingest["digest"])
    assert sorted(r["digest"] for r in found) == sorted(r["digest"] for r in ingest["referrers"])
    assert [r["artifactType"] for r in EmbeddedRegistry(root).referrers("ingest", ingest["digest"], SBOM)] == [SBOM]
    again = publish(dkb, root, "//pipelines/ingest")
    assert len(index(root, "ingest")["manifests"]) == 3 and again.code == 0        # listed once


def _publisher(args: tuple[str, str, str, Any]) -> str:
    """One process pushing one tag into the shared repository; 'ok' or the error."""
    from dkbuild.oci.embedded import EmbeddedRegistry
    from dkbuild.oci.layout import OciLayout
    from dkbuild.oci.registry_errors import RegistryError

    workspace, source, tag, barrier = args
    layout = OciLayout(Path(source))
    desc = next(m for m in json.loads((Path(source) / "index.json").read_text())["manifests"]
                if m["annotations"][REF_NAME] == tag.split("@")[0])
    barrier.wait()
    try:
        EmbeddedRegistry(Path(workspace)).push_from_layout(layout, desc, "acme/race", tag.split("@")[-1])
    except RegistryError as exc:
        return str(exc)
    return "ok"


def test_concurrent_publishers_keep_the_index_whole_and_one_wins_a_tag(tmp_path: Path) -> None:
    from dkbuild.oci.jsoncanon import canonical_bytes, descriptor
    from dkbuild.oci.layout import OciLayout

    source = OciLayout(tmp_path / "build")
    for n in range(8):
        layer = source.put_blob(f"layer {n}".encode())
        config = b"{}"
        source.put_blob(config)
        manifest = canonical_bytes({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                    "config": descriptor("application/vnd.oci.empty.v1+json", config),
                                    "layers": [{"mediaType": "application/octet-stream", "digest": layer,
                                                "size": len(f"layer {n}")}]})
        source.put_blob(manifest)
        source.tag(f"v{n}", descriptor("application/vnd.oci.image.manifest.v1+json", manifest))
    # six processes with their own tags, and two more racing the six for tag "1.0.0" with other content
    jobs = [f"v{n}@1.{n}.1" for n in range(6)] + ["v6@1.0.0", "v7@1.0.0"]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(len(jobs))
        with ctx.Pool(len(jobs)) as pool:
            results = pool.map(_publisher, [(str(tmp_path), str(tmp_path / "build"), j, barrier) for j in jobs])
    assert results[:6] == ["ok"] * 6
    assert results[6:].count("ok") == 1 and any("tags are immutable" in r for r in results[6:]), results
    doc = json.loads((tmp_path / ".dkb/registry/acme/race/index.json").read_text())    # parses: never torn
    tags = {m["annotations"][REF_NAME]: m["digest"] for m in doc["manifests"]}
    assert sorted(tags) == ["1.0.0", *(f"1.{n}.1" for n in range(6))]
    winner = source.resolve("v6" if results[6] == "ok" else "v7")
    assert tags["1.0.0"] == winner["digest"]                                             # type: ignore[index]
    for tag, digest in tags.items():                                                     # every tag reads whole
        raw = skopeo_raw(f"oci:{tmp_path}/.dkb/registry/acme/race:{tag}")
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest


def test_promote_verifies_the_digest_in_the_embedded_registry(workspace, dkb) -> None:
    root = workspace()
    ingest = published(publish(dkb, root, "//pipelines/ingest"))["//pipelines/ingest"]
    env = NO_REGISTRY
    missing = run(root, "promote", "//pipelines/ingest", "--to", "dev", "--version", "9.9.9", env=env)
    assert missing.exit_code == 1
    assert "version 9.9.9 is not published (oci:.dkb/registry/ingest:9.9.9 does not exist)" in missing.stderr
    wrong = run(root, "promote", "//pipelines/ingest", "--to", "dev", "--digest", "sha256:" + "0" * 64, env=env)
    assert wrong.exit_code == 1 and f"resolves oci:.dkb/registry/ingest:1.0.0 to {ingest['digest']}" in wrong.stderr
    res = run(root, "promote", "//pipelines/ingest", "--to", "dev", "--digest", ingest["digest"], "-o", "json",
              env=env)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["packages"][0]["digest"] == ingest["digest"] and doc["warnings"] == []
    assert doc["packages"][0]["reference"] == "oci:.dkb/registry/ingest:1.0.0"
    status = json.loads(run(root, "status", "//pipelines/ingest", "-o", "json", env=env).stdout)
    assert status["packages"][0]["latest_published"] == "1.0.0"
    # verified, not trusted: a manifest whose bytes changed on disk is refused
    blob = root / ".dkb/registry/ingest/blobs/sha256" / ingest["digest"][7:]
    blob.write_bytes(blob.read_bytes().replace(b"ingest", b"tamper"))
    tampered = run(root, "promote", "//pipelines/ingest", "--to", "dev", "--dry-run", env=env)
    assert tampered.exit_code == 1 and "corrupt" in tampered.stderr, tampered.output
    assert publish(dkb, root, "//pipelines/ingest").code == 0                        # publishing again restores it
    assert run(root, "promote", "//pipelines/ingest", "--to", "dev", "--dry-run", env=env).exit_code == 0


def test_a_real_gitops_repository_is_warned_about_embedded_digests(workspace, dkb, tmp_path: Path) -> None:
    bare = seed_bare(tmp_path)
    root = workspace({"workspace.toml": f'[workspace]\nname = "test"\n[gitops]\nrepo = "{bare}"\n'})
    assert publish(dkb, root, "//pipelines/ingest").code == 0
    res = run(root, "promote", "//pipelines/ingest", "--to", "dev", "--dry-run", env=NO_REGISTRY)
    assert res.exit_code == 0, res.output
    assert "embedded registry oci:.dkb/registry, which no cluster can pull from" in res.stderr


def test_publish_to_a_real_registry_pushes_what_was_built_without_rebuilding(workspace, dkb, registry) -> None:
    root = workspace()
    embedded = published(publish(dkb, root))
    real = publish(dkb, root, "--registry", f"oci://{registry.host}/prefix", "--plain-http")
    assert real.code == 0, real
    assert real.json()["build"]["summary"] == {"total": 2, "built": 0, "cached": 2, "remote": 0, "failed": 0, "skipped": 0, "images_not_built": 0}                # nothing rebuilt
    assert real.json()["registry"] == {"url": f"oci://{registry.host}/prefix", "embedded": False}
    for label, p in published(real).items():
        assert p["status"] == "pushed" and p["digest"] == embedded[label]["digest"]
        name = label.rsplit("/", 1)[1]
        assert p["reference"] == f"{registry.host}/prefix/{name}:1.0.0"
        assert skopeo_raw(f"docker://{p['reference']}", "--tls-verify=false") == \
            skopeo_raw(f"oci:{root}/.dkb/registry/{name}:1.0.0")


def test_a_repository_inside_another_layout_is_refused(workspace, dkb) -> None:
    root = workspace()
    path = root / "pipelines/ingest/dk.yaml"
    data = yaml.safe_load(path.read_text())
    data["metadata"]["name"] = "blobs"
    data["metadata"]["namespace"] = "ingest"
    path.write_text(yaml.safe_dump(data))
    res = publish(dkb, root, "//pipelines/ingest")
    assert res.code == 1
    (entry,) = res.json()["published"]
    assert entry["status"] == "failed" and "a path component named 'blobs'" in entry["errors"][0]

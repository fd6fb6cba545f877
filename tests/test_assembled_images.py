"""generic-python packages without a Dockerfile, assembled onto a pinned base during `dkb build`:
from an OCI layout and from a real registry (pulled once into .dkb, every digest verified)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dkbuild.oci.jsoncanon import canonical_bytes, descriptor, sha256_digest
from dkbuild.oci.layout import OciLayout
from dkbuild.oci.tarball import Entry, gzip_bytes, tar_bytes

pytestmark = pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is installed by `make test`")


def make_base(root: Path) -> tuple[OciLayout, dict]:  # type: ignore[type-arg]
    layout = OciLayout(root)
    tar = tar_bytes([Entry("etc/base-release", b"tiny-base 1\n")])
    layer = gzip_bytes(tar)
    config = canonical_bytes({"architecture": "amd64", "os": "linux",
                              "config": {"Env": ["PATH=/usr/bin:/bin"]},
                              "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]}})
    manifest = canonical_bytes({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "config": descriptor("application/vnd.oci.image.config.v1+json", config),
                                "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)]})
    for blob in (layer, config, manifest):
        layout.put_blob(blob)
    desc = descriptor("application/vnd.oci.image.manifest.v1+json", manifest)
    layout.tag("base", desc)
    return layout, desc


def build_and_unpack(dkb, root: Path, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    res = dkb("build", "//pipelines/ingest", "--output", "json", cwd=root)
    assert res.code == 0, res
    (target,) = res.json()["targets"]
    assert "image" in target["artifacts"] and target["steps"][-1] == "container image (assemble)"
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{root}/.dkb/oci:pipelines/ingest.image", str(bundle)],
                   check=True, capture_output=True)
    return bundle


def test_assembled_on_an_oci_layout_base(workspace, dkb, tmp_path: Path) -> None:
    root = workspace()
    _, desc = make_base(root / "vendor" / "base")
    (root / "workspace.toml").write_text(f'[rules.generic-python]\nbase_image = "oci:vendor/base@{desc["digest"]}"\n')
    bundle = build_and_unpack(dkb, root, tmp_path)
    assert (bundle / "rootfs/etc/base-release").read_text() == "tiny-base 1\n"
    assert (bundle / "rootfs/app/src/main.py").is_file()
    config = json.loads((bundle / "config.json").read_text())
    assert "PYTHONPATH=/app/src" in config["process"]["env"]


def test_assembled_on_a_registry_base(workspace, dkb, registry, tmp_path: Path) -> None:
    from dkbuild.oci.registry import RegistryClient

    layout, desc = make_base(tmp_path / "base-layout")
    with RegistryClient(registry.host, plain_http=True) as client:
        client.push_from_layout(layout, desc, "vendor/python-base", "1")
    root = workspace()
    (root / "workspace.toml").write_text(
        f'[rules.generic-python]\nbase_image = "{registry.host}/vendor/python-base@{desc["digest"]}"\n'
        "base_plain_http = true\n")
    bundle = build_and_unpack(dkb, root, tmp_path)
    assert (bundle / "rootfs/etc/base-release").is_file() and (bundle / "rootfs/app/src/main.py").is_file()
    # Pinned by digest and now in .dkb: a rebuild from scratch needs no registry.
    registry.stop()
    shutil.rmtree(root / ".dkb/cache")
    res = dkb("build", "//pipelines/ingest", "--output", "json", cwd=root)
    assert res.code == 0 and res.json()["targets"][0]["status"] == "built"


def test_unpinned_registry_base_is_refused(workspace, dkb) -> None:
    root = workspace()
    (root / "workspace.toml").write_text('[rules.generic-python]\nbase_image = "registry.test/python:3.11"\n')
    res = dkb("build", "//pipelines/ingest", "--output", "json", cwd=root)
    assert res.code == 1
    assert "not pinned" in res.json()["targets"][0]["errors"][0]

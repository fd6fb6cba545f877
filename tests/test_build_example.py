"""The example monorepo builds end to end: package artifacts, a buildah image, CloudQuery specs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLE, git
from tests.test_build import _layer_files

pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in ("buildah", "skopeo", "umoci")),
                                reason="buildah, skopeo and umoci are installed by `make test`")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("example") / "monorepo"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".dkb"))
    res = subprocess.run([sys.executable, "-m", "dkbuild", "build", "--output", "json"], cwd=root, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    (root / "report.json").write_text(res.stdout)
    return root


def test_every_transform_built(built: Path) -> None:
    report = json.loads((built / "report.json").read_text())
    assert report["summary"] == {"total": 10, "built": 10, "cached": 0, "remote": 0, "failed": 0, "skipped": 0, "images_not_built": 0}
    images = {t["label"] for t in report["targets"] if "image" in t["artifacts"]}
    assert images == {"//pipelines/audience-export"}


def test_container_image_unpacks_with_umoci(built: Path, tmp_path: Path) -> None:
    layout = built / ".dkb" / "oci"
    inspect = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{layout}:pipelines/audience-export.image"],
                                        check=True, capture_output=True, text=True).stdout)
    assert inspect["Os"] == "linux"
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:pipelines/audience-export.image", str(bundle)],
                   check=True, capture_output=True)
    assert (bundle / "rootfs/app/src/audience_export/main.py").is_file()
    assert (bundle / "rootfs/app/requirements.txt").is_file()


def test_cloudquery_package_carries_rendered_specs(built: Path) -> None:
    files = _layer_files(built / ".dkb" / "oci", "pipelines/crm-sync", 2)   # dkb's own layer, after dk's two
    docs = list(yaml.safe_load_all(files["cloudquery/sync.yaml"]))
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["destination", "source"]
    source = next(d for d in docs if d["kind"] == "source")["spec"]
    assert source["path"].startswith("ghcr.io/") and source["destinations"]
    packed = json.dumps(docs)
    assert "${" in packed              # secrets stay references, resolved at run time


def test_rebuild_in_a_clone_is_byte_identical(built: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone" / "monorepo"
    shutil.copytree(EXAMPLE, clone, ignore=shutil.ignore_patterns(".dkb"))
    git(clone, "init", "-q")
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "example")
    res = subprocess.run([sys.executable, "-m", "dkbuild", "build", "--output", "json"], cwd=clone, capture_output=True,
                         text=True)
    first = {t["label"]: t["artifacts"] for t in json.loads((built / "report.json").read_text())["targets"]}
    second = {t["label"]: t["artifacts"] for t in json.loads(res.stdout)["targets"]}
    assert first == second

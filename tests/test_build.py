"""`dkb build`: artifacts, cache hits, incrementality, reports, and what real OCI tools think of them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import dataset, git, transform, write_tree, basic_files

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is installed by `make test`")


def build(dkb, root: Path, *args: str):  # type: ignore[no-untyped-def]
    res = dkb("build", "--output", "json", *args, cwd=root)
    assert res.code in (0, 1), res
    return res, {t["label"]: t for t in res.json()["targets"]}


def statuses(targets: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {label: t["status"] for label, t in targets.items()}


def test_second_build_is_all_cached(workspace, dkb) -> None:
    root = workspace()
    res, first = build(dkb, root)
    assert res.code == 0
    assert statuses(first) == {"//pipelines/ingest": "built", "//pipelines/publish": "built"}
    _, second = build(dkb, root)
    assert statuses(second) == {"//pipelines/ingest": "cached", "//pipelines/publish": "cached"}
    assert {k: t["artifacts"] for k, t in first.items()} == {k: t["artifacts"] for k, t in second.items()}


def test_dry_run_reports_keys_and_cache_status(workspace, dkb) -> None:
    root = workspace()
    _, planned = build(dkb, root, "--dry-run")
    assert set(statuses(planned).values()) == {"miss"}
    assert all(len(t["action_key"]) == 64 and t["steps"] == ["package artifact"] for t in planned.values())
    assert not (root / ".dkb" / "cache" / "ac").exists() or not list((root / ".dkb/cache/ac").iterdir())
    build(dkb, root)
    _, again = build(dkb, root, "--dry-run")
    assert set(statuses(again).values()) == {"hit"}


def test_artifact_is_dk_compatible_and_readable_by_skopeo(workspace, dkb, tmp_path: Path) -> None:
    root = workspace()
    _, built = build(dkb, root)
    layout = root / ".dkb" / "oci"
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{layout}:pipelines/ingest"], check=True,
                         capture_output=True).stdout
    manifest = json.loads(raw)
    assert manifest["artifactType"] == "application/vnd.infoblox.dk.package.v1"
    assert manifest["config"]["mediaType"] == "application/vnd.infoblox.dk.config.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.infoblox.dk.manifest.v1+yaml", "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.dkbuild.resources.v1.tar+gzip"]
    assert manifest["annotations"]["org.opencontainers.image.created"] == "1970-01-01T00:00:00Z"   # no clock
    assert built["//pipelines/ingest"]["artifacts"]["package"] == "sha256:" + __import__("hashlib").sha256(raw).hexdigest()
    copy = tmp_path / "copy"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{layout}:pipelines/ingest", f"dir:{copy}"], check=True)
    assert (copy / "manifest.json").read_bytes() == raw
    if shutil.which("umoci"):
        listed = subprocess.run(["umoci", "ls", "--layout", str(layout)], check=True, capture_output=True, text=True)
        # Each package under its label and under dk's <namespace>/<name>:<version> (no namespace here).
        assert set(listed.stdout.split()) == {"pipelines/ingest", "pipelines/publish", "ingest:1.0.0", "publish:1.0.0"}


def _layer_files(layout: Path, ref: str, index: int) -> dict[str, bytes]:
    import gzip
    import io
    import tarfile
    idx = json.loads((layout / "index.json").read_text())
    (desc,) = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == ref]
    manifest = json.loads((layout / "blobs/sha256" / desc["digest"][7:]).read_bytes())
    blob = (layout / "blobs/sha256" / manifest["layers"][index]["digest"][7:]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_artifact_is_self_contained_and_never_packs_secrets(workspace, dkb) -> None:
    store = yaml.safe_load((workspace() / "platform/stores/lake/dk.yaml").read_text())
    store["spec"]["secrets"] = {"password": "${LAKE_PASSWORD}"}
    root = workspace({"platform/stores/lake/dk.yaml": store})
    build(dkb, root)
    manifests = _layer_files(root / ".dkb/oci", "pipelines/ingest", 0)
    assert set(manifests) == {"dk.yaml"}                                       # dk's layer 1, no schemas/ here
    assert yaml.safe_load(manifests["dk.yaml"]) == yaml.safe_load((root / "pipelines/ingest/dk.yaml").read_text())
    resources = _layer_files(root / ".dkb/oci", "pipelines/ingest", 2)
    assert set(resources) == {"dataset/raw.yaml", "dataset/clean.yaml", "store/lake.yaml", "connector/postgres.yaml"}
    assert yaml.safe_load(resources["store/lake.yaml"])["spec"]["secrets"] == {"password": "${LAKE_PASSWORD}"}
    content = _layer_files(root / ".dkb/oci", "pipelines/ingest", 1)
    assert set(content) == {"src/main.py"}


def test_literal_secret_blocks_the_build_and_is_not_printed(workspace, dkb) -> None:
    store = yaml.safe_load((workspace() / "platform/stores/lake/dk.yaml").read_text())
    store["spec"]["secrets"] = {"password": "hunter2-literal"}
    root = workspace({"platform/stores/lake/dk.yaml": store})
    res = dkb("build", cwd=root)
    assert res.code == 1
    assert "E214" in res.err and "hunter2-literal" not in res.out + res.err
    assert not (root / ".dkb" / "oci").exists()


def _bad_package() -> dict[str, object]:
    """A Transform whose own DataSet copy has no spec.store (E220: dk's runner cannot follow it)."""
    storeless = dataset("bad-in")
    del storeless["spec"]["store"]
    return {"pipelines/bad/dk.yaml": transform("bad", ["bad-in"], ["bad-out"]),
            "pipelines/bad/dataset/bad-in.yaml": storeless,
            "pipelines/bad/dataset/bad-out.yaml": dataset("bad-out")}


def test_a_lint_error_fails_only_its_target(workspace, dkb) -> None:
    root = workspace(_bad_package())
    res = dkb("build", "--output", "json", cwd=root)
    assert res.code == 1 and "E220" in res.err
    targets = {t["label"]: t for t in res.json()["targets"]}
    assert targets["//pipelines/bad"]["status"] == "failed"        # through the dataset it reads
    assert any("pipelines/bad/dataset/bad-in.yaml" in e and "E220" in e for e in targets["//pipelines/bad"]["errors"])
    assert targets["//pipelines/ingest"]["status"] == "built"     # untouched by bad's problem
    assert dkb("build", "//pipelines/ingest/...", cwd=root).code == 0


def test_an_unloadable_manifest_fails_its_package_and_its_dependents(workspace, dkb) -> None:
    root = workspace({"datasets/raw/dk.yaml": "kind: DataSet\nmetadata: {name: raw\n",   # broken YAML
                      "pipelines/other/dk.yaml": transform("other", ["clean"], ["other-out"]),
                      "datasets/other-out/dk.yaml": dataset("other-out")})
    res = dkb("build", "--output", "json", cwd=root)
    assert res.code == 1, res
    targets = {t["label"]: t for t in res.json()["targets"]}
    assert targets["//datasets/raw"]["status"] == "failed"          # the package itself, named
    assert "datasets/raw/dk.yaml" in targets["//datasets/raw"]["errors"][0]
    # ingest reads 'raw', which the broken file may define: it is not taken for an external.
    assert targets["//pipelines/ingest"]["status"] == "failed"
    assert "datasets/raw/dk.yaml" in " ".join(targets["//pipelines/ingest"]["errors"])
    assert targets["//pipelines/other"]["status"] == "built"
    one = dkb("build", "//datasets/raw", cwd=root)
    assert one.code == 1 and "datasets/raw/dk.yaml" in one.out + one.err
    assert dkb("build", "//pipelines/other", cwd=root).code == 0


def test_runtime_check_python_syntax(workspace, dkb) -> None:
    root = workspace({"pipelines/ingest/src/broken.py": "def f(:\n"})
    res = dkb("build", cwd=root)
    assert res.code == 1 and "E700" in res.err and "pipelines/ingest/src/broken.py:1" in res.err


def _changed(dkb, root: Path) -> set[str]:  # type: ignore[no-untyped-def]
    _, targets = build(dkb, root)
    assert all(t["status"] in ("built", "cached") for t in targets.values()), targets
    return {label for label, t in targets.items() if t["status"] == "built"}


def test_incrementality(workspace, dkb) -> None:
    files = {**basic_files(),
             "pipelines/third/dk.yaml": transform("third", ["report"], ["final"]),
             "datasets/final/dk.yaml": dataset("final")}
    root = workspace(files)
    assert _changed(dkb, root) == {"//pipelines/ingest", "//pipelines/publish", "//pipelines/third"}
    assert _changed(dkb, root) == set()
    (root / "pipelines/publish/src/main.py").write_text("print('v2')\n")
    assert _changed(dkb, root) == {"//pipelines/publish"}
    path = root / "datasets/report/dk.yaml"
    data = yaml.safe_load(path.read_text())
    data["spec"]["schema"].append({"name": "n", "type": "integer"})
    path.write_text(yaml.safe_dump(data))
    assert _changed(dkb, root) == {"//pipelines/publish", "//pipelines/third"}
    path.write_text("# only a comment and a new key order\n" + yaml.safe_dump(data, sort_keys=True))
    assert _changed(dkb, root) == set()
    store = root / "platform/stores/lake/dk.yaml"
    store.write_text(store.read_text().replace("db.internal", "db9.internal"))
    assert _changed(dkb, root) == {"//pipelines/ingest", "//pipelines/publish", "//pipelines/third"}
    (root / "workspace.toml").write_text('[workspace]\nname = "test"\n[registry]\nurl = "oci://r.test/x"\n')
    assert _changed(dkb, root) == {"//pipelines/ingest", "//pipelines/publish", "//pipelines/third"}
    (root / "workspace.toml").write_text('[workspace]\nname = "test"\n[registry]\nurl = "oci://r.test/x"\n'
                                         '[policy]\nignore = ["W209"]\n')
    assert _changed(dkb, root) == set()    # no rule reads [policy]
    (root / "rules").mkdir()
    (root / "rules/py.py").write_text("from dkbuild.engine.rules import Rule\n"
                                      "class P(Rule):\n    name = 'generic-python'\n    version = '99'\nRULE = P()\n")
    assert _changed(dkb, root) == {"//pipelines/ingest", "//pipelines/publish", "//pipelines/third"}


def test_executable_bit_is_part_of_the_key_and_the_artifact(workspace, dkb) -> None:
    import gzip
    import io
    import tarfile
    root = workspace()
    _changed(dkb, root)
    (root / "pipelines/ingest/src/main.py").chmod(0o755)
    assert _changed(dkb, root) == {"//pipelines/ingest"}
    layout = root / ".dkb/oci"
    idx = json.loads((layout / "index.json").read_text())
    (desc,) = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "pipelines/ingest"]
    manifest = json.loads((layout / "blobs/sha256" / desc["digest"][7:]).read_bytes())
    layer = (layout / "blobs/sha256" / manifest["layers"][1]["digest"][7:]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        member = tar.getmember("src/main.py")
        assert member.mode == 0o755 and member.mtime == 0 and member.uid == 0 and member.uname == ""


def test_report_file(workspace, dkb, tmp_path: Path) -> None:
    root = workspace()
    report_path = tmp_path / "build.json"
    res = dkb("build", "--report", str(report_path), cwd=root)
    assert res.code == 0
    report = json.loads(report_path.read_text())
    assert report["summary"] == {"total": 2, "built": 2, "cached": 0, "remote": 0, "failed": 0, "skipped": 0,
                                 "images_not_built": 0}
    for t in report["targets"]:
        assert set(t) >= {"label", "status", "action_key", "duration_s", "artifacts", "errors"}


def test_plain_progress_lines_when_not_a_tty(workspace, dkb) -> None:
    res = dkb("build", cwd=workspace())
    assert "[1/2]" in res.err and "[2/2]" in res.err
    assert "2 built" in res.out


def test_summary_shows_zero_counts_in_text_and_json(workspace, dkb) -> None:
    """Every count is shown, zeros included, in the same order in text and JSON."""
    root = workspace()
    first = dkb("build", cwd=root)
    assert first.code == 0, first
    assert "2 built, 0 cached, 0 remote, 0 failed, 0 skipped" in first.out.splitlines()[-1]
    again = dkb("build", "--output", "json", cwd=root)
    summary = again.json()["summary"]
    assert list(summary) == ["total", "built", "cached", "remote", "failed", "skipped", "images_not_built"]
    assert summary == {"total": 2, "built": 0, "cached": 2, "remote": 0, "failed": 0, "skipped": 0,
                       "images_not_built": 0}
    dry = dkb("build", "--dry-run", "--output", "json", cwd=root).json()["summary"]
    assert dry == {"total": 2, "hit": 2, "miss": 0, "failed": 0, "skipped": 0, "images_not_built": 0}
    assert "2 hit, 0 miss, 0 failed, 0 skipped" in dkb("build", "--dry-run", cwd=root).out.splitlines()[-1]


def test_reproducible_across_clones_paths_mtimes_umask(tmp_path: Path, dkb) -> None:
    import os
    a = write_tree(tmp_path / "a" / "ws", basic_files())
    git(a, "init", "-q")
    git(a, "add", "-A")
    git(a, "commit", "-qm", "init")
    b = tmp_path / "elsewhere" / "deeper" / "clone"
    old = os.umask(0o077)
    try:
        git(tmp_path, "clone", "-q", str(a), str(b))
    finally:
        os.umask(old)
    for path in b.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            os.utime(path, (123456, 123456))
    _, first = build(dkb, a)
    _, second = build(dkb, b)
    assert {k: t["artifacts"] for k, t in first.items()} == {k: t["artifacts"] for k, t in second.items()}
    shutil.rmtree(a / ".dkb")
    _, again = build(dkb, a)
    assert {k: t["artifacts"] for k, t in again.items()} == {k: t["artifacts"] for k, t in first.items()}


def test_keep_going_reports_every_failure(workspace, dkb) -> None:
    # A missing builder fails the run only when image failures are set to (issue 13: by default
    # it is reported and the package artifact is built regardless).
    root = workspace({"pipelines/ingest/Dockerfile": "FROM scratch\n"})
    res = dkb("build", "-k", "--image-backend", "buildx", "--image-failure", "fail", "--output", "json", cwd=root,
              env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent"})
    targets = {t["label"]: t for t in res.json()["targets"]}
    assert res.code == 1
    assert targets["//pipelines/ingest"]["status"] == "failed"
    assert targets["//pipelines/ingest"]["image"]["failure"] == "no-builder"
    assert "package" in targets["//pipelines/ingest"]["artifacts"]
    assert targets["//pipelines/publish"]["status"] == "built"


def test_build_only_affected(tmp_path: Path, dkb) -> None:
    root = write_tree(tmp_path / "ws", basic_files())
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    (root / "pipelines/publish/src/main.py").write_text("print('v2')\n")
    _, targets = build(dkb, root, "--affected", "--since", "main")
    assert statuses(targets) == {"//pipelines/publish": "built"}
    assert dkb("build", "--affected", cwd=root).code == 2          # --affected needs --since


def test_stamp_records_time_and_commit_only_when_asked(tmp_path: Path, dkb) -> None:
    root = write_tree(tmp_path / "ws", basic_files())
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    _, plain = build(dkb, root)
    _, stamped = build(dkb, root, "--stamp")
    assert statuses(stamped) == {"//pipelines/ingest": "built", "//pipelines/publish": "built"}
    layout = root / ".dkb/oci"
    manifest = json.loads((layout / "blobs/sha256" / stamped["//pipelines/ingest"]["artifacts"]["package"][7:]).read_bytes())
    assert manifest["annotations"]["org.opencontainers.image.revision"] == git(root, "rev-parse", "HEAD").strip()
    assert "org.opencontainers.image.created" in manifest["annotations"]
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_bytes())
    assert set(config["buildInfo"]) >= {"timestamp", "builder", "gitCommit"}
    assert plain["//pipelines/ingest"]["artifacts"] != stamped["//pipelines/ingest"]["artifacts"]


def test_namespaced_resources_are_packed_apart() -> None:
    """Two datasets of one name in two namespaces are two files in dkb's resources layer."""
    from dkbuild.engine.packaging import resource_path

    assert resource_path("DataSet", {"metadata": {"name": "raw"}}) == "dataset/raw.yaml"
    assert resource_path("DataSet", {"metadata": {"name": "raw", "namespace": "team-a"}}) == "dataset/team-a/raw.yaml"
    assert resource_path("DataSet", {"metadata": {"name": "raw", "namespace": "team-b"}}) == "dataset/team-b/raw.yaml"
    assert resource_path("Store", {"metadata": {"name": "lake", "namespace": ""}}) == "store/lake.yaml"


def test_lint_severity_decides_what_blocks(workspace, dkb) -> None:
    # A second document of the package's dk.yaml has a field of the wrong type (E105). It blocks the
    # package, unless the workspace lowers E105: the final severity decides, not the loader's.
    broken = dataset("side")
    broken["spec"]["schema"] = "not-a-list"
    files = {"pipelines/ingest/dk.yaml": [transform("ingest", ["raw"], ["clean"]), broken]}
    blocked = dkb("build", "--output", "json", cwd=workspace(files))
    assert blocked.code == 1 and "E105" in blocked.err, blocked
    lowered = workspace({**files, "workspace.toml": '[workspace]\nname = "test"\n[lint.severity]\nE105 = "advisory"\n'})
    res = dkb("build", "--output", "json", cwd=lowered)
    assert res.code == 0, res
    assert {x["label"]: x["status"] for x in res.json()["targets"]}["//pipelines/ingest"] == "built"

"""The local store under stress: concurrent builds, SIGKILL at any moment, corrupted blobs, gc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dkbuild.engine.build import LocalStore
from dkbuild.engine.gc import collect, parse_age, parse_size
from tests.conftest import dataset, transform, write_tree


def many_packages(root: Path, n: int, big: int = 0, big_each: int = 0) -> Path:
    files = {"workspace.toml": "", "platform/c/dk.yaml": {"apiVersion": "datakit.infoblox.dev/v1alpha1",
             "kind": "Connector", "metadata": {"name": "pg"}, "spec": {"type": "postgres", "capabilities": ["source"]}},
             "platform/s/dk.yaml": {"apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": "Store",
                                    "metadata": {"name": "lake"}, "spec": {"connector": "pg", "connection": {"h": 1}}}}
    for i in range(n):
        files[f"datasets/d{i}/dk.yaml"] = dataset(f"d{i}")
        files[f"datasets/o{i}/dk.yaml"] = dataset(f"o{i}")
        files[f"pipelines/p{i}/dk.yaml"] = transform(f"p{i}", [f"d{i}"], [f"o{i}"])
        files[f"pipelines/p{i}/src/main.py"] = f"print({i})\n"
    write_tree(root, files)
    if big:
        (root / "pipelines/p0/data.bin").write_bytes(os.urandom(big))
    for i in range(n if big_each else 0):
        (root / f"pipelines/p{i}/data.bin").write_bytes(os.urandom(big_each))
    return root


def dkb_proc(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "dkbuild", "build", *args], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def assert_store_consistent(root: Path) -> None:
    store = LocalStore(root / ".dkb")
    for entry in store.cache.dir.glob("*.json"):
        for blob in json.loads(entry.read_text())["blobs"]:
            assert store.layout.verify_blob(blob["digest"]), f"{entry.name} trusts a broken blob"
    json.loads((root / ".dkb/oci/index.json").read_text())


def test_two_builds_at_once(tmp_path: Path, dkb) -> None:
    root = many_packages(tmp_path / "ws", 25)
    first, second = dkb_proc(root, "-j", "2"), dkb_proc(root, "-j", "2")
    assert first.wait(120) == 0, first.stderr.read()
    assert second.wait(120) == 0, second.stderr.read()
    assert_store_consistent(root)
    res = dkb("build", "--output", "json", cwd=root)
    assert res.json()["summary"] == {"total": 25, "built": 0, "cached": 25, "remote": 0, "failed": 0, "skipped": 0, "images_not_built": 0}
    refs = json.loads((root / ".dkb/oci/index.json").read_text())["manifests"]
    assert len(refs) == 2 * 25           # each package under its label and dk's <name>:<version>


def test_sigkill_at_any_moment_leaves_nothing_untrustworthy(tmp_path: Path, dkb) -> None:
    root = many_packages(tmp_path / "ws", 15, big=8 * 1024 * 1024)
    clean = many_packages(tmp_path / "clean", 15)
    (clean / "pipelines/p0/data.bin").write_bytes((root / "pipelines/p0/data.bin").read_bytes())
    expected = {t["label"]: t["artifacts"] for t in dkb("build", "--output", "json", cwd=clean).json()["targets"]}
    for delay in (0.05, 0.2, 0.4, 0.6, 0.9, 1.3):
        proc = dkb_proc(root, "-j", "2")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert_store_consistent(root)
    res = dkb("build", "--output", "json", cwd=root)
    assert res.code == 0, res
    assert {t["label"]: t["artifacts"] for t in res.json()["targets"]} == expected
    assert_store_consistent(root)


def test_corrupted_blob_is_detected_and_rebuilt(tmp_path: Path, dkb) -> None:
    root = many_packages(tmp_path / "ws", 2)
    first = {t["label"]: t for t in dkb("build", "--output", "json", cwd=root).json()["targets"]}
    store = LocalStore(root / ".dkb")
    manifest = json.loads(store.layout.get_blob(first["//pipelines/p0"]["artifacts"]["package"]))
    layer = store.layout.blob_path(manifest["layers"][1]["digest"])
    layer.write_bytes(b"\0" * layer.stat().st_size)
    again = {t["label"]: t for t in dkb("build", "--output", "json", cwd=root).json()["targets"]}
    assert again["//pipelines/p0"]["status"] == "built"
    assert "corrupt" in again["//pipelines/p0"]["note"]
    assert again["//pipelines/p1"]["status"] == "cached"
    assert again["//pipelines/p0"]["artifacts"] == first["//pipelines/p0"]["artifacts"]
    assert store.layout.verify_blob(manifest["layers"][1]["digest"])


def test_cache_verify_catches_corruption_that_kept_its_mtime(tmp_path: Path, dkb) -> None:
    root = many_packages(tmp_path / "ws", 1)
    dkb("build", cwd=root)
    store = LocalStore(root / ".dkb")
    blob = next(p for p in store.layout.blobs.iterdir())
    st = blob.stat()
    blob.write_bytes(b"x" * st.st_size)
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))
    res = dkb("cache", "verify", "--output", "json", cwd=root)
    assert res.code == 1 and len(res.json()["corrupt_blobs"]) == 1
    rebuilt = dkb("build", "--output", "json", cwd=root).json()
    assert rebuilt["summary"] == {"total": 1, "built": 1, "cached": 0, "remote": 0, "failed": 0, "skipped": 0, "images_not_built": 0}
    assert dkb("cache", "verify", cwd=root).code == 0


def test_gc_evicts_least_recently_used(tmp_path: Path, dkb) -> None:
    root = many_packages(tmp_path / "ws", 3)
    dkb("build", cwd=root)
    store = LocalStore(root / ".dkb")
    entries = sorted(store.cache.dir.glob("*.json"))
    for i, entry in enumerate(entries):
        os.utime(entry, (1000 + i, 1000 + i))     # the last one is the most recently used
    keep = json.loads(entries[-1].read_text())
    keep_size = sum(b["size"] for b in keep["blobs"])
    report = collect(store, max_size=keep_size, grace=0)
    assert report.entries_evicted == 2
    assert [p.name for p in store.cache.dir.glob("*.json")] == [entries[-1].name]
    assert {"sha256:" + p.name for p in store.layout.blobs.iterdir()} == {b["digest"] for b in keep["blobs"]}
    assert len(store.layout.refs()) == 2     # the kept package's label ref and dk's <name>:<version>
    assert dkb("build", "--output", "json", cwd=root).json()["summary"] == {
        "total": 3, "built": 2, "cached": 1, "remote": 0, "failed": 0, "skipped": 0, "images_not_built": 0}


def test_gc_cli_and_parsing(tmp_path: Path, dkb) -> None:
    root = many_packages(tmp_path / "ws", 1)
    dkb("build", cwd=root)
    res = dkb("cache", "gc", "--max-age", "1s", "--dry-run", "--output", "json", cwd=root)
    assert res.code == 0 and res.json()["dry_run"] is True
    assert parse_size("2G") == 2 * 1024 ** 3 and parse_size("500M") == 500 * 1024 ** 2 and parse_size("1.5GiB") > 0
    assert parse_age("30d") == 30 * 86400
    assert dkb("cache", "gc", "--max-size", "lots", cwd=root).code == 2


def test_ctrl_c_stops_cleanly(tmp_path: Path, dkb) -> None:
    root = many_packages(tmp_path / "ws", 40, big_each=3 * 1024 * 1024)
    proc = dkb_proc(root, "-j", "1", "--report", str(tmp_path / "report.json"))
    deadline = time.monotonic() + 30
    while not list((root / ".dkb/cache/ac").glob("*.json")) if (root / ".dkb/cache/ac").exists() else True:
        assert time.monotonic() < deadline, "the build never got going"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    # The last word is the interruption, never a ✓: on stdout the summary, on stderr what was kept.
    assert out.splitlines()[-1].startswith("✗ 40 target(s):"), out
    assert err.splitlines()[-1].startswith("✗ interrupted:") and "not started" in err.splitlines()[-1], err
    assert "✓" not in out + err
    assert_store_consistent(root)
    assert not list((root / ".dkb").rglob("*.part")) and not list((root / ".dkb").rglob(".tmp*"))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["interrupted"] is True
    assert report["summary"]["skipped"] >= 1 and report["summary"]["built"] >= 1
    res = dkb("build", "--output", "json", cwd=root)
    assert res.code == 0
    assert res.json()["summary"]["cached"] == report["summary"]["built"]

"""The remote cache on a real registry: read-through, opt-in writes, signing, faults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import basic_files, write_tree


def build(dkb, root: Path, registry, *args: str, env=None):  # type: ignore[no-untyped-def]
    res = dkb("build", "--remote-cache", f"oci://{registry.host}/acme/cache", "--plain-http", "--output", "json",
              *args, cwd=root, env=env)
    return res


def statuses(res) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {t["label"]: t["status"] for t in res.json()["targets"]}


def two_checkouts(tmp_path: Path) -> tuple[Path, Path]:
    return write_tree(tmp_path / "ci", basic_files()), write_tree(tmp_path / "laptop", basic_files())


def test_read_only_by_default_then_shared_after_a_write(tmp_path: Path, dkb, registry) -> None:
    ci, laptop = two_checkouts(tmp_path)
    assert set(statuses(build(dkb, ci, registry)).values()) == {"built"}            # nothing written
    assert set(statuses(build(dkb, laptop, registry)).values()) == {"built"}
    shutil.rmtree(laptop / ".dkb")
    assert set(statuses(build(dkb, ci, registry, "--remote-cache-write")).values()) == {"cached"}
    res = build(dkb, laptop, registry)
    assert set(statuses(res).values()) == {"remote"}
    first = {t["label"]: t["artifacts"] for t in build(dkb, ci, registry).json()["targets"]}
    assert {t["label"]: t["artifacts"] for t in res.json()["targets"]} == first
    assert set(statuses(build(dkb, laptop, registry)).values()) == {"cached"}       # now local


def test_signed_entries(tmp_path: Path, dkb, registry) -> None:
    ci, laptop = two_checkouts(tmp_path)
    build(dkb, ci, registry, "--remote-cache-write", env={"DKB_CACHE_SIGNING_KEY": "k1"})
    forged = build(dkb, laptop, registry, env={"DKB_CACHE_SIGNING_KEY": "other-key"})
    assert set(statuses(forged).values()) == {"built"}
    assert any("signature" in w for w in forged.json()["warnings"])
    shutil.rmtree(laptop / ".dkb")
    good = build(dkb, laptop, registry, env={"DKB_CACHE_SIGNING_KEY": "k1"})
    assert set(statuses(good).values()) == {"remote"}


def test_registry_down_degrades_to_local(tmp_path: Path, dkb, registry) -> None:
    ci, _ = two_checkouts(tmp_path)
    registry.stop()
    res = build(dkb, ci, registry, "--remote-cache-write")
    assert res.code == 0
    assert set(statuses(res).values()) == {"built"}
    assert any("unusable" in w for w in res.json()["warnings"])
    required = build(dkb, write_tree(tmp_path / "other", basic_files()), registry, "--remote-cache-required")
    assert required.code == 1
    assert set(statuses(required).values()) == {"failed"}


def test_corrupt_remote_blob_is_ignored_and_rebuilt(tmp_path: Path, dkb, registry) -> None:
    ci, laptop = two_checkouts(tmp_path)
    built = {t["label"]: t for t in build(dkb, ci, registry, "--remote-cache-write").json()["targets"]}
    manifest_digest = built["//pipelines/ingest"]["artifacts"]["package"]
    data = registry.blob_file(manifest_digest)
    data.write_bytes(b"x" * data.stat().st_size)
    res = build(dkb, laptop, registry)
    assert statuses(res)["//pipelines/ingest"] == "built"
    assert statuses(res)["//pipelines/publish"] == "remote"
    assert any("corrupt" in w for w in res.json()["warnings"])
    assert res.json()["targets"][0]["artifacts"] == built[res.json()["targets"][0]["label"]]["artifacts"]


def test_remote_cache_from_workspace_toml_and_env(tmp_path: Path, dkb, registry) -> None:
    ci, laptop = two_checkouts(tmp_path)
    # [cache] is read by no rule, so this workspace.toml leaves every key as it is.
    (ci / "workspace.toml").write_text(f'[cache]\nremote = "oci://{registry.host}/acme/cache"\n')
    res = dkb("build", "--remote-cache-write", "--plain-http", "--output", "json", cwd=ci)
    assert res.code == 0
    env_build = dkb("build", "--plain-http", "--output", "json", cwd=laptop,
                    env={"DKB_REMOTE_CACHE": f"oci://{registry.host}/acme/cache"})
    assert set(statuses(env_build).values()) == {"remote"}
    assert json.loads(env_build.out)["summary"]["remote"] == 2

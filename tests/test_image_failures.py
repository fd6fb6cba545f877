"""Images never block the package artifact (issue 13, item 5): a Dockerfile image that cannot be
built leaves the package built, cached and tagged; the image step is reported with its reason and
a fix; `[build] image_failure` (auto | fail | warn, or --image-failure) decides the exit status.
Run with the real buildah (this machine reaches no registry, so any non-scratch FROM fails) and
with no builder on PATH at all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dkbuild.oci.backends import BackendUnavailable, BadImageRequest, BaseImageUnavailable, ImageBuildFailed
from dkbuild.oci.backends.failure import (
    BAD_REQUEST,
    BASE_UNAVAILABLE,
    BUILD_FAILED,
    NO_BUILDER,
    base_pull_failed,
    classify,
)
from tests.test_dk_artifact import KAFKA, kafka_workspace

needs_buildah = pytest.mark.skipif(shutil.which("buildah") is None, reason="buildah is installed by `make test`")
needs_corpus = pytest.mark.skipif(not KAFKA.is_dir(), reason="the dk corpus is not beside the repository")


def build(dkb, root: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    res = dkb("build", "--output", "json", *args, cwd=root, env=env)
    assert res.code in (0, 1), res
    (target,) = res.json()["targets"]
    return res, target


def layout_refs(root: Path) -> set[str]:
    index = json.loads((root / ".dkb/oci/index.json").read_text())
    return {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]}


def no_builder_path(tmp_path: Path) -> dict[str, str]:
    """A PATH with git and nothing that builds images."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git
    (bin_dir / "git").symlink_to(git)
    return {"PATH": str(bin_dir)}


@needs_buildah
@needs_corpus
def test_unreachable_base_still_builds_and_caches_the_package(tmp_path: Path, dkb) -> None:  # type: ignore[no-untyped-def]
    root = kafka_workspace(tmp_path / "kafka")                    # FROM golang:1.25-alpine, no network here
    res, target = build(dkb, root, "--image-backend", "buildah")
    assert res.code == 0
    assert target["status"] == "built" and "package" in target["artifacts"] and "image" not in target["artifacts"]
    image = target["image"]
    assert image["status"] == "failed" and image["failure"] == BASE_UNAVAILABLE and image["blocking"] is False
    assert "golang:1.25-alpine" in image["reason"] and "registries.conf" in image["fix"]
    assert res.json()["summary"]["images_not_built"] == 1
    assert {"kafka-s3-pipeline", "analytics/kafka-s3-pipeline:1.0.0"} <= layout_refs(root)
    # The package comes from the cache next time; the image is tried again (a failure is never cached).
    res, again = build(dkb, root, "--image-backend", "buildah")
    assert res.code == 0 and again["status"] == "cached"
    assert again["artifacts"] == target["artifacts"] and again["image"]["failure"] == BASE_UNAVAILABLE
    # The text report says so, with the fix.
    text = dkb("build", "--image-backend", "buildah", cwd=root)
    assert text.code == 0 and "image not built (base-unavailable, not blocking)" in text.out and "fix:" in text.out
    assert "1 image(s) not built" in text.out


@needs_buildah
@needs_corpus
def test_image_failure_setting_decides_the_exit(tmp_path: Path, dkb) -> None:  # type: ignore[no-untyped-def]
    root = kafka_workspace(tmp_path / "kafka")
    (root / "workspace.toml").write_text('[workspace]\nname = "kafka"\n[build]\nimage_failure = "fail"\n')
    res, target = build(dkb, root, "--image-backend", "buildah")
    assert res.code == 1 and target["status"] == "failed" and target["image"]["blocking"] is True
    assert target["errors"][0].startswith("image: ") and "fix: " in target["errors"][0]
    # The package artifact is there all the same, built, cached and tagged.
    assert "package" in target["artifacts"] and "analytics/kafka-s3-pipeline:1.0.0" in layout_refs(root)
    res, target = build(dkb, root, "--image-backend", "buildah", "--image-failure", "warn")    # the flag wins
    assert res.code == 0 and target["status"] == "cached"
    (root / "workspace.toml").write_text('[workspace]\nname = "kafka"\n[build]\nimage_failure = "sometimes"\n')
    bad = dkb("build", cwd=root)
    assert bad.code == 2 and "build.image_failure" in bad.err and "workspace.toml" in bad.err


@needs_buildah
def test_a_failed_build_with_a_builder_fails_the_run(workspace, dkb) -> None:  # type: ignore[no-untyped-def]
    root = workspace({"pipelines/ingest/Dockerfile": "FROM scratch\nRUN false\n"})
    res = dkb("build", "--image-backend", "buildah", "--output", "json", "//pipelines/ingest", cwd=root)
    assert res.code == 1, res
    (target,) = res.json()["targets"]
    assert target["status"] == "failed" and target["image"]["failure"] == BUILD_FAILED
    assert "package" in target["artifacts"]          # built and cached before the image was tried
    warned = dkb("build", "--image-backend", "buildah", "--image-failure", "warn", "--output", "json",
                 "//pipelines/ingest", cwd=root)
    assert warned.code == 0 and warned.json()["targets"][0]["status"] == "cached"


@needs_corpus
def test_no_builder_on_path_is_reported_not_blocking(tmp_path: Path, dkb) -> None:  # type: ignore[no-untyped-def]
    root = kafka_workspace(tmp_path / "kafka")
    env = no_builder_path(tmp_path)
    res, target = build(dkb, root, env=env)
    assert res.code == 0, res
    assert target["status"] == "built" and "package" in target["artifacts"]
    assert target["steps"][1].startswith("container image (unavailable:")
    image = target["image"]
    assert image["failure"] == NO_BUILDER and "buildah" in image["reason"] and "install buildah" in image["fix"]
    assert "analytics/kafka-s3-pipeline:1.0.0" in layout_refs(root)
    # Installing a builder changes the action key (the backend is part of it): the image is tried,
    # the package is reused from its own cache entry.
    if shutil.which("buildah"):
        res, with_builder = build(dkb, root, "--image-backend", "buildah")
        assert with_builder["action_key"] != target["action_key"]
        assert with_builder["artifacts"]["package"] == target["artifacts"]["package"]
        assert with_builder["image"]["failure"] == BASE_UNAVAILABLE


def test_failures_are_classified_and_the_policy_applies() -> None:
    cases = {NO_BUILDER: BackendUnavailable("buildah not found on PATH"),
             BASE_UNAVAILABLE: BaseImageUnavailable("could not get a base image"),
             BUILD_FAILED: ImageBuildFailed("RUN false failed"),
             BAD_REQUEST: BadImageRequest("base image is not pinned")}
    blocking = {"auto": {BUILD_FAILED, BAD_REQUEST}, "fail": set(cases), "warn": set()}
    for kind, exc in cases.items():
        failure = classify(exc)
        assert failure is not None and failure.kind == kind and failure.reason == str(exc) and failure.fix
        for policy, blocks in blocking.items():
            assert failure.blocks(policy) == (kind in blocks), (kind, policy)
    assert classify(ValueError("not an image problem")) is None
    assert base_pull_failed('Error: creating build container: short-name "golang:1" did not resolve')
    assert base_pull_failed("ERROR: failed to solve: golang:1: failed to resolve source metadata for docker.io/x")
    assert not base_pull_failed("error building at STEP \"RUN false\": exit status 1")


def test_unset_policy_is_auto() -> None:
    from dkbuild.config_model import parse_config

    assert parse_config("").build.image_failure == "auto"
    assert parse_config('[build]\nimage_failure = "warn"\n').build.image_failure == "warn"

"""Issue 13 item 1: package-local resources as in dk, and namespaces in target identity.

A package's `store/`, `dataset/`, `connector/` copies belong to it: two packages may hold different
copies under one name, and each is built with its own. `metadata.namespace` is part of identity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.compat import dkfixtures as dk
from tests.compat.corpus import artifact_files, built_packages, run_dkb


def divergent_copies(root: Path) -> Path:
    """pkg-a and pkg-b each carry their own store/s3-raw.yaml, with different buckets."""
    files = {}
    for pkg in ("a", "b"):
        files |= dk.python_package(f"pkg-{pkg}", dk.transform(f"pkg-{pkg}", [f"raw-{pkg}"], [f"clean-{pkg}"]), {
            "connector/s3.yaml": dk.connector("s3"),
            "store/s3-raw.yaml": dk.s3_store("s3-raw", bucket=f"bucket-of-{pkg}"),
            f"dataset/raw-{pkg}.yaml": dk.dataset(f"raw-{pkg}", "s3-raw"),
            f"dataset/clean-{pkg}.yaml": dk.dataset(f"clean-{pkg}", "s3-raw"),
        })
    return dk.workspace(root, files)


@pytest.fixture(scope="module")
def divergent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return divergent_copies(tmp_path_factory.mktemp("divergent"))


def test_divergent_copies_lint_clean(divergent: Path) -> None:
    res = run_dkb("lint", "//...", "--output", "json", cwd=divergent)
    assert res.code == 0, res
    assert not [d for d in dk.diagnostics(res.json()) if d["code"] == "E504"], res.out


@pytest.mark.parametrize(("own", "other"), [("a", "b"), ("b", "a")])
def test_single_target_build_packs_its_own_copy(divergent: Path, own: str, other: str) -> None:
    res = run_dkb("build", f"//pkg-{own}", "--output", "json", cwd=divergent)
    assert res.code == 0, res
    (digest,) = built_packages(res.json())
    carried = b"\n".join(artifact_files(divergent, digest).values())
    assert f"bucket-of-{own}".encode() in carried, f"the artifact of //pkg-{own} carries its own s3-raw"
    assert f"bucket-of-{other}".encode() not in carried, f"the artifact of //pkg-{own} carries pkg-{other}'s s3-raw"


@pytest.mark.parametrize(("own", "other"), [("a", "b"), ("b", "a")])
def test_deps_show_the_package_s_own_copy(divergent: Path, own: str, other: str) -> None:
    res = run_dkb("query", f"deps(//pkg-{own})", "--output", "json", cwd=divergent)
    assert res.code == 0, res
    files = {t["file"] for t in res.json()["targets"]}
    assert f"pkg-{own}/store/s3-raw.yaml" in files, files
    assert f"pkg-{other}/store/s3-raw.yaml" not in files, files


@pytest.fixture(scope="module")
def namespaced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """team-a/ingest and team-b/ingest: two Transforms named ingest in two namespaces."""
    files = {}
    for team in ("team-a", "team-b"):
        files |= dk.python_package(f"{team}/ingest", dk.transform("ingest", [f"{team}-raw"], [f"{team}-clean"],
                                                                    namespace=team), {
            "connector/s3.yaml": dk.connector("s3"),
            "store/lake.yaml": dk.s3_store("lake", bucket="shared-lake", namespace=team),
            f"dataset/{team}-raw.yaml": dk.dataset(f"{team}-raw", "lake", namespace=team),
            f"dataset/{team}-clean.yaml": dk.dataset(f"{team}-clean", "lake", namespace=team),
        })
    return dk.workspace(tmp_path_factory.mktemp("namespaced"), files)


def test_same_name_in_two_namespaces_is_two_targets(namespaced: Path) -> None:
    res = run_dkb("query", "kind(Transform, //...)", "--output", "json", cwd=namespaced)
    assert res.code == 0, res
    targets = res.json()["targets"]
    assert sorted(t["file"] for t in targets) == ["team-a/ingest/dk.yaml", "team-b/ingest/dk.yaml"], targets
    assert len({t["label"] for t in targets}) == 2


def test_same_name_in_two_namespaces_both_build(namespaced: Path) -> None:
    lint = run_dkb("lint", "//...", cwd=namespaced)
    assert lint.code == 0, lint
    res = run_dkb("build", "//...", "--output", "json", cwd=namespaced)
    assert res.code == 0, res
    namespaces = sorted(json.loads(artifact_files(namespaced, d)["config"])["manifest"]["metadata"]["namespace"]
                        for d in built_packages(res.json()))
    assert namespaces == ["team-a", "team-b"]

"""A no-op build remembered whole (engine.buildmemo): recalled only while everything it rests on holds."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from dkbuild import api
from dkbuild.engine import build as engine_build
from dkbuild.engine import buildmemo
from dkbuild.engine.build import BuildOptions

MEMOS = Path(".dkb") / "cache" / "graph"


def _build(root: Path, patterns: tuple[str, ...] = ("//...",), **options: Any) -> tuple[Any, bool, api.Loaded]:
    """What `dkb build` does: recall, else load and build. Returns (outcome, recalled, loaded)."""
    loaded = api.load(root, deferred=True)
    opts = BuildOptions(**{k: v for k, v in options.items() if k in ("dry_run", "image_backend")})
    extra = {k: v for k, v in options.items() if k in ("stamp", "since", "remote")}
    outcome = api.recall_build(loaded, list(patterns), opts, **extra)
    if outcome is not None:
        return outcome, True, loaded
    return api.build(loaded, list(patterns), opts, **extra), False, loaded


def _statuses(outcome: Any) -> dict[str, str]:
    return {r.label: r.status for r in outcome.results}


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    targets = [{k: v for k, v in t.items() if k != "duration_s"} for t in report["targets"]]
    return {**report, "duration_s": None, "targets": targets}


def _memos(root: Path) -> list[Path]:
    return sorted((root / MEMOS).glob("*.build-*"))


@pytest.fixture
def built(workspace) -> Path:
    """A workspace built once, then built again with nothing to do (which remembers it)."""
    root = workspace()
    first, recalled, _ = _build(root)
    assert not recalled and set(_statuses(first).values()) == {"built"}
    assert _memos(root) == []                # a build that built something is not remembered
    second, recalled, _ = _build(root)
    assert not recalled and set(_statuses(second).values()) == {"cached"}
    assert len(_memos(root)) == 1
    return root


def test_a_repeated_no_op_build_is_recalled_without_reading_the_graph(built: Path) -> None:
    plain, _, _ = _build(built)
    outcome, recalled, loaded = _build(built)
    assert recalled
    assert "snapshot" not in loaded.__dict__             # neither manifests nor graph were read
    assert _comparable(outcome.report) == _comparable(plain.report)
    assert [r.descriptors for r in outcome.results] == [r.descriptors for r in plain.results]
    assert not outcome.failed and outcome.lint.errors == 0


def _first_blob(root: Path) -> Path:
    outcome, _, _ = _build(root)
    return Path(outcome.store.layout.blob_file(outcome.results[0].blobs[0]))


def _delete_blob(root: Path) -> None:
    _first_blob(root).unlink()


def _corrupt_blob(root: Path) -> None:
    blob = _first_blob(root)
    blob.chmod(0o644)
    with blob.open("ab") as fh:
        fh.write(b"rot")


def _delete_cache_entry(root: Path) -> None:
    next((root / ".dkb/cache/ac").glob("*.json")).unlink()


def _retag(root: Path) -> None:
    index = root / ".dkb/oci/index.json"
    index.write_bytes(index.read_bytes())
    os.utime(index, ns=(1, 1))


def _delete_history(root: Path) -> None:
    next(p for p in (root / ".dkb/cache/targets").glob("*.json") if p.name != "index.json").unlink()


@pytest.mark.parametrize("damage, rebuilt", [(_delete_blob, True), (_corrupt_blob, True), (_delete_cache_entry, True),
                                             (_retag, False), (_delete_history, False)])
def test_anything_the_answer_rests_on_changing_means_building(built: Path, damage: Any, rebuilt: bool) -> None:
    damage(built)
    outcome, recalled, _ = _build(built)
    assert not recalled
    assert ("built" in _statuses(outcome).values()) == rebuilt
    assert not outcome.failed


def test_an_old_memo_is_not_recalled(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buildmemo, "MAX_AGE_NS", 0)
    assert not _build(built)[1]


def test_a_changed_workspace_is_not_recalled(built: Path) -> None:
    (built / "pipelines/ingest/src/main.py").write_text("print('ingest v2')\n")
    outcome, recalled, _ = _build(built)
    assert not recalled
    assert _statuses(outcome) == {"//pipelines/ingest": "built", "//pipelines/publish": "cached"}


@pytest.mark.parametrize("variant", [{"patterns": ("//pipelines/ingest",)}, {"dry_run": True},
                                     {"image_backend": "buildah"}])
def test_other_patterns_and_options_are_remembered_apart(built: Path, variant: dict[str, Any]) -> None:
    outcome, recalled, _ = _build(built, **variant)
    assert not recalled
    again, recalled, _ = _build(built, **variant)
    assert recalled
    assert _comparable(again.report) == _comparable(outcome.report)
    if variant.get("dry_run"):
        assert set(_statuses(again).values()) == {"hit"}


@pytest.mark.parametrize("variant", [{"stamp": True}, {"since": "HEAD"}, {"remote": object()}])
def test_builds_that_depend_on_more_than_the_files_are_never_recalled(built: Path, variant: dict[str, Any]) -> None:
    loaded = api.load(built, deferred=True)
    assert api.recall_build(loaded, ["//..."], BuildOptions(), **variant) is None


def test_a_build_that_asks_the_host_for_an_image_builder_is_not_remembered(
        built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for memo in _memos(built):
        memo.unlink()
    real_plan = engine_build.plan

    def probing_plan(*args: Any, **kwargs: Any) -> list[Any]:
        return [dataclasses.replace(a, probes_host=True) for a in real_plan(*args, **kwargs)]
    monkeypatch.setattr(engine_build, "plan", probing_plan)
    outcome, recalled, _ = _build(built)
    assert not recalled and set(_statuses(outcome).values()) == {"cached"}
    assert _memos(built) == []


def test_a_damaged_memo_is_a_miss(built: Path) -> None:
    for memo in _memos(built):
        memo.write_bytes(b"not a pickle")
    assert not _build(built)[1]
    assert _build(built)[1]             # remembered again


def test_the_memo_goes_with_its_snapshot(built: Path) -> None:
    (built / "pipelines/ingest/src/main.py").write_text("print('ingest v2')\n")
    for _ in range(6):                  # more workspace states than are kept
        (built / "pipelines/publish/src/main.py").write_text(f"print({_})\n")
        _build(built)
        _build(built)
    memos = {p.name.split(".")[0] for p in _memos(built)}
    graphs = {p.name.split(".")[0] for p in (built / MEMOS).glob("*.graph")}
    assert memos <= graphs and len(graphs) <= 4

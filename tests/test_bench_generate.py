"""bench.generate: the synthetic workspace lints and builds clean, is deterministic, and is a real DAG."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from bench import generate as gen

N = 30


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.relative_to(root).parts
            and ".dkb" not in p.relative_to(root).parts}


def test_generated_workspace_lints_and_builds(tmp_path, dkb):
    root = tmp_path / "ws"
    gen.generate(root, N, seed=7)
    assert len(list((root / "pipelines").rglob("dk.yaml"))) == N
    assert gen.git(root, "rev-list", "--count", "HEAD").strip() == "1"
    lint = dkb("lint", "//...", cwd=root)
    assert lint.code == 0, lint
    build = dkb("build", "//...", cwd=root)
    assert build.code == 0, build
    assert gen.git(root, "status", "--porcelain").strip() == "", "build must not dirty the tree"


def test_same_seed_same_bytes(tmp_path):
    gen.generate(tmp_path / "a", N, seed=3, commit=False)
    gen.generate(tmp_path / "b", N, seed=3, commit=False)
    gen.generate(tmp_path / "c", N, seed=4, commit=False)
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    assert _hashes(tmp_path / "a") != _hashes(tmp_path / "c")


def test_dag_has_layers_fan_in_and_fan_out():
    p = gen.plan(N, seed=7)
    assert p.layers() >= 3
    assert len({t.layer for t in p.transforms}) >= 3
    assert max(len(t.inputs) for t in p.transforms) >= 2          # fan-in
    assert max(d.readers for d in p.datasets) >= 3                # fan-out
    producers = Counter(d.name for t in p.transforms for d in t.outputs)
    assert set(producers.values()) == {1}                         # exactly one producer per output
    for t in p.transforms:                                        # acyclic: reads only earlier layers
        assert all(d.layer < t.layer for d in t.inputs)
    assert {t.runtime for t in p.transforms} >= {"generic-python"}
    assert any(c.get("pii") for d in p.datasets for c in d.columns)
    # not a chain (some layer has several transforms), not a star (no single reader-of-everything)
    assert max(Counter(t.layer for t in p.transforms).values()) > 1
    assert max(d.readers for d in p.datasets) < N


def test_large_plan_mixes_runtimes():
    runtimes = Counter(t.runtime for t in gen.plan(1000, seed=0).transforms)
    assert set(runtimes) == {"generic-python", "dbt", "generic-go", "cloudquery"}
    assert runtimes["generic-python"] > 500


def test_fast_import_commit_equals_git_add_and_commit(tmp_path):
    """The fast path (one fast-import stream, git writes the work tree) makes the very commit that
    writing the files and `git add -A && git commit` made, so workspaces stay byte-identical."""
    fast = tmp_path / "fast"
    gen.generate(fast, N, seed=3)
    slow = tmp_path / "slow"
    gen.generate(slow, N, seed=3, commit=False)
    gen.git(slow, "init", "-q", "-b", "main")
    gen.git(slow, "add", "-A")
    gen.git(slow, "commit", "-q", "-m", f"synthetic workspace: {N} packages, seed 3")
    assert gen.git(fast, "rev-parse", "HEAD") == gen.git(slow, "rev-parse", "HEAD")
    assert _hashes(fast) == _hashes(slow)
    assert gen.git(fast, "status", "--porcelain") == ""

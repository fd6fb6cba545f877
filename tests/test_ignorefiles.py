"""`.dkbignore` (and `.gitignore` outside git): ignored files are not inputs, in keys or artifacts."""

from __future__ import annotations

from pathlib import Path

from dkbuild.api import compute_keys, load
from dkbuild.ignorefiles import ignored_paths
from dkbuild.sources import index_files
from tests.conftest import basic_files, git, write_tree


def ignored(files: dict[str, str]) -> set[str]:
    return ignored_paths(files, lambda p: files[p].encode())


def test_gitignore_semantics() -> None:
    files = {".dkbignore": "*.log\n/top.txt\nbuild/\n!keep.log\ndocs/**/*.md\n", "a.log": "", "x/b.log": "",
             "keep.log": "", "top.txt": "", "x/top.txt": "", "build/out": "", "x/build/out": "",
             "docs/a/b/c.md": "", "docs/readme.txt": "", "src/main.py": ""}
    assert ignored(files) == {"a.log", "x/b.log", "top.txt", "build/out", "x/build/out", "docs/a/b/c.md"}


def test_nested_ignore_files_override() -> None:
    files = {".dkbignore": "*.csv\n", "pkg/.dkbignore": "!seed.csv\ntmp/\n", "pkg/seed.csv": "", "pkg/big.csv": "",
             "other/seed.csv": "", "pkg/tmp/x": "", "tmp/y": ""}
    assert ignored(files) == {"pkg/big.csv", "other/seed.csv", "pkg/tmp/x"}


def test_ignored_files_are_not_key_inputs(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", {**basic_files(), "pipelines/ingest/.dkbignore": "scratch/\n"})
    before = compute_keys(load(root)).keys
    (root / "pipelines/ingest/scratch").mkdir()
    (root / "pipelines/ingest/scratch/notes.txt").write_text("local notes")
    assert compute_keys(load(root)).keys == before
    assert "pipelines/ingest/scratch/notes.txt" not in index_files(root).digests


def test_gitignore_outside_git_and_inside(tmp_path: Path) -> None:
    plain = write_tree(tmp_path / "plain", {**basic_files(), ".gitignore": "*.tmp\n", "pipelines/ingest/x.tmp": "1"})
    assert "pipelines/ingest/x.tmp" not in index_files(plain).digests
    repo = write_tree(tmp_path / "repo", {**basic_files(), ".gitignore": "*.tmp\n", "pipelines/ingest/x.tmp": "1"})
    git(repo, "init", "-q")
    assert "pipelines/ingest/x.tmp" not in index_files(repo).digests


def test_dkbignore_at_a_revision_matches_the_working_tree(tmp_path: Path) -> None:
    from dkbuild.gitrev import index_at_revision

    repo = write_tree(tmp_path / "repo", {**basic_files(), ".dkbignore": "*.bak\n", "pipelines/ingest/old.bak": "x"})
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    with index_at_revision(repo, "HEAD") as tree:
        assert tree.digests == index_files(repo).digests

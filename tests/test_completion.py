"""Shell completion: the scripts click generates, and label completion over the example workspace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from dkbuild.completion import complete_labels, label_candidates, package_dirs
from tests.conftest import EXAMPLE

PIPELINES = ["audience-export", "build-profiles", "clickstream-landing", "crm-sync", "customer-value", "enrich",
             "fraud-watch", "orders-replicate", "revenue-mart", "sessionize"]


def _ctx(directory: Path) -> click.Context:
    """A context as click builds it while completing: resilient parsing, so no callback ran."""
    root = click.Context(click.Command("dkb"), info_name="dkb")
    root.params["directory"] = str(directory)
    return click.Context(click.Command("build"), parent=root, info_name="build")


def _values(items: list[Any]) -> list[str]:
    return [item.value for item in items]


@pytest.mark.parametrize("shell, marker", [("bash", "_dkb_completion()"), ("zsh", "#compdef dkb"),
                                           ("fish", "function _dkb_completion")])
def test_completion_script(dkb: Any, shell: str, marker: str) -> None:
    result = dkb("completion", shell)
    assert result.code == 0, result
    assert marker in result.out and "_DKB_COMPLETE" in result.out


def test_bash_script_keeps_labels_whole(dkb: Any) -> None:
    assert "COMP_WORDBREAKS=${COMP_WORDBREAKS//:}" in dkb("completion", "bash").out


def test_package_dirs_fast_path() -> None:
    packages = package_dirs(EXAMPLE)
    assert "pipelines/enrich" in packages and "platform/stores/lake-raw" in packages
    assert all((EXAMPLE / p / "dk.yaml").is_file() for p in packages)


def test_complete_pipe_gives_pipeline_labels_and_recursive_pattern() -> None:
    got = _values(complete_labels(_ctx(EXAMPLE), None, "//pipe"))
    assert got == ["//pipelines/..."] + [f"//pipelines/{p}" for p in PIPELINES]


def test_complete_pipelines_en() -> None:
    assert _values(complete_labels(_ctx(EXAMPLE), None, "//pipelines/en")) == ["//pipelines/enrich"]


def test_complete_labels_match_the_graph() -> None:
    from dkbuild.api import load

    graph_labels = {n for n in load(EXAMPLE).graph.nodes if n.startswith("//pipelines/")}
    got = {c for c in label_candidates(EXAMPLE, "//pipelines/") if not c.endswith("...")}
    assert got == graph_labels


def test_complete_target_names_and_relative_names() -> None:
    got = label_candidates(EXAMPLE, "//pipelines/crm-sync:c")
    assert got == ["//pipelines/crm-sync:crm-customers", "//pipelines/crm-sync:crm-db",
                   "//pipelines/crm-sync:crm-sync", "//pipelines/crm-sync:customers"]
    assert _values(complete_labels(_ctx(EXAMPLE / "pipelines" / "crm-sync"), None, ":crm-s")) == [":crm-sync"]
    assert ":all" in label_candidates(EXAMPLE, ":", "pipelines/crm-sync")


def test_complete_recursive_and_subtracting_patterns() -> None:
    assert label_candidates(EXAMPLE, "//platform/st")[0] == "//platform/stores/..."
    assert label_candidates(EXAMPLE, "-//pipelines/en") == ["-//pipelines/enrich"]
    assert label_candidates(EXAMPLE, "//")[:2] == ["//...", "//datasets/..."]


def test_many_matches_complete_one_segment_at_a_time(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text("")
    for group in ("a", "b"):
        for i in range(30):
            (tmp_path / group / f"p{i:02}").mkdir(parents=True)
            (tmp_path / group / f"p{i:02}" / "dk.yaml").write_text("{}\n")
    assert label_candidates(tmp_path, "//") == ["//...", "//a/", "//b/"]
    assert len(label_candidates(tmp_path, "//a/")) == 31      # //a/... and its 30 packages


def test_complete_outside_a_workspace(tmp_path: Path) -> None:
    assert complete_labels(_ctx(tmp_path), None, "//") == []


def test_complete_honours_workspace_globs(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text('[workspace]\npackages = ["src/**"]\n')
    for pkg in ("src/a", "vendor/b"):
        (tmp_path / pkg).mkdir(parents=True)
        (tmp_path / pkg / "dk.yaml").write_text("{}\n")
    assert _values(complete_labels(_ctx(tmp_path), None, "//")) == ["//...", "//src/...", "//src/a"]


def test_bash_complete_through_the_real_cli() -> None:
    """The shell asks the real `dkb` (as bash's completion function does) and gets labels back."""
    env = {**os.environ, "_DKB_COMPLETE": "bash_complete", "COMP_WORDS": "dkb build //pipelines/en",
           "COMP_CWORD": "2"}
    proc = subprocess.run([sys.executable, "-m", "dkbuild"], cwd=EXAMPLE, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["plain,//pipelines/enrich"]

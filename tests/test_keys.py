"""Content keys: canonical, independent of formatting, comments, mtimes and the checkout path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from dkbuild.api import compute_keys, load
from tests.conftest import basic_files, dataset, dump, git, write_tree


def keys_of(root: Path) -> dict[str, str]:
    return compute_keys(load(root)).keys


def test_same_tree_same_keys_in_two_directories(tmp_path: Path) -> None:
    a = write_tree(tmp_path / "one" / "ws", basic_files())
    b = write_tree(tmp_path / "two" / "deeper" / "ws", basic_files())
    os.utime(b / "pipelines/ingest/src/main.py", (1, 1))   # mtimes never matter
    assert keys_of(a) == keys_of(b)
    assert len(set(keys_of(a).values())) == len(keys_of(a))


def test_same_keys_inside_and_across_git_clones(tmp_path: Path) -> None:
    a = write_tree(tmp_path / "a", basic_files())
    git(a, "init", "-q")
    git(a, "add", "-A")
    git(a, "commit", "-qm", "init")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(a), str(clone))
    assert keys_of(a) == keys_of(clone)
    # An untracked file in a package is an input; an ignored one is not.
    (a / ".gitignore").write_text("*.log\n")
    before = keys_of(a)["//pipelines/ingest"]
    (a / "pipelines/ingest/debug.log").write_text("noise")
    assert keys_of(a)["//pipelines/ingest"] == before
    (a / "pipelines/ingest/src/extra.py").write_text("x = 1\n")
    assert keys_of(a)["//pipelines/ingest"] != before


def test_comments_and_key_order_do_not_change_keys(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", basic_files())
    before = keys_of(root)
    path = root / "datasets/raw/dk.yaml"
    data = yaml.safe_load(path.read_text())
    reordered = "# a comment that changes nothing\n" + yaml.safe_dump(data, sort_keys=True, default_flow_style=True)
    path.write_text(reordered)
    assert keys_of(root) == before


def test_a_change_propagates_to_dependents_only(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", basic_files())
    before = keys_of(root)
    path = root / "datasets/report/dk.yaml"
    data = yaml.safe_load(path.read_text())
    data["spec"]["schema"].append({"name": "total", "type": "float"})
    path.write_text(yaml.safe_dump(data))
    after = keys_of(root)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"//datasets/report", "//pipelines/publish"}


def test_store_change_reaches_datasets_and_transforms(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", basic_files())
    before = keys_of(root)
    path = root / "platform/stores/lake/dk.yaml"
    path.write_text(path.read_text().replace("db.internal", "db2.internal"))
    after = keys_of(root)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"//platform/stores/lake", "//datasets/raw", "//datasets/clean", "//datasets/report",
                       "//pipelines/ingest", "//pipelines/publish"}


def test_source_file_change_changes_only_its_package(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", basic_files())
    before = keys_of(root)
    (root / "pipelines/publish/src/main.py").write_text("print('changed')\n")
    after = keys_of(root)
    assert {k for k in before if before[k] != after[k]} == {"//pipelines/publish"}


def test_workspace_rule_version_and_config_are_key_components(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", basic_files())
    before = keys_of(root)
    (root / "workspace.toml").write_text('[workspace]\nname = "test"\n[registry]\nurl = "oci://r.example/x"\n')
    after = keys_of(root)
    assert {k for k in before if before[k] != after[k]} == {"//pipelines/ingest", "//pipelines/publish"}
    rules = root / "rules"
    rules.mkdir()
    (rules / "python_v2.py").write_text(
        "from dkbuild.engine.rules import Rule\n"
        "class P(Rule):\n    name = 'generic-python'\n    version = '2-local'\nRULE = P()\n")
    overridden = keys_of(root)
    assert overridden["//pipelines/ingest"] != after["//pipelines/ingest"]
    comps = compute_keys(load(root)).components["//pipelines/ingest"]
    assert comps.rule["version"] == "2-local"


def test_keys_have_no_absolute_paths(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", basic_files())
    comps = compute_keys(load(root)).components
    import json
    blob = json.dumps({k: c.to_json() for k, c in comps.items()})
    assert str(tmp_path) not in blob


def test_moved_workspace_keeps_keys(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", basic_files())
    before = keys_of(root)
    moved = tmp_path / "elsewhere"
    shutil.move(str(root), moved)
    assert keys_of(moved) == before


def test_keys_from_previous_keys_equal_keys_from_scratch(tmp_path: Path) -> None:
    """compute_keys(previous=...) re-keys only what changed, and must agree with a full computation."""
    from dkbuild.engine.rules import load_rules
    from dkbuild.graph import keys as graph_keys
    from dkbuild.sources import index_files

    root = write_tree(tmp_path / "ws", basic_files())
    loaded = load(root)
    config = loaded.workspace.config
    rule_for = load_rules(loaded.workspace).for_node(loaded.workspace)
    previous = graph_keys.compute_keys(loaded.graph, loaded.files, config, rule_for)
    assert graph_keys.compute_keys(loaded.graph, index_files(root), config, rule_for, previous) is previous
    edits = [("pipelines/ingest/src/main.py", {"//pipelines/ingest"}),
             # A file in a dataset's package changes the dataset, so the transforms that reference it.
             ("datasets/raw/notes.md", {"//datasets/raw", "//pipelines/ingest"}),
             ("datasets/clean/notes.md", {"//datasets/clean", "//pipelines/ingest", "//pipelines/publish"})]
    for path, expected in edits:
        (root / path).write_text("changed\n")
        files = index_files(root)
        incremental = graph_keys.compute_keys(loaded.graph, files, config, rule_for, previous)
        full = graph_keys.compute_keys(loaded.graph, files, config, rule_for)
        assert incremental.keys == full.keys
        assert {n: c.to_json() for n, c in incremental.components.items()} == \
               {n: c.to_json() for n, c in full.components.items()}
        assert {n for n in full.keys if full.keys[n] != previous.keys[n]} == expected, path
        previous = full
    other_graph = load(write_tree(tmp_path / "other", {**basic_files(), "datasets/extra/dk.yaml": dataset("extra")})).graph
    assert other_graph.nodes.keys() != loaded.graph.nodes.keys()
    assert graph_keys.compute_keys(other_graph, index_files(root), config, rule_for, previous).keys \
        == graph_keys.compute_keys(other_graph, index_files(root), config, rule_for).keys


def test_keys_after_a_manifest_change_start_from_the_previous_graph_and_equal_keys_from_scratch(tmp_path: Path) -> None:
    """After a manifest edit the graph is new, but targets whose manifest object and files are the
    same keep their components (and keys, unless what they reference changed)."""
    from dkbuild.engine.rules import load_rules
    from dkbuild.graph import keys as graph_keys

    root = write_tree(tmp_path / "ws", basic_files())
    compute_keys(load(root))                          # stores the first state's keys
    report = root / "datasets/report/dk.yaml"
    edits = [
        (lambda: report.write_text(dump(dataset("report", columns=[{"name": "total", "type": "float"}]))),
         {"//datasets/report", "//pipelines/publish"}),
        (lambda: (root / "datasets/extra/dk.yaml").parent.mkdir() or
         (root / "datasets/extra/dk.yaml").write_text(dump(dataset("extra"))), {"//datasets/extra"}),
        (lambda: (root / "datasets/raw/dk.yaml").write_text(dump(dataset("raw")) + "# a comment\n"), set()),
        (lambda: (root / "datasets/extra/dk.yaml").unlink(), set()),
        # Unchanged manifests whose references now lead outside the workspace (an external node).
        (lambda: (root / "datasets/clean/dk.yaml").unlink(),
         {"//pipelines/ingest", "//pipelines/publish", "@external//dataset:clean"}),
    ]
    for edit, expected in edits:
        before = compute_keys(load(root))
        edit()
        loaded = load(root)
        base = loaded.snapshot.derived_from
        assert base is not None and base.graph is not loaded.graph
        rules = load_rules(loaded.workspace)
        rule_for = rules.for_node(loaded.workspace)
        previous = base.keys(rules.fingerprint(loaded.workspace))
        incremental = graph_keys.compute_keys(loaded.graph, loaded.files, loaded.workspace, rule_for,
                                              previous, base.graph)
        full = graph_keys.compute_keys(loaded.graph, loaded.files, loaded.workspace, rule_for)
        assert incremental.keys == full.keys
        assert {n: c.to_json() for n, c in incremental.components.items()} == \
               {n: c.to_json() for n, c in full.components.items()}
        changed = {n for n in full.keys if full.keys[n] != before.keys.get(n)}
        assert changed == expected
        kept = [n for n in incremental.components if incremental.components[n] is previous.components.get(n)]
        assert "//platform/stores/lake" in kept                    # untouched: not keyed again

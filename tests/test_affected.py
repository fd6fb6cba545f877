"""`dkb affected`: the key diff between the working tree and a git revision, on real git repositories.

The central property: keys computed at a revision straight from git objects equal the keys of a real
checkout of that revision, so `affected` is exactly the set of targets whose checkout keys differ.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dkbuild.affected_api import affected_targets, load_at_revision
from dkbuild.api import compute_keys, load
from dkbuild.diagnostics import DkbError
from dkbuild.gitrev import BlobReader, index_at_revision, merge_base
from dkbuild.graph.affected import affected, diff_fields
from dkbuild.graph.keys import KeyComponents, Keys
from dkbuild.sources import index_files
from tests.conftest import Result, basic_files, dataset, git, store, transform, write_tree

def dkb_affected(cwd: Path, *args: str) -> Result:
    proc = subprocess.run([sys.executable, "-m", "dkbuild", "affected", *args], cwd=cwd, capture_output=True,
                          check=False, text=True, timeout=120)
    return Result(proc)


def commit_all(root: Path, message: str = "change") -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message, "--allow-empty")
    return git(root, "rev-parse", "HEAD").strip()


def repo(tmp_path: Path, files: dict[str, Any] | None = None, *, base: bool = True, where: str = "ws") -> Path:
    """A git repository at tmp_path/repo holding a workspace at `where`, committed on `main`."""
    top = tmp_path / "repo"
    root = top / where
    tree = {**(basic_files() if base else {"workspace.toml": ""}), **(files or {})}
    write_tree(root, tree)
    git(top, "init", "-q", "-b", "main")
    commit_all(top, "init")
    return root


def labels(root: Path, since: str = "HEAD", dependents: str = "none", patterns: list[str] | None = None) -> list[str]:
    return affected_targets(load(root), since, dependents, patterns).labels


def edit_yaml(path: Path, change: Any) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    change(docs[0])
    path.write_text("---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs))


# --- what counts as a change ---------------------------------------------------------------------

def test_nothing_changed_nothing_affected(tmp_path: Path) -> None:
    root = repo(tmp_path)
    assert labels(root) == []


def test_formatting_and_comments_affect_nothing(tmp_path: Path) -> None:
    root = repo(tmp_path)
    path = root / "datasets/raw/dk.yaml"
    data = yaml.safe_load(path.read_text())
    path.write_text("# reformatted: flow style, sorted keys, a comment\n"
                    + yaml.safe_dump(data, sort_keys=True, default_flow_style=True, indent=4))
    assert labels(root) == []
    commit_all(root.parent)
    assert labels(root, "HEAD~1") == []


def test_source_edit_affects_only_its_package(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "pipelines/publish/src/main.py").write_text("print('changed')\n")
    result = affected_targets(load(root), "HEAD")
    assert result.labels == ["//pipelines/publish"]
    assert [r.to_json() for r in result.targets["//pipelines/publish"].reasons] == [
        {"component": "file", "detail": {"path": "pipelines/publish/src/main.py", "change": "modified"}}]


def test_dataset_schema_change_reaches_the_transforms_that_reference_it(tmp_path: Path) -> None:
    root = repo(tmp_path)
    edit_yaml(root / "datasets/clean/dk.yaml", lambda d: d["spec"]["schema"][0].update(type="string"))
    expected = ["//datasets/clean", "//pipelines/ingest", "//pipelines/publish"]
    # Keys fold in referenced keys, so the referencing transforms change with no --dependents at all.
    assert labels(root) == expected
    assert labels(root, dependents="direct") == expected
    result = affected_targets(load(root), "HEAD", "direct")
    assert [r.to_json() for r in result.targets["//datasets/clean"].reasons] == [
        {"component": "manifest", "detail": {"field": "spec.schema[0].type", "change": "modified"}}]
    reasons = [r.to_json() for r in result.targets["//pipelines/publish"].reasons]
    assert reasons == [{"component": "reference", "detail": {
        "label": "//datasets/clean", "kind": "DataSet", "name": "clean", "via": "reads",
        "field": "spec.inputs[0].dataset", "change": "modified"}}]


def test_store_change_with_transitive_dependents(tmp_path: Path) -> None:
    root = repo(tmp_path, {"datasets/other/dk.yaml": dataset("other", store="elsewhere"),
                           "platform/stores/elsewhere/dk.yaml": store("elsewhere")})
    path = root / "platform/stores/lake/dk.yaml"
    path.write_text(path.read_text().replace("db.internal", "db2.internal"))
    everything_on_lake = ["//datasets/clean", "//datasets/raw", "//datasets/report", "//pipelines/ingest",
                          "//pipelines/publish", "//platform/stores/lake"]
    assert labels(root, dependents="none") == everything_on_lake
    assert labels(root, dependents="transitive") == everything_on_lake
    result = affected_targets(load(root), "HEAD", "transitive")
    assert [r.to_json() for r in result.targets["//platform/stores/lake"].reasons] == [
        {"component": "manifest", "detail": {"field": "spec.connection.host", "change": "modified"}}]
    # No value is ever shown: a connection may hold secrets.
    assert "db2.internal" not in str(result.to_json())


def test_uncommitted_and_untracked_files_count(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / ".gitignore").write_text("*.log\n")
    commit_all(root.parent)
    (root / "pipelines/ingest/notes.log").write_text("ignored: never an input\n")
    assert labels(root) == []
    (root / "pipelines/ingest/src/helper.py").write_text("X = 1\n")      # untracked
    assert labels(root) == ["//pipelines/ingest"]
    git(root, "add", "pipelines/ingest/src/helper.py")                    # staged, not committed
    (root / "pipelines/publish/src/main.py").write_text("print(2)\n")    # modified, not staged
    result = affected_targets(load(root), "HEAD")
    assert result.labels == ["//pipelines/ingest", "//pipelines/publish"]
    assert result.targets["//pipelines/ingest"].reasons[0].detail == {
        "path": "pipelines/ingest/src/helper.py", "change": "added"}


def test_changes_landed_on_ref_after_the_branch_point_do_not_count(tmp_path: Path) -> None:
    root = repo(tmp_path)
    top = root.parent
    branch_point = git(top, "rev-parse", "HEAD").strip()
    git(top, "checkout", "-qb", "feature")
    (root / "pipelines/ingest/src/main.py").write_text("print('feature')\n")
    commit_all(top, "feature work")
    git(top, "checkout", "-q", "main")
    (root / "pipelines/publish/src/main.py").write_text("print('main moved on')\n")
    commit_all(top, "main work")
    git(top, "checkout", "-q", "feature")
    result = affected_targets(load(root), "main")
    assert result.merge_base == branch_point
    assert result.labels == ["//pipelines/ingest"]


def test_workspace_rule_version_change_affects_every_transform_of_that_runtime(tmp_path: Path) -> None:
    rule = ("from dkbuild.engine.rules import Rule\n\n"
            "class Python(Rule):\n"
            "    name = 'generic-python'\n"
            "    version = '{v}'\n"
            "    config_sections = ('registry',)\n\n"
            "RULE = Python()\n")
    root = repo(tmp_path, {
        "rules/python.py": rule.format(v="1"),
        "datasets/modelled/dk.yaml": dataset("modelled"),
        "pipelines/model/dk.yaml": transform("model", ["clean"], ["modelled"], runtime="dbt"),
    })
    (root / "rules/python.py").write_text(rule.format(v="2"))
    result = affected_targets(load(root), "HEAD")
    assert result.labels == ["//pipelines/ingest", "//pipelines/publish"]
    [reason] = [r.to_json() for r in result.targets["//pipelines/ingest"].reasons]
    assert reason["component"] == "rule" and reason["detail"]["rule"] == "generic-python"
    assert reason["detail"]["changes"][0] == "version 1 -> 2"
    assert reason["detail"]["changes"][1].startswith("code ")          # the source changed too


def test_workspace_rule_that_breaks_at_the_revision_is_named(tmp_path: Path) -> None:
    root = repo(tmp_path, {"rules/broken.py": "raise RuntimeError('boom')\n"})
    (root / "rules/broken.py").unlink()
    with pytest.raises(DkbError) as info:
        affected_targets(load(root), "HEAD")
    assert info.value.diagnostics[0].code == "E130"
    assert info.value.diagnostics[0].file == "rules/broken.py"


def test_workspace_toml_section_change(tmp_path: Path) -> None:
    root = repo(tmp_path, {"workspace.toml": '[workspace]\nname = "test"\n\n[registry]\nurl = "r1.test"\n'})
    (root / "workspace.toml").write_text('[workspace]\nname = "test"\n\n[registry]\nurl = "r2.test"\n\n'
                                         '[lineage]\nnamespace = "other"\n')
    result = affected_targets(load(root), "HEAD")
    # generic-python reads [registry]; nothing reads [lineage]; datasets read no config.
    assert result.labels == ["//pipelines/ingest", "//pipelines/publish"]
    assert [r.to_json() for r in result.targets["//pipelines/publish"].reasons] == [
        {"component": "config", "detail": {"section": "registry", "fields": ["registry.url"], "change": "modified"}}]


def test_rule_settings_change_is_a_rule_reason(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "workspace.toml").write_text('[workspace]\nname = "test"\n\n[rules.generic-python]\n'
                                         'base_image = "python:3.12"\n')
    result = affected_targets(load(root), "HEAD")
    assert result.labels == ["//pipelines/ingest", "//pipelines/publish"]
    assert result.targets["//pipelines/ingest"].reasons[0].detail == {
        "rule": "generic-python", "changes": ["settings.base_image"]}


def test_moved_package_is_matched_by_identity(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "pipelines/reporting").mkdir()
    git(root, "mv", "pipelines/publish", "pipelines/reporting/publish")
    result = affected_targets(load(root), "HEAD")
    assert result.labels == ["//pipelines/reporting/publish"]
    assert result.deleted == ()
    assert [r.to_json() for r in result.targets["//pipelines/reporting/publish"].reasons] == [
        {"component": "moved", "detail": {"from": "//pipelines/publish", "to": "//pipelines/reporting/publish"}}]


def test_deleted_target_is_reported_apart(tmp_path: Path) -> None:
    root = repo(tmp_path, {"datasets/unused/dk.yaml": dataset("unused")})
    git(root, "rm", "-rq", "datasets/unused", "datasets/report")
    result = affected_targets(load(root), "HEAD")
    assert result.deleted == ("//datasets/report", "//datasets/unused")
    assert result.labels == ["//pipelines/publish"]      # its output dataset no longer resolves
    assert result.targets["//pipelines/publish"].reasons[0].detail["change"] == "removed"
    scoped = affected_targets(load(root), "HEAD", patterns=["//datasets/..."])
    assert scoped.labels == [] and scoped.deleted == ("//datasets/report", "//datasets/unused")
    # A pattern naming only a deleted package is fine: it existed at the revision.
    assert affected_targets(load(root), "HEAD", patterns=["//datasets/unused"]).deleted == ("//datasets/unused",)


def test_new_target(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write_tree(root, {"datasets/fresh/dk.yaml": dataset("fresh")})
    result = affected_targets(load(root), "HEAD")
    assert result.labels == ["//datasets/fresh"]
    assert result.targets["//datasets/fresh"].reasons[0].component == "new"


def test_a_workspace_that_did_not_exist_at_the_revision_is_all_new(tmp_path: Path) -> None:
    top = write_tree(tmp_path / "repo", {"README.md": "before the workspace\n"})
    git(top, "init", "-q", "-b", "main")
    commit_all(top, "init")
    root = write_tree(top / "ws", basic_files())
    commit_all(top, "add the workspace")
    result = affected_targets(load(root), "HEAD~1")
    assert result.labels == sorted(load(root).graph.nodes)
    assert {r.component for t in result.targets.values() for r in t.reasons} == {"new"}


def test_workspace_in_a_subdirectory_of_the_repository(tmp_path: Path) -> None:
    root = repo(tmp_path, where="teams/data/ws")
    write_tree(root.parents[2], {"README.md": "outside the workspace\n", "teams/other/x.py": "x = 1\n"})
    commit_all(root.parents[2])
    assert load_at_revision(root, "HEAD").keys.keys == compute_keys(load(root)).keys
    (root / "pipelines/ingest/src/main.py").write_text("print(3)\n")
    (root.parents[2] / "README.md").write_text("changed outside\n")
    assert labels(root) == ["//pipelines/ingest"]
    r = dkb_affected(root / "pipelines", "--since", "HEAD", "//...")   # from a package subdirectory
    assert r.code == 0, r
    assert r.out == "//pipelines/ingest\n"


def test_reusing_parsed_manifests_gives_the_same_keys(tmp_path: Path) -> None:
    root = repo(tmp_path)
    edit_yaml(root / "datasets/raw/dk.yaml", lambda d: d["spec"]["schema"].append({"name": "x", "type": "string"}))
    first = commit_all(root.parent)
    (root / "datasets/raw/dk.yaml").write_text("kind: [broken\n")
    loaded = load(root)
    with_reuse = load_at_revision(root, first, reuse=loaded)
    without = load_at_revision(root, first)
    assert with_reuse.keys.keys == without.keys.keys


# --- the CLI ------------------------------------------------------------------------------------

def test_cli_labels_explain_and_json(tmp_path: Path) -> None:
    root = repo(tmp_path)
    edit_yaml(root / "datasets/report/dk.yaml",
              lambda d: d["spec"]["schema"].append({"name": "total", "type": "float", "pii": False}))
    (root / "pipelines/ingest/src/main.py").write_text("print('x')\n")
    r = dkb_affected(root, "--since", "HEAD")
    assert r.code == 0, r
    assert r.out.splitlines() == ["//datasets/report", "//pipelines/ingest", "//pipelines/publish"]
    r = dkb_affected(root, "--since", "HEAD", "--explain", "//...", "-//pipelines/ingest")
    assert r.code == 0, r
    assert r.out == ("//datasets/report\n"
                     "  manifest field added: spec.schema[1]\n"
                     "//pipelines/publish\n"
                     "  referenced target changed: //datasets/report (spec.outputs[0].dataset)\n")
    r = dkb_affected(root, "--since", "HEAD", "--output", "json", "--dependents", "direct")
    assert r.code == 0, r
    doc = r.json()
    head = git(root, "rev-parse", "HEAD").strip()
    assert doc["since"] == "HEAD" and doc["merge_base"] == head and doc["dependents"] == "direct"
    assert doc["deleted"] == []
    assert [t["label"] for t in doc["targets"]] == ["//datasets/report", "//pipelines/ingest", "//pipelines/publish"]
    assert doc["targets"][0] == {"label": "//datasets/report", "kind": "DataSet", "reasons": [
        {"component": "manifest", "detail": {"field": "spec.schema[1]", "change": "added"}}]}


def test_cli_field_paths_in_explain(tmp_path: Path) -> None:
    root = repo(tmp_path, {"datasets/users/dk.yaml": dataset("users", columns=[
        {"name": "id", "type": "integer"}, {"name": "email", "type": "string"},
        {"name": "age", "type": "integer"}])})

    def change(d: dict[str, Any]) -> None:
        d["spec"]["schema"][0]["type"] = "string"
        d["spec"]["schema"][2]["pii"] = True
    edit_yaml(root / "datasets/users/dk.yaml", change)
    r = dkb_affected(root, "--since", "HEAD", "--explain", "//datasets/users")
    assert r.code == 0, r
    assert r.out == ("//datasets/users\n"
                     "  manifest field changed: spec.schema[0].type\n"
                     "  manifest field added: spec.schema[2].pii\n")


def test_cli_reports_deleted_on_stderr_and_json(tmp_path: Path) -> None:
    root = repo(tmp_path, {"datasets/unused/dk.yaml": dataset("unused")})
    git(root, "rm", "-rq", "datasets/unused")
    r = dkb_affected(root, "--since", "HEAD")
    assert r.code == 0 and r.out == "" and "//datasets/unused" in r.err, r
    assert dkb_affected(root, "--since", "HEAD", "-o", "json").json()["deleted"] == ["//datasets/unused"]


def test_unknown_ref_is_exit_2_with_a_fetch_hint(tmp_path: Path) -> None:
    root = repo(tmp_path)
    r = dkb_affected(root, "--since", "origin/nope")
    assert r.code == 2, r
    assert "unknown git revision 'origin/nope'" in r.err and "git fetch origin nope" in r.err
    r = dkb_affected(root, "--since", "origin/nope", "-o", "json")
    assert r.code == 2 and r.json()["errors"][0]["code"] == "E151"


def test_shallow_clone_is_exit_2(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "pipelines/ingest/src/main.py").write_text("print(9)\n")
    commit_all(root.parent)
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{root.parent}", str(clone))
    r = dkb_affected(clone / "ws", "--since", "HEAD~1")
    assert r.code == 2, r
    assert "shallow" in r.err and "fetch-depth: 0" in r.err and "--unshallow" in r.err
    # Even a ref that resolves is refused: the history behind it cannot be trusted to be there.
    assert dkb_affected(clone / "ws", "--since", "HEAD").code == 2


def test_no_merge_base_is_exit_2(tmp_path: Path) -> None:
    root = repo(tmp_path)
    other = write_tree(tmp_path / "other", {"workspace.toml": ""})
    git(other, "init", "-q", "-b", "main")
    commit_all(other, "unrelated")
    git(root.parent, "fetch", "-q", str(other), "main:unrelated")
    r = dkb_affected(root, "--since", "unrelated")
    assert r.code == 2, r
    assert "no common ancestor" in r.err


def test_outside_git_is_exit_2(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "plain", basic_files())
    r = dkb_affected(root, "--since", "HEAD")
    assert r.code == 2, r
    assert "not inside" in r.err


def test_bad_pattern_and_bad_dependents_are_exit_2(tmp_path: Path) -> None:
    root = repo(tmp_path)
    assert dkb_affected(root, "--since", "HEAD", "//nowhere/...").code == 2
    assert dkb_affected(root, "--since", "HEAD", "--dependents", "some").code == 2
    assert dkb_affected(root).code == 2          # --since is required


def test_invalid_workspace_toml_at_the_revision_names_the_revision(tmp_path: Path) -> None:
    root = repo(tmp_path, {"workspace.toml": "[workspace\n"})
    (root / "workspace.toml").write_text("")
    r = dkb_affected(root, "--since", "HEAD")
    assert r.code == 2, r
    assert "workspace.toml (at " in r.err and "invalid TOML" in r.err


# --- reading a revision -------------------------------------------------------------------------

def test_revision_index_equals_the_checkout_index(tmp_path: Path) -> None:
    """Symlinks, executables, skipped directories and submodule-free trees read the same from git."""
    root = repo(tmp_path, {
        "pipelines/ingest/run.sh": "#!/bin/sh\n",
        "shared/common.py": "C = 1\n",
        "node_modules/x/y.js": "skipped\n",
    })
    (root / "pipelines/ingest/run.sh").chmod(0o755)
    (root / "pipelines/ingest/src/common.py").symlink_to("../../../shared/common.py")
    (root / "pipelines/ingest/src/dirlink").symlink_to("../../../shared")
    (root / "pipelines/ingest/src/chain.py").symlink_to("common.py")
    (root / "pipelines/ingest/src/dangling.py").symlink_to("nothing-here.py")
    (root / "pipelines/ingest/src/escape.txt").symlink_to("../../../../outside.txt")
    (root / "pipelines/ingest/src/via_dir.py").symlink_to("dirlink/common.py")
    (tmp_path / "repo" / "outside.txt").write_text("outside the workspace\n")
    commit_all(root.parent)
    disk = index_files(root)
    with index_at_revision(root, "HEAD") as tree:
        assert tree.digests == disk.digests
        assert tree.escaping_links == disk.escaping_links == ("pipelines/ingest/src/escape.txt",)
        assert tree.read("pipelines/ingest/src/chain.py") == b"C = 1\n"
        assert tree.size("pipelines/ingest/src/via_dir.py") == 6


def test_one_cat_file_process_serves_many_large_reads(tmp_path: Path) -> None:
    """Requests and replies far larger than a pipe buffer must not deadlock."""
    files = {f"blobs/f{i}.txt": f"{i}\n" * 5000 for i in range(60)}
    root = repo(tmp_path, files, base=False)
    with index_at_revision(root, "HEAD") as tree:
        paths = sorted(files)
        tree.prefetch(paths)
        assert all(tree.read(p) == files[p].encode() for p in paths)
        reader = tree.reader
        assert isinstance(reader, BlobReader)
        process = reader._proc
        assert tree.read(paths[0]) == files[paths[0]].encode() and reader._proc is process
    reader2 = BlobReader(root.parent)
    blobs = [git(root, "rev-parse", f"HEAD:ws/{p}").strip() for p in paths]
    assert len(reader2.read_many(blobs * 20)) == len(paths)
    # A missing object among many large ones is an error, not a hang, and the reader still works.
    with pytest.raises(DkbError) as info:
        reader2.read_many(blobs[:30] + ["0" * 40] + blobs[30:])
    assert info.value.diagnostics[0].code == "E155" and "missing" in info.value.diagnostics[0].message
    assert reader2.read(blobs[0]) == files[paths[0]].encode()
    reader2.close()


def test_merge_base_errors_are_diagnostics(tmp_path: Path) -> None:
    root = repo(tmp_path)
    with pytest.raises(DkbError) as info:
        merge_base(root, "--output=/tmp/x")
    assert info.value.diagnostics[0].code == "E151"
    assert merge_base(root, "main").merge_base == git(root, "rev-parse", "HEAD").strip()


# --- the pure diff ------------------------------------------------------------------------------

def test_diff_fields_matches_named_items_and_types() -> None:
    old = {"schema": [{"name": "a", "type": "int"}, {"name": "b", "type": "int"}], "n": 1, "gone": 1}
    new = {"schema": [{"name": "z", "type": "int"}, {"name": "a", "type": "int"}, {"name": "b", "type": "str"}],
           "n": 1.0, "added": True}
    assert diff_fields(old, new) == [
        (("added",), "added"), (("gone",), "removed"), (("n",), "modified"),
        (("schema", 0), "added"), (("schema", 2, "type"), "modified")]
    assert diff_fields([1, 2], [2, 1]) == [((0,), "modified"), ((1,), "modified")]
    assert diff_fields([{"name": "a"}, {"name": "b"}], [{"name": "b"}, {"name": "a"}]) == [((), "reordered")]


def test_dependents_follow_reference_edges_where_keys_do_not_propagate(tmp_path: Path) -> None:
    """With real keys a referencing target's key changes too; hand-made keys show the traversal."""
    root = write_tree(tmp_path / "ws", basic_files())
    loaded = load(root)
    graph = loaded.graph
    comp = KeyComponents("x", {}, {}, [], None, {})
    base = Keys({n: "same" for n in graph.nodes}, {n: comp for n in graph.nodes})
    head = Keys({**base.keys, "//platform/stores/lake": "different"}, base.components)
    assert affected(base, head, graph, graph, "none").labels == ["//platform/stores/lake"]
    direct = affected(base, head, graph, graph, "direct")
    assert direct.labels == ["//datasets/clean", "//datasets/raw", "//datasets/report", "//platform/stores/lake"]
    assert direct.targets["//datasets/raw"].reasons[0].to_json() == {"component": "dependent", "detail": {
        "of": "//platform/stores/lake", "via": "store", "field": "spec.store"}}
    transitive = affected(base, head, graph, graph, "transitive")
    assert transitive.labels == direct.labels[:3] + ["//pipelines/ingest", "//pipelines/publish",
                                                     "//platform/stores/lake"]
    assert transitive.targets["//pipelines/publish"].reasons[0].describe().startswith("dependent of //datasets/")


# --- the property: revision keys are checkout keys, and affected is their diff -------------------

EDITS = st.lists(st.tuples(st.sampled_from(["source", "column", "reformat", "add_file", "store"]),
                           st.integers(0, 50), st.integers(0, 50)), min_size=0, max_size=4)


def _generated(n_pipelines: int, n_stores: int) -> dict[str, Any]:
    files: dict[str, Any] = {"workspace.toml": '[workspace]\nname = "gen"\n',
                             "platform/connectors/postgres/dk.yaml": {
                                 "apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": "Connector",
                                 "metadata": {"name": "postgres"},
                                 "spec": {"type": "postgres", "capabilities": ["source", "destination"]}}}
    for s in range(n_stores):
        files[f"platform/stores/s{s}/dk.yaml"] = store(f"s{s}")
    for p in range(n_pipelines):
        files[f"datasets/d{p}/dk.yaml"] = dataset(f"d{p}", store=f"s{p % n_stores}",
                                                  columns=[{"name": "id", "type": "integer"},
                                                           {"name": "v", "type": "string"}])
        upstream = [f"d{p - 1}"] if p else [f"d{p}"]
        files[f"pipelines/p{p}/dk.yaml"] = transform(f"p{p}", upstream, [f"d{p}"])
        files[f"pipelines/p{p}/src/main.py"] = f"print({p})\n"
    return files


def _apply(root: Path, edit: tuple[str, int, int], n_pipelines: int, n_stores: int) -> None:
    what, a, b = edit
    p, s = a % n_pipelines, a % n_stores
    if what == "source":
        path = root / f"pipelines/p{p}/src/main.py"
        path.write_text(path.read_text() + f"# edit {b}\n")
    elif what == "column":
        edit_yaml(root / f"datasets/d{p}/dk.yaml",
                  lambda d: d["spec"]["schema"][b % 2].update(type=["integer", "string", "float"][b % 3]))
    elif what == "reformat":
        path = root / f"datasets/d{p}/dk.yaml"
        data = yaml.safe_load(path.read_text())
        path.write_text(f"# reformatted {b}\n" + yaml.safe_dump(data, sort_keys=bool(b % 2),
                                                                  default_flow_style=bool(b % 3 == 0)))
    elif what == "add_file":
        (root / f"pipelines/p{p}/src/extra_{b}.py").write_text(f"E = {b}\n")
    elif what == "store":
        edit_yaml(root / f"platform/stores/s{s}/dk.yaml",
                  lambda d: d["spec"]["connection"].update(port=5432 + b))


def _checkout_keys(top: Path, commit: str, where: str, into: Path) -> dict[str, str]:
    git(top, "worktree", "add", "-q", "--detach", str(into), commit)
    try:
        return compute_keys(load(into / where)).keys
    finally:
        git(top, "worktree", "remove", "--force", str(into))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_pipelines=st.integers(1, 4), n_stores=st.integers(1, 2), edits=EDITS, nested=st.booleans())
def test_affected_is_exactly_the_checkout_key_diff(n_pipelines: int, n_stores: int,
                                                   edits: list[tuple[str, int, int]], nested: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp) / "repo"
        where = "sub/ws" if nested else "."
        root = write_tree(top / where, _generated(n_pipelines, n_stores))
        git(top, "init", "-q", "-b", "main")
        base_commit = commit_all(top, "base")
        for edit in edits:
            _apply(root, edit, n_pipelines, n_stores)
        # Uncommitted edits first: the working tree against the base.
        uncommitted = affected_targets(load(root), "HEAD").labels
        head_commit = commit_all(top, "edits")
        base_keys = _checkout_keys(top, base_commit, where, Path(tmp) / "base")
        head_keys = _checkout_keys(top, head_commit, where, Path(tmp) / "head")
        # Keys read from git objects are the keys of a real checkout, at both commits.
        assert load_at_revision(root, base_commit).keys.keys == base_keys
        assert load_at_revision(root, head_commit).keys.keys == head_keys
        expected = sorted(label for label in head_keys if head_keys[label] != base_keys.get(label))
        assert uncommitted == expected
        assert affected_targets(load(root), "HEAD~1").labels == expected


def test_dependents_follow_the_data_flow_downstream(tmp_path: Path) -> None:
    root = repo(tmp_path, {"pipelines/third/dk.yaml": transform("third", ["report"], ["final"]),
                           "datasets/final/dk.yaml": dataset("final")})
    commit_all(root.parent)
    (root / "pipelines/ingest/src/main.py").write_text("print('v2')\n")
    assert labels(root) == ["//pipelines/ingest"]
    # ingest writes clean, which publish reads; publish writes report, which third reads.
    assert labels(root, dependents="direct") == ["//pipelines/ingest", "//pipelines/publish"]
    assert labels(root, dependents="transitive") == ["//pipelines/ingest", "//pipelines/publish", "//pipelines/third"]
    res = dkb_affected(root, "--since", "HEAD", "--dependents", "direct", "--explain", "--output", "json")
    (publish,) = [t for t in res.json()["targets"] if t["label"] == "//pipelines/publish"]
    assert publish["reasons"][0]["component"] == "dependent"


def _s3(bucket: str) -> dict[str, Any]:
    return {"apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": "Store", "metadata": {"name": "s3-raw"},
            "spec": {"connector": "postgres", "connection": {"bucket": bucket}}}


def test_a_package_copy_edit_affects_only_that_package(tmp_path: Path) -> None:
    # Two packages carry their own, different `s3-raw`; editing one must reach its package alone,
    # and never be missed because another package has a copy of the same name.
    files = {"pipelines/a/dk.yaml": transform("a", ["a-in"], ["a-out"]),
             "pipelines/a/store/s3-raw.yaml": _s3("bucket-a"),
             "pipelines/a/dataset/a-in.yaml": dataset("a-in", store="s3-raw"),
             "pipelines/b/dk.yaml": transform("b", ["b-in"], ["b-out"]),
             "pipelines/b/store/s3-raw.yaml": _s3("bucket-b"),
             "pipelines/b/dataset/b-in.yaml": dataset("b-in", store="s3-raw"),
             "datasets/a-out/dk.yaml": dataset("a-out"), "datasets/b-out/dk.yaml": dataset("b-out")}
    root = repo(tmp_path, files)
    edit_yaml(root / "pipelines/b/store/s3-raw.yaml", lambda d: d["spec"]["connection"].update(bucket="bucket-b2"))
    assert labels(root) == ["//pipelines/b", "//pipelines/b:b-in", "//pipelines/b:s3-raw"]
    # Making b's copy the same as a's merges nothing across packages' contexts, and still affects b.
    edit_yaml(root / "pipelines/b/store/s3-raw.yaml", lambda d: d["spec"]["connection"].update(bucket="bucket-a"))
    assert "//pipelines/b" in labels(root) and "//pipelines/a" not in labels(root)


RULE_WITH_OUTPUT = ("from dkbuild.engine.rules import Rule\n\n"
                    "class Python(Rule):\n"
                    "    name = 'generic-python'\n"
                    "    version = '1'\n\n"
                    "    def extra_manifest_files(self, target):\n"
                    "        return {'rule-note.txt': b'{note}'}\n\n"
                    "RULE = Python()\n")


def _digests(result: Result) -> dict[str, str]:
    import json
    assert result.code == 0, result
    return {t["label"]: (t["status"], t["artifacts"]) for t in json.loads(result.out)["targets"]}


def test_editing_a_workspace_rule_without_a_version_bump_rebuilds_and_is_affected(tmp_path: Path, dkb: Any) -> None:
    """The stale cache hit of a rule edit that forgot `version`: the rule's source is in the key."""
    root = repo(tmp_path, {"workspace.toml": '[workspace]\nname = "test"\n\n[rules]\npaths = ["rules"]\n',
                           "rules/python.py": RULE_WITH_OUTPUT.replace("{note}", "first")})
    before = _digests(dkb("build", "-o", "json", cwd=root))
    (root / "rules/python.py").write_text(RULE_WITH_OUTPUT.replace("{note}", "second"))
    after = _digests(dkb("build", "-o", "json", cwd=root))
    python = [label for label in before if label.startswith("//pipelines/")]
    assert python
    for label in python:
        assert after[label][0] == "built", after[label]                 # not "cached"
        assert after[label][1] != before[label][1]                      # a new artifact digest
    listed = dkb("affected", "--since", "HEAD", "--explain", cwd=root)
    assert listed.code == 0 and set(python) <= set(listed.out.split())
    assert "rule generic-python changed: code " in listed.out
    assert _digests(dkb("build", "-o", "json", cwd=root)) == {k: ("cached", v[1]) for k, v in after.items()}


def test_every_built_in_rule_is_keyed_by_its_own_source(tmp_path: Path) -> None:
    from dkbuild.engine.rules import load_rules
    from dkbuild.workspace import load_workspace

    rules = load_rules(load_workspace(repo(tmp_path)))
    codes = {name: rule.code_digest() for name, rule in rules.rules.items()}
    assert set(codes) >= {"generic-python", "generic-go", "dbt", "cloudquery"}
    assert len(set(codes.values())) == len(codes)                        # each rule's own module counts

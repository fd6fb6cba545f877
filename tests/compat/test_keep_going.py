"""Issue 13 item 2: a problem blocks only what it touches. An unloadable manifest fails its own
target (and its dependents), never the whole workspace: builds of other packages go on, failures are
listed per target as Bazel's --keep_going lists them, and the read-only commands answer for the rest
and say what they skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.compat import dkfixtures as dk
from tests.compat.corpus import CORPUS, MISSING, built_packages, run_dkb

BROKEN = "b/dk.yaml"
BROKEN_TEXT = ("apiVersion: datakit.infoblox.dev/v1alpha1\nkind: Transform\nmetadata:\n  name: b\n"
               "  labels: {team: [oops\n")             # an unclosed flow sequence: not YAML


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """//a: a good package with its own resources; //b: a dk.yaml that is not YAML."""
    files = dk.python_package("a", dk.transform("a", ["a-in"], ["a-out"]), {
        "connector/s3.yaml": dk.connector("s3"),
        "store/lake.yaml": dk.s3_store("lake", bucket="lake"),
        "dataset/a-in.yaml": dk.dataset("a-in", "lake"),
        "dataset/a-out.yaml": dk.dataset("a-out", "lake"),
    })
    files[BROKEN] = BROKEN_TEXT
    files["b/main.py"] = "print('b')\n"
    return dk.workspace(tmp_path_factory.mktemp("keep-going"), files)


def test_building_a_is_not_blocked_by_b(mixed: Path) -> None:
    res = run_dkb("build", "//a/...", "--output", "json", cwd=mixed)
    assert res.code == 0, res
    assert len(built_packages(res.json())) == 1


def test_building_everything_fails_only_b_and_lists_it(mixed: Path) -> None:
    res = run_dkb("build", "//...", "--output", "json", cwd=mixed)
    assert res.code == 1, f"a failed target is exit 1, not 2 (bad usage): {res!r}"
    report = res.json()
    failed = [t for t in report["targets"] if t["status"] == "failed"]
    assert failed and all(BROKEN in json.dumps(t) for t in failed), report["targets"]
    assert len(built_packages(report)) == 1, "//a is still built"


def test_building_everything_in_text_names_the_file(mixed: Path) -> None:
    res = run_dkb("build", "//...", cwd=mixed)
    assert res.code == 1, res
    assert BROKEN in res.out + res.err


@pytest.mark.parametrize("command", [("query", "//..."), ("graph", "//..."), ("lineage", "a-in"),
                                     ("governance", "report")], ids=" ".join)
def test_read_only_commands_answer_and_say_what_was_skipped(mixed: Path, command: tuple[str, ...]) -> None:
    res = run_dkb(*command, cwd=mixed)
    assert res.code == 0, res
    assert "a-in" in res.out, "the answer covers //a"
    said = (res.out + res.err).lower()
    assert BROKEN in said and "skip" in said, f"`dkb {' '.join(command)}` says it skipped {BROKEN}: {res!r}"


def test_query_lists_the_good_targets(mixed: Path) -> None:
    res = run_dkb("query", "//...", "--output", "json", cwd=mixed)
    assert res.code == 0, res
    files = {t["file"] for t in res.json()["targets"]}
    assert "a/dk.yaml" in files and BROKEN not in files


def test_lint_reports_the_broken_file_as_a_finding(mixed: Path) -> None:
    res = run_dkb("lint", "//...", "--output", "json", cwd=mixed)
    assert res.code == 1, f"an unloadable manifest is a lint error (exit 1), not unusable input: {res!r}"
    assert any(d["file"] == BROKEN and d["severity"] == "error" and d.get("line")
               for d in dk.diagnostics(res.json())), res.out


# dk's repository also holds test fixtures that are not valid manifests (the corpus leaves them
# out); these stand in for them in the second variant.
DK_TESTDATA = {
    "sdk/validate/testdata/invalid-yaml/dk.yaml": BROKEN_TEXT,
    "sdk/validate/testdata/missing-name/dk.yaml": "apiVersion: datakit.infoblox.dev/v1alpha1\nkind: Transform\n"
                                                  "metadata: {}\nspec:\n  runtime: dbt\n",
}


@pytest.fixture(scope="module", params=["corpus", "corpus+testdata"])
def whole_corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole dk corpus directory as one workspace: every example, the templates' un-rendered
    *.tmpl files (not manifests), the GitOps chart, the Go source; then also dk-style testdata."""
    if not CORPUS.is_dir():
        pytest.fail(MISSING, pytrace=False)
    root = tmp_path_factory.mktemp("whole") / "dk-corpus"
    shutil.copytree(CORPUS, root, symlinks=True)
    return dk.workspace(root, DK_TESTDATA if request.param == "corpus+testdata" else {})


@pytest.mark.parametrize("command", [("lint", "//..."), ("query", "//...")], ids=" ".join)
def test_the_whole_dk_repository_as_one_workspace_is_usable(whole_corpus: Path, command: tuple[str, ...]) -> None:
    res = run_dkb(*command, "--output", "json", cwd=whole_corpus)
    assert res.code != 2, f"one bad file must not turn the whole workspace into exit 2: {res!r}"
    doc = res.json()
    files = {d["file"] for d in doc.get("diagnostics") or []} | {t["file"] for t in doc.get("targets") or []
                                                                   if isinstance(t, dict)}
    assert not [f for f in files if f.endswith(".tmpl")], "dk init templates are not manifests"


def test_the_whole_dk_repository_lists_every_example_transform(whole_corpus: Path) -> None:
    res = run_dkb("query", "kind(Transform, //...)", "--output", "json", cwd=whole_corpus)
    assert res.code == 0, res
    files = {t["file"] for t in res.json()["targets"]}
    expected = {str(p.relative_to(whole_corpus)) for p in (whole_corpus / "examples").rglob("dk.yaml")
                if "kind: Transform" in p.read_text()}
    assert expected and expected <= files, sorted(expected - files)

"""`dkb lint` end to end: exit codes, scoping, text/JSON/SARIF output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.conftest import basic_files, dataset, git, transform, write_tree

# dk rejects a generic-python Transform without spec.image (E232), and so does dkb.
BROKEN = transform("broken", ["raw"], ["broken-out"])
del BROKEN["spec"]["image"]


def test_clean_workspace_exits_0(workspace, dkb) -> None:
    res = dkb("lint", cwd=workspace())
    assert res.code == 0, res
    assert "no problems" in res.out


def test_errors_exit_1_and_name_file_line_hint(workspace, dkb) -> None:
    root = workspace({"pipelines/broken/dk.yaml": BROKEN})
    res = dkb("lint", cwd=root)
    assert res.code == 1, res
    assert "pipelines/broken/dk.yaml:" in res.out and "E232" in res.out and "hint:" in res.out


def test_patterns_scope_the_report(workspace, dkb) -> None:
    root = workspace({"pipelines/broken/dk.yaml": BROKEN})
    assert dkb("lint", "//pipelines/ingest", cwd=root).code == 0
    assert dkb("lint", "//pipelines/...", "-//pipelines/broken", cwd=root).code == 0
    assert dkb("lint", "//pipelines/...", cwd=root).code == 1
    # relative pattern from inside a package
    assert dkb("lint", ":broken", cwd=root / "pipelines" / "broken").code == 1


def test_unknown_pattern_is_usage_error_with_suggestion(workspace, dkb) -> None:
    res = dkb("lint", "//pipelines/ingset", cwd=workspace())
    assert res.code == 2
    assert "did you mean //pipelines/ingest" in res.err


def test_json_document_shape(workspace, dkb) -> None:
    root = workspace({"pipelines/broken/dk.yaml": BROKEN})
    doc = dkb("lint", "--output", "json", cwd=root).json()
    assert doc["summary"]["exit_code"] == 1 and doc["summary"]["errors"] >= 1
    d = next(d for d in doc["diagnostics"] if d["code"] == "E232")
    assert set(d) == {"code", "severity", "advisory", "file", "line", "column", "field", "message", "hint",
                      "related"}


def test_sarif_is_valid_for_code_scanning(workspace, dkb, tmp_path: Path) -> None:
    root = workspace({"pipelines/broken/dk.yaml": BROKEN,
                      "datasets/pii/dk.yaml": dataset("pii", columns=[{"name": "e", "type": "string", "pii": True}])})
    res = dkb("lint", "--output", "sarif", "--sarif", str(tmp_path / "out.sarif"), cwd=root)
    assert res.code == 1
    doc = res.json()
    assert doc == json.loads((tmp_path / "out.sarif").read_text())
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-2.1.0.json")
    (run,) = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "dkb"
    assert {r["id"] for r in rules} >= {"E232", "E600"}
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        loc = result["locations"][0]["physicalLocation"]
        assert not loc["artifactLocation"]["uri"].startswith("/")      # relative to the repo root
        assert loc["region"]["startLine"] >= 1 and loc["region"]["startColumn"] >= 1
        assert result["message"]["text"]


def github_sarif_problems(doc: dict[str, Any]) -> list[str]:
    """What GitHub code scanning requires of an uploaded SARIF file (its "SARIF support" page):
    version 2.1.0; per run a tool.driver.name and rules with ids; per result a ruleId, message.text
    and a physical location whose uri is a relative URI reference with a startLine >= 1; base ids
    defined in originalUriBaseIds as absolute URIs ending in '/'."""
    problems = []
    if doc.get("version") != "2.1.0" or "sarif-2.1.0" not in doc.get("$schema", ""):
        problems.append("not SARIF 2.1.0")
    for run in doc.get("runs", []):
        driver = run.get("tool", {}).get("driver", {})
        if not driver.get("name") or not all(r.get("id") for r in driver.get("rules", [])):
            problems.append("tool.driver needs a name and rules with ids")
        bases = run.get("originalUriBaseIds", {})
        for name, base in bases.items():
            if not (urlsplit(base.get("uri", "")).scheme == "file" and base["uri"].endswith("/")):
                problems.append(f"originalUriBaseIds {name}: {base} is not an absolute file: URI ending in /")
        for result in run.get("results", []):
            if not result.get("ruleId") or not result.get("message", {}).get("text"):
                problems.append(f"result without ruleId or message.text: {result}")
            for loc in result.get("locations", []):
                art = loc["physicalLocation"]["artifactLocation"]
                uri = art["uri"]
                if urlsplit(uri).scheme or uri.startswith("/") or " " in uri or "\\" in uri:
                    problems.append(f"uri {uri!r} is not a relative URI reference")
                if art.get("uriBaseId") and art["uriBaseId"] not in bases:
                    problems.append(f"uriBaseId {art['uriBaseId']} is not defined in originalUriBaseIds")
                if loc["physicalLocation"].get("region", {}).get("startLine", 1) < 1:
                    problems.append(f"startLine < 1 in {loc}")
    return problems


@pytest.mark.parametrize("subdir", ["platform/data", "odd dir/ünï", ""])
def test_sarif_uris_are_relative_to_the_git_root(tmp_path: Path, dkb, subdir: str) -> None:
    """GitHub resolves a SARIF uri against the repository root: with the workspace in a
    subdirectory of the repository, the uri must name that subdirectory too (percent-encoded)."""
    repo = tmp_path / "repo"
    root = write_tree(repo / subdir, {**basic_files(), "pipelines/broken/dk.yaml": BROKEN})
    (repo / "README").write_text("the repository root\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for res in (dkb("lint", "-o", "sarif", cwd=root), dkb("-C", str(root), "lint", "-o", "sarif", cwd=elsewhere),
                dkb("lint", "-o", "sarif", cwd=root / "pipelines")):
        assert res.code == 1, res
        doc = res.json()
        assert github_sarif_problems(doc) == []
        (run,) = doc["runs"]
        assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": repo.resolve().as_uri() + "/"}}
        uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
        expected = "/".join(p for p in (subdir, "pipelines/broken/dk.yaml") if p)
        assert {unquote(u) for u in uris} == {expected}
        for uri in uris:        # what GitHub does: the repository root joined with the uri
            assert (repo / unquote(uri)).is_file()
    json_file = dkb("lint", "-o", "json", cwd=root).json()["diagnostics"][0]["file"]
    assert json_file == "pipelines/broken/dk.yaml"        # text and JSON stay workspace-relative


def test_sarif_outside_git_is_relative_to_the_workspace(workspace, dkb) -> None:
    root = workspace({"pipelines/broken/dk.yaml": BROKEN})
    doc = dkb("lint", "-o", "sarif", cwd=root).json()
    assert github_sarif_problems(doc) == []
    (run,) = doc["runs"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == root.resolve().as_uri() + "/"
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]} == \
        {"pipelines/broken/dk.yaml"}


def test_policy_ignore_silences_codes(workspace, dkb) -> None:
    root = workspace({"workspace.toml": "[policy]\nignore = [\"E600\"]\n",
                      "datasets/pii/dk.yaml": dataset("pii", columns=[{"name": "e", "type": "string", "pii": True}])})
    assert dkb("lint", cwd=root).code == 0


def test_minus_C_runs_elsewhere(workspace, dkb, tmp_path: Path) -> None:
    root = workspace()
    assert dkb("-C", str(root), "lint", cwd=tmp_path).code == 0


def test_version_and_help(dkb) -> None:
    assert dkb("--version").out.startswith("dkb, version")
    out = dkb("--help").out
    for command in ("lint", "query", "graph"):
        assert command in out


def test_mistyped_option_is_still_an_error(workspace, dkb) -> None:
    res = dkb("lint", "--stict", cwd=workspace())
    # click names every close option; --set (dk's flag, issue 13) is one of them now.
    assert res.code == 2 and "Did you mean" in res.err and "'--strict'" in res.err
    assert dkb("lint", "--", "//...", "-//pipelines/ingest", cwd=workspace()).code == 0


def test_schema_files_are_checked_as_dk_does(workspace, dkb) -> None:
    root = workspace({"pipelines/ingest/schemas/event.avsc": '{"type": "record", "name": "e", "fields": []}',
                      "pipelines/ingest/schemas/bad.avsc": '{"name": "e"}',
                      "pipelines/ingest/schemas/notes.txt": "not a schema, not checked",
                      "pipelines/ingest/schemas/nested/deep.avsc": "{}"})      # dk reads the top level only
    res = dkb("lint", "--output", "json", cwd=root)
    assert res.code == 1, res
    found = [(d["file"], d["line"]) for d in res.json()["diagnostics"] if d["code"] == "E042"]
    assert found == [("pipelines/ingest/schemas/bad.avsc", 1)]

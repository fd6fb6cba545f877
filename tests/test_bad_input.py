"""Bad input: each case is a clear error naming file and line; it fails its own target (exit 1),
never the whole workspace, and nothing else is lost."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from dkbuild.api import load
from tests.conftest import API, dataset, transform

LAUGHS = """\
apiVersion: datakit.infoblox.dev/v1alpha1
kind: DataSet
metadata:
  name: lol
  labels:
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
spec: {store: lake, table: t}
"""

CASES = {
    "malformed-yaml": ("apiVersion: x\nkind: DataSet\nmetadata: {name: [unclosed\n", "E100", 4),
    "not-a-mapping": ("- just\n- a list\n", "E101", 1),
    "scalar-document": ("hello\n", "E101", 1),
    "unknown-kind": (f"apiVersion: {API}\nkind: Pipeline\nmetadata: {{name: p}}\n", "E002", 2),
    "missing-kind": (f"apiVersion: {API}\nmetadata: {{name: p}}\n", "E102", 1),
    "missing-metadata": (f"apiVersion: {API}\nkind: DataSet\nspec: {{store: lake}}\n", "E104", 1),
    "wrong-type": (f"apiVersion: {API}\nkind: Transform\nmetadata: {{name: p}}\nspec:\n  runtime: dbt\n"
                   "  inputs: raw\n", "E105", 6),
    "wrong-nested-type": (f"apiVersion: {API}\nkind: DataSet\nmetadata: {{name: p}}\nspec:\n  store: lake\n"
                          "  schema:\n    - {name: id, type: integer, pii: maybe}\n", "E105", 7),
    "billion-laughs": (LAUGHS, "E107", None),
    "duplicate-key": (f"apiVersion: {API}\nkind: DataSet\nmetadata: {{name: p}}\nspec: {{store: a}}\nspec: {{store: b}}\n",
                      "E108", 5),
    "custom-tag": (f"apiVersion: {API}\nkind: DataSet\nmetadata: {{name: !secret p}}\n", "E100", 3),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_manifest_is_a_located_error_of_its_target(case: str, workspace, dkb) -> None:
    text, code, line = CASES[case]
    root = workspace({"pipelines/bad/dk.yaml": text})
    res = dkb("lint", "--output", "json", cwd=root)
    assert res.code == 1, res
    found = [d for d in res.json()["diagnostics"] if d["code"] == code]
    assert found, res
    assert found[0]["file"] == "pipelines/bad/dk.yaml"
    if line is not None:
        assert found[0]["line"] == line
    assert found[0]["hint"]
    # The rest of the workspace is still loaded and linted.
    assert "//pipelines/ingest" in res.json()["targets"]


@pytest.mark.parametrize(("text", "code"), [
    ("kind: DataSet\nmetadata: {name: p}\nspec: {store: lake, table: t}\n", "E103"),
    ("apiVersion: v9\nkind: DataSet\nmetadata: {name: p}\nspec: {store: lake, table: t}\n", "E111"),
], ids=["missing-apiversion", "unknown-apiversion"])
def test_dk_reads_a_manifest_by_its_kind_so_does_dkb(text: str, code: str, workspace, dkb) -> None:
    # dk's parser only needs `kind`; dkb loads the document and says what is off (advisory).
    root = workspace({"datasets/p/dk.yaml": text})
    res = dkb("lint", "--strict", "--output", "json", cwd=root)
    assert res.code == 0, res
    (d,) = [d for d in res.json()["diagnostics"] if d["code"] == code]
    assert d["advisory"] and d["file"] == "datasets/p/dk.yaml" and d["line"] == 1 and d["hint"]
    assert "//datasets/p" in res.json()["targets"]


def test_bad_manifest_text_output_names_file_and_line(workspace, dkb) -> None:
    root = workspace({"pipelines/bad/dk.yaml": CASES["wrong-type"][0]})
    res = dkb("lint", cwd=root)
    assert res.code == 1
    assert "pipelines/bad/dk.yaml" in res.out
    assert "6:3" in res.out and "E105" in res.out and "hint:" in res.out


def test_huge_file_is_refused_without_loading(workspace, dkb) -> None:
    root = workspace()
    big = root / "pipelines" / "huge" / "dk.yaml"
    big.parent.mkdir(parents=True)
    with big.open("w") as fh:
        fh.write(f"apiVersion: {API}\nkind: DataSet\nmetadata: {{name: huge}}\nspec:\n  store: lake\n  schema:\n")
        row = "    - {name: c, type: string}\n"
        fh.write(row * (50 * 1024 * 1024 // len(row)))
    assert big.stat().st_size >= 50 * 1024 * 1024
    res = dkb("lint", "--output", "json", cwd=root)
    assert res.code == 1
    (d,) = [d for d in res.json()["diagnostics"] if d["code"] == "E106"]
    assert d["file"] == "pipelines/huge/dk.yaml" and "limit" in d["message"]


def test_size_limit_is_configurable(workspace) -> None:
    root = workspace({"workspace.toml": "[workspace]\nmax_manifest_bytes = 100\n"})
    loaded = load(root)
    assert {d.code for d in loaded.diagnostics} == {"E106"}


def test_symlink_outside_workspace_is_not_followed(workspace, tmp_path: Path, dkb) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "dk.yaml").write_text(dataset("secret-data").__repr__())
    root = workspace()
    (root / "datasets" / "leak").mkdir()
    os.symlink(outside / "dk.yaml", root / "datasets" / "leak" / "dk.yaml")
    os.symlink(outside, root / "linked-dir")
    loaded = load(root)
    assert not any(m.file.startswith("datasets/leak") for m in loaded.result.manifests)
    warned = {d.file for d in loaded.diagnostics if d.code == "W111"}
    assert warned == {"datasets/leak/dk.yaml", "linked-dir"}
    res = dkb("lint", cwd=root)
    assert res.code == 0, res
    assert "W111" in res.out


def test_symlink_inside_workspace_is_read(workspace) -> None:
    root = workspace()
    (root / "datasets" / "alias").mkdir()
    os.symlink(root / "datasets" / "raw" / "dk.yaml", root / "datasets" / "alias" / "dk.yaml")
    loaded = load(root)
    assert [m.file for m in loaded.result.manifests if m.name == "raw"] == ["datasets/alias/dk.yaml", "datasets/raw/dk.yaml"]


def test_duplicate_labels(workspace, dkb) -> None:
    root = workspace({"pipelines/ingest/dataset/a.yaml": dataset("x"),
                      "pipelines/ingest/dataset/b.yaml": dataset("x", table="other")})
    res = dkb("lint", "--output", "json", cwd=root)
    assert res.code == 1
    (d,) = [d for d in res.json()["diagnostics"] if d["code"] == "E110"]
    assert "//pipelines/ingest:x" in d["message"]
    assert {d["file"], *d["related"]} == {"pipelines/ingest/dataset/a.yaml", "pipelines/ingest/dataset/b.yaml"}


def test_workspace_toml_syntax_error(workspace, dkb) -> None:
    root = workspace({"workspace.toml": "[workspace\nname='x'\n"})
    res = dkb("lint", cwd=root)
    assert res.code == 2
    assert "workspace.toml:1" in res.err and "E121" in res.err


def test_not_utf8(workspace, dkb) -> None:
    root = workspace()
    bad = root / "datasets" / "latin" / "dk.yaml"
    bad.parent.mkdir()
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    res = dkb("lint", "--output", "json", cwd=root)
    assert res.code == 1 and any(d["code"] == "E112" for d in res.json()["diagnostics"])


def test_unknown_field_warns_and_strict_fails_only_when_raised(workspace, dkb) -> None:
    # dk ignores unknown fields silently (its `dk init` templates carry spec.owner), so W100 is
    # advisory: --strict does not raise it unless [lint.severity] makes it a plain warning.
    t = transform("extra", ["raw"], ["extra-out"])
    t["spec"]["owner"] = "team-a"
    root = workspace({"pipelines/extra/dk.yaml": t, "datasets/extra-out/dk.yaml": dataset("extra-out")})
    res = dkb("lint", "--output", "json", cwd=root)
    assert res.code == 0, res
    (d,) = [d for d in res.json()["diagnostics"] if d["code"] == "W100"]
    assert d["field"] == "spec.owner" and d["severity"] == "warning" and d["advisory"] and d["line"] > 0
    assert dkb("lint", "--strict", "--output", "json", cwd=root).code == 0
    toml = root / "workspace.toml"
    toml.write_text(toml.read_text() + '\n[lint.severity]\nW100 = "warning"\n')
    strict = dkb("lint", "--strict", "--output", "json", cwd=root)
    assert strict.code == 1
    assert [d["severity"] for d in strict.json()["diagnostics"] if d["code"] == "W100"] == ["error"]


def test_multi_document_files(workspace) -> None:
    root = workspace({"platform/more/dk.yaml": [dataset("m1"), dataset("m2")]})
    loaded = load(root)
    found = {m.label: (m.file, m.doc_index) for m in loaded.result.manifests if m.package == "platform/more"}
    assert found == {"//platform/more:m1": ("platform/more/dk.yaml", 0), "//platform/more:m2": ("platform/more/dk.yaml", 1)}


def test_alias_amplification_of_a_large_string_is_refused_fast(workspace, dkb) -> None:
    # 1 MiB anchored once, used 2,000 times: few nodes, 2 GB of text. Refused while the aliases
    # are expanded, at the anchored value, before anything copies the expansion.
    big = "x" * (1024 * 1024)
    uses = "\n".join(f"    k{i}: *big" for i in range(2000))
    text = (f"apiVersion: {API}\nkind: DataSet\nmetadata:\n  name: amp\n  annotations:\n    seed: &big {big}\n"
            f"{uses}\nspec: {{store: lake, table: t}}\n")
    root = workspace({"datasets/amp/dk.yaml": text})
    res = dkb("lint", "--output", "json", cwd=root)
    assert res.code == 1, res
    (d,) = [d for d in res.json()["diagnostics"] if d["code"] == "E107"]
    assert d["file"] == "datasets/amp/dk.yaml" and d["line"] == 6 and "aliases" in d["message"]   # the anchor
    tracemalloc.start()
    try:
        load(root)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024          # what loading may hold, not a timing


def test_an_honest_large_manifest_is_not_mistaken_for_a_bomb() -> None:
    from dkbuild.manifests.yamlsource import parse_documents

    text = f"apiVersion: {API}\nkind: DataSet\nmetadata: {{name: big}}\nspec:\n  description: {'y' * (3 << 20)}\n"
    documents, problems = parse_documents(text, "datasets/big/dk.yaml")
    assert problems == [] and len(documents[0].data["spec"]["description"]) == 3 << 20

"""Issue 13 item 7, lint: dk's command line. `--skip-pii`, `-f/--values` and `--set` with dk's
precedence, `--skip-schema-lock`, directory arguments; and how advisory findings are shown."""

from __future__ import annotations

import json

from tests.conftest import dataset, transform

PII = {"name": "email", "type": "string", "pii": True}


def codes(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [d["code"] for d in result.json()["diagnostics"]]


def test_skip_pii_leaves_out_the_pii_policies(workspace, dkb) -> None:
    ds = dataset("people", columns=[PII])
    del ds["spec"]["classification"]
    root = workspace({"datasets/people/dk.yaml": ds})
    res = dkb("lint", "-o", "json", cwd=root)
    assert res.code == 1 and "E600" in codes(res)
    skipped = dkb("lint", "--skip-pii", "--skip-schema-lock", "-o", "json", cwd=root)
    assert skipped.code == 0 and "E600" not in codes(skipped), skipped


def test_values_files_then_sets_in_order(workspace, dkb, tmp_path) -> None:
    root = workspace()
    manifest = root / "pipelines/ingest/dk.yaml"
    before = manifest.read_text()
    (root / "bad.yaml").write_text("metadata:\n  version: v1\n")
    (root / "good.yaml").write_text("metadata:\n  version: 2.0.0\n")
    # dk.yaml < -f files in order < --set in order.
    res = dkb("lint", "//pipelines/ingest", "-f", "good.yaml", "-f", "bad.yaml", "-o", "json", cwd=root)
    assert res.code == 1 and codes(res) == ["E020"], res
    (d,) = res.json()["diagnostics"]
    assert d["file"] == "pipelines/ingest/dk.yaml" and d["line"] == before.splitlines().index("  version: 1.0.0") + 1
    assert dkb("lint", "//pipelines/ingest", "-f", "bad.yaml", "-f", "good.yaml", cwd=root).code == 0
    assert dkb("lint", "//pipelines/ingest", "-f", "bad.yaml", "--set", "metadata.version=3.0.0",
               cwd=root).code == 0
    later = dkb("lint", "//pipelines/ingest", "--set", "metadata.version=3.0.0", "--values", "bad.yaml",
                "--set", "metadata.version=v9", "-o", "json", cwd=root)
    assert codes(later) == ["E020"]
    assert manifest.read_text() == before            # the file on disk is never rewritten


def test_set_changes_what_the_graph_checks_see(workspace, dkb) -> None:
    root = workspace()
    res = dkb("lint", "//pipelines/ingest", "--set", "spec.outputs[0].dataset=nowhere", "-o", "json", cwd=root)
    assert res.code == 0 and "W500" in codes(res), res        # now an external dataset (advisory)
    typed = dkb("lint", "//pipelines/ingest", "--set", "spec.replicas=0", "-o", "json", cwd=root)
    assert typed.code == 0 and "E254" in codes(typed)      # 0 parsed as an integer, as dk does


def test_bad_overrides_are_usage_errors_with_a_fix(workspace, dkb) -> None:
    root = workspace()
    typo = dkb("lint", "--set", "image=x:1", cwd=root)
    assert typo.code == 2 and "invalid override path: image" in typo.err and "spec.image" in typo.err
    assert dkb("lint", "--set", "spec.image", cwd=root).code == 2
    (root / "broken.yaml").write_text("spec: [\n")
    broken = dkb("lint", "-f", "broken.yaml", "-f", "absent.yaml", "-o", "json", cwd=root)
    assert broken.code == 2
    problems = {(e["file"], e["code"]) for e in broken.json()["errors"]}
    assert problems == {("broken.yaml", "E100"), ("absent.yaml", "E141")}


def test_directory_arguments(workspace, dkb) -> None:
    broken = transform("broken", ["raw"], ["missing-ds"])
    del broken["spec"]["image"]                                  # E232, an error in dk too
    root = workspace({"pipelines/broken/dk.yaml": broken})
    inside = dkb("lint", ".", "-o", "json", cwd=root / "pipelines/ingest")
    assert inside.code == 0 and inside.json()["targets"] == ["//pipelines/ingest"], inside
    assert dkb("lint", "./pipelines/ingest", cwd=root).code == 0
    assert dkb("lint", "pipelines/broken/", cwd=root).code == 1
    assert dkb("lint", "../broken", cwd=root / "pipelines/ingest").code == 1
    everything = dkb("lint", ".", "-o", "json", cwd=root)
    assert "//pipelines/broken" in everything.json()["targets"] and everything.code == 1
    outside = dkb("lint", "..", cwd=root)
    assert outside.code == 2 and "outside the workspace" in outside.err


def test_advisory_findings_are_marked_in_text_json_and_sarif(workspace, dkb, tmp_path) -> None:
    t = transform("ingest", ["raw"], ["clean"])
    t["spec"]["owner"] = "team-a"                  # W100: dk ignores unknown fields
    root = workspace({"pipelines/ingest/dk.yaml": t})
    text = dkb("lint", "--strict", cwd=root)
    assert text.code == 0 and "warning (advisory) W100 [spec.owner]" in text.out and "(1 advisory)" in text.out
    doc = dkb("lint", "--strict", "-o", "json", cwd=root).json()
    (d,) = doc["diagnostics"]
    assert d["severity"] == "warning" and d["advisory"] is True and doc["summary"]["advisory"] == 1
    sarif = tmp_path / "out.sarif"
    assert dkb("lint", "--strict", "--sarif", str(sarif), cwd=root).code == 0
    (result,) = json.loads(sarif.read_text())["runs"][0]["results"]
    assert result["ruleId"] == "W100" and result["level"] == "note"
    (root / "workspace.toml").write_text((root / "workspace.toml").read_text() + '\n[lint.severity]\nW100 = "error"\n')
    raised = dkb("lint", "-o", "sarif", cwd=root)
    assert raised.code == 1
    run = raised.json()["runs"][0]
    assert run["results"][0]["level"] == "error"


def test_help_lists_dk_flags(dkb) -> None:
    res = dkb("lint", "--help")
    for flag in ("--skip-pii", "--skip-schema-lock", "--set", "--values", "-f,", "--strict"):
        assert flag in res.out, flag

"""Issue 13 item 3: lint severities follow dk where dk accepts. The catalogue decides each code's
severity, governance.severity applies it in one place, --strict raises warnings but not advisory
findings, and [lint.severity] raises or lowers any code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dkbuild.api import lint_workspace, load
from dkbuild.config_model import parse_config
from dkbuild.diagnostics import Severity, error, warning
from dkbuild.governance import dk_checks
from dkbuild.governance.codes import CODES, DK_CODES, SEVERITIES
from dkbuild.governance.options import LintOptions
from dkbuild.governance.severity import SeverityPolicy
from tests.conftest import connector, dataset, store, transform

PII = {"name": "email", "type": "string", "pii": True}


def lint(root: Path, *patterns: str, **options: Any):  # type: ignore[no-untyped-def]
    return lint_workspace(load(root), list(patterns) or ["//..."], options=LintOptions(**options))


def found(report, code: str):  # type: ignore[no-untyped-def]
    return [d for d in report.diagnostics if d.code == code]


def add_toml(root: Path, text: str) -> None:
    toml = root / "workspace.toml"
    toml.write_text(toml.read_text() + "\n" + text)


# --- the catalogue -----------------------------------------------------------------------------

def test_every_code_has_a_known_severity_and_dk_codes_name_catalogued_codes() -> None:
    assert {c.severity for c in CODES.values()} <= set(SEVERITIES)
    assert set(DK_CODES) <= set(CODES)
    assert CODES["E006"].dk == "E001" and CODES["E242"].dk == ""


@pytest.mark.parametrize("code", ["W100", "W209", "W210", "E221", "E239", "E242", "E254", "E255", "E256",
                                  "E257", "E601", "E602", "E710", "E720"])
def test_what_dk_accepts_silently_is_advisory(code: str) -> None:
    assert CODES[code].severity == "advisory"


@pytest.mark.parametrize("code", ["E001", "E006", "E200", "E220", "E230", "E231", "E232", "E233", "E600"])
def test_what_dk_rejects_stays_an_error(code: str) -> None:
    assert CODES[code].severity == "error"


# --- the one place severities are decided ------------------------------------------------------

def policy(toml: str = "", strict: bool = False, unlinted: frozenset[str] = frozenset()) -> SeverityPolicy:
    config = parse_config(toml)
    base = SeverityPolicy.of(config, [], strict)
    return SeverityPolicy(base.strict, base.policy_levels, base.overrides, unlinted)


def test_catalogue_default_wins_over_what_a_check_built() -> None:
    # A rule check builds error(...); the catalogue says E720 is advisory.
    assert policy().apply(error("E720", "a/dk.yaml", "no dbt_project.yml")).severity is Severity.ADVISORY
    assert policy().apply(warning("E200", "a/dk.yaml", "no type")).severity is Severity.ERROR


def test_strict_raises_warnings_not_advisory_findings() -> None:
    strict = policy(strict=True)
    assert strict.apply(warning("E226", "a/dk.yaml", "bad masking")).severity is Severity.ERROR
    assert strict.apply(warning("W100", "a/dk.yaml", "unknown field")).severity is Severity.ADVISORY


def test_dk_accepted_instances_and_unlinted_files_are_advisory() -> None:
    p = policy(unlinted=frozenset({"pkg/connector/pg.yaml"}))
    assert p.apply(error("E020", "a/dk.yaml", "semver", dk_accepts=True)).severity is Severity.ADVISORY
    assert p.apply(error("E020", "a/dk.yaml", "semver")).severity is Severity.ERROR
    assert p.apply(error("E200", "pkg/connector/pg.yaml", "no type")).severity is Severity.ADVISORY
    # Only contract checks relax on files dk never lints: a policy there still blocks.
    assert p.apply(error("E600", "pkg/connector/pg.yaml", "pii")).severity is Severity.ERROR


def test_workspace_setting_raises_and_lowers_any_code() -> None:
    p = policy('[lint.severity]\nW100 = "error"\nE200 = "advisory"\nE020 = "warning"\n', strict=True)
    assert p.apply(warning("W100", "a/dk.yaml", "x")).severity is Severity.ERROR
    assert p.apply(error("E200", "a/dk.yaml", "x")).severity is Severity.ADVISORY
    # A dk-accepted instance is raised by the setting too; "warning" then means --strict blocks it.
    assert p.apply(error("E020", "a/dk.yaml", "x", dk_accepts=True)).severity is Severity.ERROR
    assert policy('[lint.severity]\nE020 = "warning"\n').apply(error("E020", "a", "x")).severity is Severity.WARNING


def test_codes_not_in_the_catalogue_keep_their_own_severity() -> None:
    # Another part of dkb may add a code before its catalogue row: it is reported as built.
    assert policy().apply(warning("W999", "a", "x")).severity is Severity.WARNING


def test_setting_names_only_known_codes_and_levels() -> None:
    from dkbuild.diagnostics import DkbError

    with pytest.raises(DkbError) as bad:
        parse_config('[lint.severity]\nW1000 = "error"\n')
    assert "W1000" in str(bad.value) and bad.value.diagnostics[0].line == 1
    with pytest.raises(DkbError) as level:
        parse_config('[lint.severity]\nW100 = "fatal"\n')
    assert "W100" in str(level.value)


# --- dk's own acceptance tests, quirks included -----------------------------------------------

def test_dk_semver_quirks() -> None:
    assert all(dk_checks.semver(v) for v in ("1.0.0", "1.2.3-rc.1", "1.2.3.4", "01.0.0", "1.2.3+x"))
    assert not any(dk_checks.semver(v) for v in ("v1.0.0", "1.0", "1..0", "", "1.0.0a"))


def test_dk_duration_quirks() -> None:
    assert all(dk_checks.duration(v) for v in ("30m", "1h30m", "30", "0s", "1hh", 30))
    assert not any(dk_checks.duration(v) for v in ("1.5h", "1d", "-1h", "m30", ""))


def test_dk_range_and_schema_ref_quirks() -> None:
    assert dk_checks.semver_range("^x") and dk_checks.semver_range("1-foo") and not dk_checks.semver_range("v1")
    assert dk_checks.schema_ref("a--b") and dk_checks.schema_ref("users@^1@2")
    assert not dk_checks.schema_ref("Users") and not dk_checks.schema_ref("users@") and not dk_checks.schema_ref("-a")


# --- end to end over a workspace ---------------------------------------------------------------

def test_a_version_dk_accepts_is_advisory_one_it_rejects_is_an_error(workspace, tmp_path) -> None:
    accepted = transform("ingest", ["raw"], ["clean"])
    accepted["metadata"]["version"] = "1.2.3.4"
    report = lint(workspace({"pipelines/ingest/dk.yaml": accepted}), strict=True)
    (d,) = found(report, "E020")
    assert d.is_advisory and report.exit_code == 0
    rejected = transform("ingest", ["raw"], ["clean"])
    rejected["metadata"]["version"] = "v1.0"
    (d,) = found(lint(workspace({"pipelines/ingest/dk.yaml": rejected}, root=tmp_path / "v")), "E020")
    assert d.is_error and d.line > 0


def test_timeout_and_dk_only_rules_do_not_block(workspace, tmp_path) -> None:
    t = transform("ingest", ["raw"], ["clean"], timeout="30", replicas=0,
                  env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}],
                  trigger={"policy": "schedule", "schedule": {"cron": "61 * * * *"}})
    report = lint(workspace({"pipelines/ingest/dk.yaml": t}), strict=True)
    assert {d.code for d in report.diagnostics} >= {"E031", "E254", "E256", "E239", "W253"}
    assert all(d.is_advisory for d in report.diagnostics) and report.exit_code == 0
    bad = transform("ingest", ["raw"], ["clean"], timeout="1d")
    (d,) = found(lint(workspace({"pipelines/ingest/dk.yaml": bad}, root=tmp_path / "bad")), "E031")
    assert d.is_error


def test_flat_copies_dk_never_lints_do_not_block(workspace, tmp_path) -> None:
    broken = {"apiVersion": connector()["apiVersion"], "kind": "Connector", "metadata": {"name": "pg"},
              "spec": {"provider": "postgres"}}
    files = {"pipelines/ingest/connector/pg.yaml": broken}
    report = lint(workspace(files), strict=True)
    assert {d.code for d in found(report, "E200") + found(report, "E201")} == {"E200", "E201"}
    assert all(d.is_advisory for d in report.diagnostics) and report.exit_code == 0
    # The same Connector as its own package (a dk.yaml, which dk lints) is rejected.
    report = lint(workspace({"platform/connectors/pg/dk.yaml": broken}, root=tmp_path / "pkg"))
    assert {d.code for d in report.diagnostics if d.is_error} == {"E200", "E201"}


def test_pii_needs_a_classification_and_the_allowed_list_is_advisory(workspace, tmp_path) -> None:
    internal = dataset("people", columns=[PII], classification="internal")
    report = lint(workspace({"datasets/people/dk.yaml": internal}), strict=True)
    (d,) = found(report, "E600")
    assert d.is_advisory and report.exit_code == 0
    unclassified = dataset("people", columns=[PII])
    del unclassified["spec"]["classification"]
    root = workspace({"datasets/people/dk.yaml": unclassified}, root=tmp_path / "u")
    (d,) = found(lint(root), "E600")
    assert d.is_error and "not at all" in d.message
    # dk's --skip-pii leaves the policy out.
    assert found(lint(root, skip_pii=True), "E600") == []
    # A team that wants the allowed list enforced says so.
    strict_root = workspace({"datasets/people/dk.yaml": internal}, root=tmp_path / "s")
    add_toml(strict_root, '[lint.severity]\nE600 = "error"\n')
    assert found(lint(strict_root), "E600")[0].is_error


def test_flat_copy_with_unclassified_pii_still_blocks(workspace) -> None:
    # The FAQ's own example is a flat dataset/ copy: its promise holds there too.
    ds = dataset("customer-data", columns=[PII])
    del ds["spec"]["classification"]
    report = lint(workspace({"pipelines/ingest/dataset/customer-data.yaml": ds}))
    assert found(report, "E600")[0].is_error and report.exit_code == 1


def test_downgrade_is_advisory_unless_the_policy_says_error(workspace, tmp_path) -> None:
    files = {"datasets/secret/dk.yaml": dataset("secret", classification="restricted"),
             "datasets/summary/dk.yaml": dataset("summary", classification="internal"),
             "pipelines/sum/dk.yaml": transform("sum", ["secret"], ["summary"])}
    root = workspace(files)
    (d,) = found(lint(root, strict=True), "E602")
    assert d.is_advisory
    add_toml(root, '[policy]\nclassification_downgrade = "error"\n')
    assert found(lint(root), "E602")[0].is_error
    root2 = workspace(files, root=tmp_path / "w")
    add_toml(root2, '[policy]\nclassification_downgrade = "warning"\n')
    assert found(lint(root2), "E602")[0].severity is Severity.WARNING
    assert found(lint(root2, strict=True), "E602")[0].is_error


def test_missing_go_mod_and_dbt_project_are_advisory(workspace) -> None:
    files = {"pipelines/ingest/dk.yaml": transform("ingest", ["raw"], ["clean"], runtime="generic-go"),
             "pipelines/publish/dk.yaml": transform("publish", ["clean"], ["report"], runtime="dbt")}
    report = lint(workspace(files), strict=True)
    assert {d.code for d in report.diagnostics} == {"E710", "E720"}
    assert all(d.is_advisory for d in report.diagnostics) and report.exit_code == 0


def test_strict_still_raises_a_warning_code(workspace) -> None:
    ds = dataset("raw", columns=[{"name": "email", "type": "string", "pii": True, "masking": "hsh"}],
                 classification="confidential")
    root = workspace({"datasets/raw/dk.yaml": ds})
    assert found(lint(root), "E226")[0].severity is Severity.WARNING and lint(root).exit_code == 0
    assert lint(root, strict=True).exit_code == 1


def test_setting_is_part_of_the_cached_report(workspace) -> None:
    t = transform("ingest", ["raw"], ["clean"])
    t["spec"]["owner"] = "team-a"
    root = workspace({"pipelines/ingest/dk.yaml": t})
    assert lint(root, strict=True).exit_code == 0          # cached for this state
    add_toml(root, '[lint.severity]\nW100 = "error"\n')
    assert lint(root, strict=True).exit_code == 1


def test_lint_options_are_part_of_the_cached_report(workspace) -> None:
    ds = dataset("people", columns=[PII])
    del ds["spec"]["classification"]
    root = workspace({"datasets/people/dk.yaml": ds})
    assert lint(root).exit_code == 1
    assert lint(root, skip_pii=True).exit_code == 0
    assert lint(root).exit_code == 1


# --- what dk rejects, dkb rejects, naming the field, file, line and fix --------------------------

INVALID = [
    ("no name", "pipelines/x/dk.yaml", lambda: _without(transform("x", ["raw"], ["clean"]), "metadata", "name"),
     "E006", "metadata.name"),
    ("no runtime", "pipelines/x/dk.yaml", lambda: _without(transform("x", ["raw"], ["clean"]), "spec", "runtime"),
     "E233", "spec.runtime"),
    ("no inputs", "pipelines/x/dk.yaml", lambda: transform("x", [], ["clean"]), "E230", "spec.inputs"),
    ("no outputs", "pipelines/x/dk.yaml", lambda: transform("x", ["raw"], []), "E231", "spec.outputs"),
    ("no image", "pipelines/x/dk.yaml", lambda: _without(transform("x", ["raw"], ["clean"]), "spec", "image"),
     "E232", "spec.image"),
    ("dbt no image", "pipelines/x/dk.yaml",
     lambda: _without(transform("x", ["raw"], ["clean"], runtime="dbt"), "spec", "image"), "E232", "spec.image"),
    ("dataset no store", "datasets/x/dk.yaml", lambda: _without(dataset("x"), "spec", "store"), "E220", "spec.store"),
    ("store no connector", "platform/stores/x/dk.yaml", lambda: _without(store("x"), "spec", "connector"),
     "E210", "spec.connector"),
]


def _without(doc: dict[str, Any], section: str, key: str) -> dict[str, Any]:
    del doc[section][key]
    return doc


@pytest.mark.parametrize("case, path, make, code, field", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_packages_dk_rejects_are_rejected(workspace, case, path, make, code, field) -> None:
    report = lint(workspace({path: make()}), strict=True)
    (d,) = found(report, code)
    assert d.is_error and report.exit_code == 1
    assert d.file == path and d.line > 0 and d.field == field and d.hint
    # The rendered line names the file:line, the missing field and dk's message; the hint the fix.
    from dkbuild.governance.render import render_text

    text = render_text([d])
    assert f"{path}:{d.line}:" in text and f"error {code} [{field}]" in text and f"hint: {d.hint}" in text


def test_flat_copies_still_need_what_dk_run_follows(workspace, tmp_path) -> None:
    # dk's runner resolves a Transform's datasets, their store and its connector from the package's
    # copies by name: a copy missing those fields breaks `dk run` and would be packed broken.
    ds = dataset("raw")
    del ds["spec"]["store"]
    st = store("lake")
    del st["spec"]["connector"]
    report = lint(workspace({"pipelines/ingest/dataset/raw.yaml": ds, "pipelines/ingest/store/lake.yaml": st}))
    assert found(report, "E220")[0].is_error and found(report, "E210")[0].is_error
    assert found(report, "E220")[0].file == "pipelines/ingest/dataset/raw.yaml"


def test_scalar_label_values_and_empty_sections_load_as_dk_reads_them(workspace, tmp_path) -> None:
    ds = dataset("raw")
    ds["metadata"]["labels"] = {"tier": 1, "enabled": True}
    ds["metadata"]["annotations"] = None
    report = lint(workspace({"datasets/raw/dk.yaml": ds}), strict=True)
    assert report.exit_code == 0
    labels = sorted((d.field, d.is_advisory) for d in found(report, "E105"))
    assert labels == [("metadata.labels.enabled", True), ("metadata.labels.tier", True)]
    loaded = load(workspace({"datasets/raw/dk.yaml": ds}, root=tmp_path / "again"))
    (raw,) = [m for m in loaded.result.manifests if m.name == "raw"]
    assert raw.model.metadata.labels == {"tier": "1", "enabled": "true"}
    # An empty metadata: is dk's "metadata.name is required" (a lint error), not unusable input.
    st = {"apiVersion": ds["apiVersion"], "kind": "Store", "metadata": None,
          "spec": {"connector": "postgres", "connection": {"host": "h"}}}
    report = lint(workspace({"platform/stores/x/dk.yaml": st}, root=tmp_path / "empty"))
    (d,) = found(report, "E006")
    assert d.is_error and d.file == "platform/stores/x/dk.yaml"

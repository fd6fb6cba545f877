"""`dkb governance report`: the model on the example monorepo and on a workspace with violations,
the JSON schema, filters, the text/markdown/html renderers, and the HTML rendered in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from dkbuild.api import load
from dkbuild.governance.report import (
    FilterError,
    build_report,
    parse_filters,
    render,
    schema,
)
from tests.conftest import EXAMPLE, dataset, transform

PII_DATASETS = {"crm-customers", "customers", "enriched-events", "customer-profile", "clickstream", "raw-events",
                "suspicious-activity"}


def report_of(root: Path, **kwargs):  # type: ignore[no-untyped-def]
    loaded = load(root)
    return build_report(loaded.graph, loaded.workspace.config.policy, workspace=loaded.workspace.config.workspace.name,
                        **kwargs)


@pytest.fixture(scope="module")
def example():  # type: ignore[no-untyped-def]
    return report_of(EXAMPLE)


def validate(document: dict) -> None:
    jsonschema.Draft202012Validator(schema()).validate(document)


def test_example_pii_datasets_and_packages(example) -> None:
    assert {d["name"] for d in example["datasets"] if d["has_pii"]} == PII_DATASETS
    profile = next(d for d in example["datasets"] if d["name"] == "customer-profile")
    assert profile["pii_columns"][0]["column"] == "contact_email"
    assert {"dataset": "crm-customers", "column": "email"} in profile["pii_columns"][0]["sources"]
    enrich = next(p for p in example["packages"] if p["name"] == "enrich")
    assert enrich["handles_pii"] and enrich["reads"] == ["customers", "raw-events"]
    assert enrich["writes"] == ["enriched-events"] and enrich["owner"] == "web-analytics"
    assert enrich["namespace"] == "analytics" and enrich["classification"] == "restricted"
    customers = next(d for d in example["datasets"] if d["name"] == "customers")
    assert (customers["owner"], customers["owner_source"], customers["namespace"]) == ("data-platform", "producer",
                                                                                       "ingest")
    s = example["summary"]
    assert s["packages"] == 10 and s["datasets_with_pii"] == 7
    assert s["packages_with_pii"] == sum(p["handles_pii"] for p in example["packages"])


def test_example_flows_masking_into_marketing_audience(example) -> None:
    flows = example["flows"]["flows"]
    masked = [f for f in flows if f["sink"]["dataset"] == "marketing-audience"]
    assert len(masked) == 1 and masked[0]["masked"] and masked[0]["downgrade"] and masked[0]["cross_boundary"]
    assert masked[0]["source"] == {"dataset": "crm-customers", "column": "email"}
    assert masked[0]["hops"] == 4 and masked[0]["path"][-1]["via"] == "audience-export"
    assert masked[0]["path"][-1]["masking"] == "hash"
    direct = next(f for f in flows if f["sink"] == {"dataset": "customers", "column": "email"})
    assert direct["hops"] == 1 and not direct["cross_boundary"]
    assert example["summary"]["cross_boundary_flows"] == sum(f["cross_boundary"] for f in flows) > 0
    assert {"dataset": "clickstream", "column": "ip_address"} in example["flows"]["sources"]


def test_example_all_policies_pass(example) -> None:
    assert [p["status"] for p in example["policies"]] == ["pass"] * 5
    assert [p["code"] for p in example["policies"][:3]] == ["E600", "E601", "E602"]
    assert example["summary"]["compliance_percent"] == 100.0
    validate(example)


def violations_ws(workspace) -> Path:  # type: ignore[no-untyped-def]
    return workspace({
        "workspace.toml": '[workspace]\nname = "bad"\n',
        "datasets/people/dk.yaml": dataset("people", columns=[{"name": "id", "type": "integer"},
                                                              {"name": "email", "type": "string", "pii": True}]),
        "datasets/copy/dk.yaml": dataset("copy", columns=[{"name": "email", "type": "string",
                                                           "from": "people.email"}]),
        "datasets/loose/dk.yaml": {**dataset("loose"), "spec": {"store": "lake", "table": "loose",
                                                                "schema": [{"name": "id", "type": "integer"}]}},
        "pipelines/copier/dk.yaml": transform("copier", ["people"], ["copy"]),
    })


def test_violations_fail_with_files(workspace) -> None:
    report = report_of(violations_ws(workspace))
    validate(report)
    by_id = {p["id"]: p for p in report["policies"]}
    assert by_id["pii_classification"]["status"] == "fail"
    assert by_id["pii_classification"]["files"] == ["datasets/people/dk.yaml"]
    assert "people" in by_id["pii_classification"]["violations"][0]["message"]
    assert by_id["pii_propagation"]["files"] == ["datasets/copy/dk.yaml"]
    assert by_id["classification_present"]["files"] == ["datasets/loose/dk.yaml"]
    assert by_id["owner_defined"]["status"] == "fail"    # the basic transforms carry no owner/team
    assert by_id["classification_downgrade"]["status"] == "pass"
    assert report["summary"]["policies_failed"] == 4 and report["summary"]["compliance_percent"] == 20.0


def test_policy_off_and_warning(workspace) -> None:
    root = violations_ws(workspace)
    (root / "workspace.toml").write_text('[workspace]\nname = "bad"\n[policy]\npii_classification = "off"\n'
                                         'pii_propagation = "warning"\n')
    by_id = {p["id"]: p for p in report_of(root)["policies"]}
    assert by_id["pii_classification"]["status"] == "off" and not by_id["pii_classification"]["violations"]
    assert (by_id["pii_propagation"]["status"], by_id["pii_propagation"]["level"]) == ("fail", "warning")


def test_filters(example) -> None:
    pii = report_of(EXAMPLE, filters=parse_filters(["pii=true"]))
    assert {d["name"] for d in pii["datasets"]} == PII_DATASETS
    assert all(p["handles_pii"] for p in pii["packages"]) and pii["packages"]
    no_pii = report_of(EXAMPLE, filters=parse_filters(["pii=false"]))
    assert not {d["name"] for d in no_pii["datasets"]} & PII_DATASETS
    restricted = report_of(EXAMPLE, filters=parse_filters(["classification=restricted"]))
    assert {d["name"] for d in restricted["datasets"]} == {"crm-customers", "customers", "enriched-events",
                                                           "customer-profile"}
    dbt = report_of(EXAMPLE, filters=parse_filters(["runtime=dbt"]))
    assert {p["name"] for p in dbt["packages"]} == {"customer-value", "revenue-mart"}
    ns = report_of(EXAMPLE, filters=parse_filters([], namespace="analytics"))
    assert {p["name"] for p in ns["packages"]} == {"enrich", "build-profiles", "sessionize"}
    assert all(d["namespace"] == "analytics" for d in ns["datasets"])
    assert ns["scope"]["filters"] == {"namespace": "analytics"}
    for bad in (["pii"], ["colour=red"], ["pii=maybe"], ["classification=secret"]):
        with pytest.raises(FilterError):
            parse_filters(bad)
    validate(dbt)


def test_patterns_scope_and_cli_json(dkb) -> None:
    result = dkb("governance", "report", "//pipelines/crm-sync", "--output", "json", cwd=EXAMPLE)
    assert result.code == 0, result
    doc = result.json()
    validate(doc)
    assert [p["name"] for p in doc["packages"]] == ["crm-sync"]
    assert {d["name"] for d in doc["datasets"]} == {"crm-customers", "customers"}
    assert doc["scope"]["patterns"] == ["//pipelines/crm-sync"]
    bad = dkb("governance", "report", "--filter", "nope=1", cwd=EXAMPLE)
    assert bad.code == 2 and "unknown filter key" in bad.err


def test_cli_text_markdown_and_exit(dkb, workspace, tmp_path: Path) -> None:
    text = dkb("governance", "report", "--namespace", "marketing", cwd=EXAMPLE)
    assert text.code == 0, text
    assert "audience-export" in text.out and "PASS  E600" in text.out and "crm-sync" not in text.out
    out = tmp_path / "report.md"
    md = dkb("governance", "report", "--output", "markdown", "-o", str(out), cwd=EXAMPLE)
    assert md.code == 0 and md.out == ""
    body = out.read_text()
    assert "| policy | code | status |" in body and "| marketing-audience |" in body
    assert "crm-customers.email | marketing-audience.email_sha256 | 4 | yes | masked, downgrade" in body
    root = violations_ws(workspace)
    failing = dkb("governance", "report", "--fail-on-violation", cwd=root)
    assert failing.code == 1 and "FAIL  E600" in failing.out and "datasets/people/dk.yaml" in failing.out
    assert dkb("governance", "report", cwd=root).code == 0


def test_html_is_self_contained_and_deterministic(example) -> None:
    html = render(example, "html")
    assert html == render(report_of(EXAMPLE), "html")
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<svg" in html and 'class="edge masked"' in html
    assert html.count('class="node dataset pii"') == 7


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/system-deps.sh installs it)")
def test_html_renders_in_headless_chromium(example, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(example, "html"), encoding="utf-8")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], check=False, capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr
    for name in ("crm-customers", "marketing-audience", "audience-export", "fraud-watch", "Policy compliance"):
        assert name in dom.stdout
    assert "<svg" in dom.stdout and 'class="node transform pii"' in dom.stdout
    shot = tmp_path / "report.png"
    run = subprocess.run([*flags, "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1400,1000",
                          page.as_uri()], check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_schema_is_valid_and_shipped() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert json.loads((Path(__file__).parents[1] / "dkbuild/governance/report.schema.json").read_text()) == schema()


def test_external_datasets_are_reported_and_marked(workspace, dkb) -> None:
    # dk never resolves references: a dataset no manifest defines is listed as external, not dropped.
    root = workspace({"pipelines/ext/dk.yaml": transform("ext", ["partner-feed"], ["ext-out"]),
                      "datasets/ext-out/dk.yaml": dataset("ext-out")})
    doc = report_of(root)
    validate(doc)
    rows = {d["name"]: d for d in doc["datasets"]}
    assert rows["partner-feed"]["external"] is True and rows["partner-feed"]["consumers"] == ["ext"]
    assert rows["ext-out"]["external"] is False
    classified = next(p for p in doc["policies"] if p["id"] == "classification_present")
    assert not any("partner-feed" in v["message"] for v in classified["violations"])   # not ours to fix
    text = dkb("governance", "report", "--all", cwd=root)
    assert text.code == 0 and "partner-feed" in text.out and "EXTERNAL" in text.out
    assert dkb("governance", "report", "--all", "//pipelines/...", cwd=root).code == 2

"""Issue 13 item 1: references the workspace does not define are external (a warning with any
near miss, a node marked external in lineage and governance, never dropped); copies of one
physical dataset that disagree are contract drift (a warning naming both files, an error under
--strict)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.compat import dkfixtures as dk
from tests.compat.corpus import run_dkb

NEAR_MISS = "raw-event"          # undefined; `raw-events` is defined
UNKNOWN = "partner-feed"         # undefined, nothing close to it


@pytest.fixture(scope="module")
def externals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = {                    # shared definitions where `dk connector/store create` writes them
        "connectors/s3/connector.yaml": dk.connector("s3"),
        "stores/lake/store.yaml": dk.s3_store("lake", bucket="lake"),
        "datasets/raw-events/dk.yaml": dk.dataset("raw-events", "lake"),
        "datasets/enriched/dk.yaml": dk.dataset("enriched", "lake"),
    }
    files |= dk.python_package("transforms/enrich", dk.transform("enrich", [NEAR_MISS, UNKNOWN], ["enriched"]))
    return dk.workspace(tmp_path_factory.mktemp("externals"), files)


def external_warnings(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [d for d in dk.diagnostics(doc)
            if name in (d.get("message") or "") and "external" in dk.text_of(d).lower()]


def test_an_undefined_dataset_is_an_external_warning(externals: Path) -> None:
    res = run_dkb("lint", "//...", "--output", "json", cwd=externals)
    assert res.code == 0, res
    doc = res.json()
    for name in (NEAR_MISS, UNKNOWN):
        found = external_warnings(doc, name)
        assert found and all(d["severity"] == "warning" for d in found), \
            f"a warning that calls {name} external: {json.dumps(dk.diagnostics(doc), indent=1)}"
        assert found[0]["file"] == "transforms/enrich/dk.yaml", found


def test_the_external_warning_names_the_near_miss(externals: Path) -> None:
    doc = run_dkb("lint", "//...", "--output", "json", cwd=externals).json()
    (near,) = external_warnings(doc, NEAR_MISS)
    assert "did you mean" in dk.text_of(near).lower() and "raw-events" in dk.text_of(near).replace(
        f"'{NEAR_MISS}'", ""), near
    (far,) = external_warnings(doc, UNKNOWN)
    assert "did you mean" not in dk.text_of(far).lower(), far


def test_text_output_shows_the_external_warning(externals: Path) -> None:
    res = run_dkb("lint", "//...", cwd=externals)
    assert res.code == 0, res
    assert "external" in res.out.lower() and "raw-events" in res.out and UNKNOWN in res.out


@pytest.mark.parametrize("name", [NEAR_MISS, UNKNOWN])
def test_lineage_shows_the_external_dataset(externals: Path, name: str) -> None:
    res = run_dkb("lineage", name, "--output", "json", cwd=externals)
    assert res.code == 0, res
    assert dk.marked_external(res.json(), name), res.out
    down = run_dkb("lineage", "//transforms/enrich", "--upstream", "--output", "json", cwd=externals)
    assert down.code == 0, down
    assert dk.marked_external(down.json(), name), f"the upstream of //transforms/enrich keeps {name}: {down.out}"


def test_governance_report_lists_the_external_datasets(externals: Path) -> None:
    res = run_dkb("governance", "report", "--output", "json", cwd=externals)
    assert res.code == 0, res
    doc = res.json()
    for name in (NEAR_MISS, UNKNOWN):
        assert dk.marked_external(doc["datasets"], name), f"{name} marked external in {doc['datasets']}"
    (enrich,) = [p for p in doc["packages"] if p["name"] == "enrich"]
    assert {NEAR_MISS, UNKNOWN} <= set(json.dumps(enrich).replace('"', " ").split()), enrich


# --- contract drift -----------------------------------------------------------------------------

ORDERS = [{"name": "id", "type": "string"}, {"name": "amount", "type": "decimal"}]
DRIFTED = [{"name": "id", "type": "string"}, {"name": "amount", "type": "string"}]


def drift_workspace(root: Path, other_name: str) -> Path:
    """pkg-a and pkg-b each carry a copy of warehouse table public.orders; the copies disagree on a
    column type. pkg-b calls its copy `other_name` (the same name, or another one)."""
    files = {}
    for pkg, name, schema in (("a", "orders", ORDERS), ("b", other_name, DRIFTED)):
        files |= dk.python_package(f"pkg-{pkg}", dk.transform(f"pkg-{pkg}", [name], [f"report-{pkg}"]), {
            "connector/postgres.yaml": dk.connector("postgres"),
            "store/warehouse.yaml": dk.pg_store("warehouse"),
            f"dataset/{name}.yaml": dk.dataset(name, "warehouse", table="public.orders", schema=schema),
            f"dataset/report-{pkg}.yaml": dk.dataset(f"report-{pkg}", "warehouse", table=f"public.report_{pkg}"),
        })
    return dk.workspace(root, files)


DRIFT_CASES = {"same-name": "orders", "other-name": "orders-copy"}


@pytest.fixture(scope="module", params=sorted(DRIFT_CASES))
def drift(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    name = DRIFT_CASES[request.param]
    return drift_workspace(tmp_path_factory.mktemp("drift"), name), f"pkg-b/dataset/{name}.yaml"


def drift_findings(doc: dict[str, Any], other_file: str) -> list[dict[str, Any]]:
    return [d for d in dk.diagnostics(doc)
            if "pkg-a/dataset/orders.yaml" in dk.text_of(d) and other_file in dk.text_of(d)]


def test_contract_drift_is_a_warning_naming_both_files(drift: tuple[Path, str]) -> None:
    root, other_file = drift
    res = run_dkb("lint", "//...", "--output", "json", cwd=root)
    assert res.code == 0, res
    found = drift_findings(res.json(), other_file)
    assert found, f"a finding naming both copies: {res.out}"
    assert all(d["severity"] == "warning" for d in found), found


def test_contract_drift_is_an_error_under_strict(drift: tuple[Path, str]) -> None:
    root, other_file = drift
    res = run_dkb("lint", "--strict", "//...", "--output", "json", cwd=root)
    assert res.code == 1, res
    found = drift_findings(res.json(), other_file)
    assert found and any(d["severity"] == "error" for d in found), res.out

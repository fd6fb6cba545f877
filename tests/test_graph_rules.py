"""Cross-package checks, each on a real temp workspace."""

from __future__ import annotations

from dkbuild.api import load
from dkbuild.governance.graph_rules import check_graph, first_difference
from tests.conftest import dataset, store, transform


def codes(root) -> dict[str, list]:  # type: ignore[no-untyped-def]
    found: dict[str, list] = {}
    for d in check_graph(load(root).graph):
        found.setdefault(d.code, []).append(d)
    return found


def test_clean_workspace_has_no_findings(workspace) -> None:
    assert codes(workspace()) == {}


def test_external_dataset_store_connector_member_are_warnings(workspace) -> None:
    root = workspace({
        "pipelines/x/dk.yaml": transform("x", ["clen"], ["report"]),
        "datasets/y/dk.yaml": dataset("y", store="nowhere"),
        "platform/stores/s2/dk.yaml": store("s2", connector="mysql"),
        "datasets/g/dk.yaml": {"apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": "DataSetGroup",
                               "metadata": {"name": "g"}, "spec": {"store": "lake", "datasets": ["raw", "ghost"]}},
    })
    found = codes(root)
    (w500,) = found["W500"]
    assert w500.file == "pipelines/x/dk.yaml" and w500.field == "spec.inputs[0].dataset"
    assert "external" in w500.message and "did you mean 'clean'" in w500.hint and w500.line > 0
    (w501,) = found["W501"]
    assert w501.field == "spec.store" and "nowhere" in w501.message
    (w502,) = found["W502"]
    assert "mysql" in w502.message
    (w503,) = found["W503"]
    assert w503.field == "spec.datasets[1]"
    assert all(d.severity.value == "warning" for d in (w500, w501, w502, w503))


def test_conflicting_shared_definitions_name_both_files_and_the_difference(workspace) -> None:
    root = workspace({"more/raw/dk.yaml": dataset("raw", table="raw_v2")})
    (d,) = codes(root)["E504"]
    assert {d.file, *d.related} == {"more/raw/dk.yaml", "datasets/raw/dk.yaml"}
    assert "spec.table" in d.message and d.field == "spec.table"


def test_a_package_copy_at_another_place_is_no_finding(workspace) -> None:
    # The package's own copy points at another table: a different physical dataset, not drift.
    root = workspace({"pipelines/ingest/dataset/raw.yaml": dataset("raw", table="raw_v2")})
    assert codes(root) == {}


def test_contract_drift_names_both_copies(workspace) -> None:
    drifted = dataset("raw", columns=[{"name": "id", "type": "string"}])     # same store and table
    root = workspace({"pipelines/ingest/dataset/raw.yaml": drifted})
    (d,) = codes(root)["W510"]
    assert d.file == "pipelines/ingest/dataset/raw.yaml" and d.related == ("datasets/raw/dk.yaml",)
    assert "contract drift" in d.message and "spec.schema[0].type" in d.message and d.line > 0


def test_drift_between_two_package_copies(workspace) -> None:
    a = dataset("events", columns=[{"name": "id", "type": "string"}])
    b = dataset("events", columns=[{"name": "id", "type": "integer"}])
    root = workspace({"pipelines/a/dk.yaml": transform("a", ["events"], ["out-a"]),
                      "pipelines/a/dataset/events.yaml": a,
                      "pipelines/b/dk.yaml": transform("b", ["events"], ["out-b"]),
                      "pipelines/b/dataset/events.yaml": b,
                      "datasets/out-a/dk.yaml": dataset("out-a"), "datasets/out-b/dk.yaml": dataset("out-b")})
    (d,) = codes(root)["W510"]
    assert {d.file, *d.related} == {"pipelines/a/dataset/events.yaml", "pipelines/b/dataset/events.yaml"}


def test_dataset_with_two_producers(workspace) -> None:
    root = workspace({"pipelines/second/dk.yaml": transform("second", ["raw"], ["clean"])})
    found = codes(root)["W505"]
    assert {d.file for d in found} == {"pipelines/ingest/dk.yaml", "pipelines/second/dk.yaml"}
    assert all("//pipelines/ingest" in d.message and "//pipelines/second" in d.message for d in found)


def test_data_cycle(workspace) -> None:
    root = workspace({"pipelines/loop/dk.yaml": transform("loop", ["report"], ["raw"])})
    (d,) = codes(root)["W506"]
    assert "//datasets/raw" in d.message and "->" in d.message


def test_dangling_columns(workspace) -> None:
    root = workspace({"datasets/derived/dk.yaml": dataset("derived", columns=[
        {"name": "a", "type": "integer", "from": "raw.idd"},
        {"name": "b", "type": "integer", "from": "rav.id"},
    ])})
    found = codes(root)
    (missing_column,) = found["W517"]
    (external,) = found["W507"]
    assert missing_column.field == "spec.schema[0].from" and "raw.id" in missing_column.hint
    assert external.field == "spec.schema[1].from" and "raw.id" in external.hint and "external" in external.message


def test_group_member_in_other_store(workspace) -> None:
    root = workspace({
        "platform/stores/other/dk.yaml": store("other"),
        "datasets/elsewhere/dk.yaml": dataset("elsewhere", store="other"),
        "datasets/g/dk.yaml": {"apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": "DataSetGroup",
                               "metadata": {"name": "g"}, "spec": {"store": "lake", "datasets": ["raw", "elsewhere"]}},
    })
    (d,) = codes(root)["W508"]
    assert d.severity.value == "warning"


def test_unmatched_tag_selector(workspace) -> None:
    t = transform("tags", [], ["report2"])
    t["spec"]["inputs"] = [{"tags": {"domain": "nothing"}}]
    root = workspace({"pipelines/tags/dk.yaml": t, "datasets/report2/dk.yaml": dataset("report2")})
    (d,) = codes(root)["W509"]
    assert "domain=nothing" in d.message


def test_first_difference() -> None:
    assert first_difference({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 3]}) == ("b", 1)
    assert first_difference({"a": 1}, {"a": 1, "c": 2}) == ("c",)

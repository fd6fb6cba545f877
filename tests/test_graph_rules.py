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


def test_dangling_dataset_store_connector_member(workspace) -> None:
    root = workspace({
        "pipelines/x/dk.yaml": transform("x", ["clen"], ["report"]),
        "datasets/y/dk.yaml": dataset("y", store="nowhere"),
        "platform/stores/s2/dk.yaml": store("s2", connector="mysql"),
        "datasets/g/dk.yaml": {"apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": "DataSetGroup",
                               "metadata": {"name": "g"}, "spec": {"store": "lake", "datasets": ["raw", "ghost"]}},
    })
    found = codes(root)
    (e500,) = found["E500"]
    assert e500.file == "pipelines/x/dk.yaml" and e500.field == "spec.inputs[0].dataset"
    assert "clean" in e500.hint and e500.line > 0
    (e501,) = found["E501"]
    assert e501.field == "spec.store" and "nowhere" in e501.message
    (e502,) = found["E502"]
    assert "mysql" in e502.message
    (e503,) = found["E503"]
    assert e503.field == "spec.datasets[1]"


def test_conflicting_copies_name_both_files_and_the_difference(workspace) -> None:
    root = workspace({"pipelines/ingest/dataset/raw.yaml": dataset("raw", table="raw_v2")})
    (d,) = codes(root)["E504"]
    assert d.file == "pipelines/ingest/dataset/raw.yaml"
    assert d.related == ("datasets/raw/dk.yaml",)
    assert "spec.table" in d.message and d.field == "spec.table"


def test_dataset_with_two_producers(workspace) -> None:
    root = workspace({"pipelines/second/dk.yaml": transform("second", ["raw"], ["clean"])})
    found = codes(root)["E505"]
    assert {d.file for d in found} == {"pipelines/ingest/dk.yaml", "pipelines/second/dk.yaml"}
    assert all("//pipelines/ingest" in d.message and "//pipelines/second" in d.message for d in found)


def test_data_cycle(workspace) -> None:
    root = workspace({"pipelines/loop/dk.yaml": transform("loop", ["report"], ["raw"])})
    (d,) = codes(root)["E506"]
    assert "//datasets/raw" in d.message and "->" in d.message


def test_dangling_columns(workspace) -> None:
    root = workspace({"datasets/derived/dk.yaml": dataset("derived", columns=[
        {"name": "a", "type": "integer", "from": "raw.idd"},
        {"name": "b", "type": "integer", "from": "rav.id"},
    ])})
    found = codes(root)["E507"]
    assert [d.field for d in found] == ["spec.schema[0].from", "spec.schema[1].from"]
    assert "raw.id" in found[0].hint and "raw.id" in found[1].hint


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
    (d,) = codes(root)["E509"]
    assert "domain=nothing" in d.message


def test_first_difference() -> None:
    assert first_difference({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 3]}) == ("b", 1)
    assert first_difference({"a": 1}, {"a": 1, "c": 2}) == ("c",)

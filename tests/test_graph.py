from __future__ import annotations

import pytest

from dkbuild.api import load
from dkbuild.graph.labels import PatternError
from dkbuild.graph.select import select
from tests.conftest import dataset, store, transform


def edges(graph):  # type: ignore[no-untyped-def]
    return {(e.src, e.kind.value, e.dst) for e in graph.edges}


def test_typed_edges(workspace) -> None:
    loaded = load(workspace())
    g = loaded.graph
    assert ("//pipelines/ingest", "reads", "//datasets/raw") in edges(g)
    assert ("//pipelines/ingest", "writes", "//datasets/clean") in edges(g)
    assert ("//datasets/raw", "store", "//platform/stores/lake") in edges(g)
    assert ("//platform/stores/lake", "connector", "//platform/connectors/postgres") in edges(g)
    assert g.nodes["//pipelines/ingest"].kind == "Transform"


def test_group_and_column_edges(workspace) -> None:
    root = workspace({
        "datasets/people/dk.yaml": dataset("people", columns=[{"name": "email", "type": "string", "pii": True}],
                                           classification="confidential"),
        "datasets/contacts/dk.yaml": dataset("contacts", classification="confidential", columns=[
            {"name": "mail", "type": "string", "pii": True, "from": "people.email"}]),
        "datasets/group/dk.yaml": {"apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": "DataSetGroup",
                                   "metadata": {"name": "group"}, "spec": {"store": "lake", "datasets": ["raw", "clean"]}},
    })
    g = load(root).graph
    assert ("//datasets/group", "member", "//datasets/raw") in edges(g)
    assert ("//datasets/group", "store", "//platform/stores/lake") in edges(g)
    assert not any(e.dst == "//datasets/people" for e in g.edges)    # lineage is not a build dependency
    (col,) = g.columns
    assert (col.src, col.src_column, col.dst, col.dst_column) == ("//datasets/people", "email", "//datasets/contacts", "mail")


def test_identical_copies_merge_into_one_node(workspace) -> None:
    # A package carries its own copy of a shared contract, formatted differently.
    copy = "# local copy\nspec: {store: lake, table: raw, classification: internal, schema: [{name: id, type: integer}]}\n" \
           "kind: DataSet\nmetadata: {name: raw}\napiVersion: datakit.infoblox.dev/v1alpha1\n"
    g = load(workspace({"pipelines/ingest/dataset/raw.yaml": copy})).graph
    node = g.lookup("DataSet", "raw")
    assert node.id == "//datasets/raw"
    assert node.labels == ("//datasets/raw:raw", "//pipelines/ingest:raw")
    assert g.aliases["//pipelines/ingest:raw"] == "//datasets/raw"
    assert not g.conflicts


def s3_store(bucket: str) -> dict:
    body = store("s3")
    body["spec"]["connection"] = {"bucket": bucket}
    return body


def test_faithful_copies_in_several_packages_all_alias_the_shared_target(workspace) -> None:
    g = load(workspace({"pipelines/ingest/dataset/raw.yaml": dataset("raw"),
                        "pipelines/publish/dataset/raw.yaml": dataset("raw")})).graph
    assert g.nodes["//datasets/raw"].labels == ("//datasets/raw:raw", "//pipelines/ingest:raw",
                                                "//pipelines/publish:raw")


def test_a_differing_package_copy_is_that_packages_own_target(workspace) -> None:
    # As in dk: the package's own copy wins inside the package; everyone else sees the shared one.
    g = load(workspace({"pipelines/ingest/dataset/raw.yaml": dataset("raw", table="elsewhere"),
                        "pipelines/other/dk.yaml": transform("other", ["raw"], ["other-out"]),
                        "datasets/other-out/dk.yaml": dataset("other-out")})).graph
    assert not g.conflicts
    own = g.nodes["//pipelines/ingest:raw"]
    assert own.scope == "pipelines/ingest" and own.manifest.file == "pipelines/ingest/dataset/raw.yaml"
    assert ("//pipelines/ingest", "reads", "//pipelines/ingest:raw") in edges(g)
    assert ("//pipelines/other", "reads", "//datasets/raw") in edges(g)
    assert g.lookup("DataSet", "raw").id == "//datasets/raw"


def _two_packages_with_own_s3(dataset_of: dict[str, str]) -> dict[str, object]:
    """pipelines/a and pipelines/b, each with its own, different `s3` Store and the given DataSet
    copies ({package: dataset name}) on it; each Transform reads its package's dataset."""
    files: dict[str, object] = {}
    for package, name in dataset_of.items():
        files[f"pipelines/{package}/dk.yaml"] = transform(package, [name], [f"out-{package}"])
        files[f"pipelines/{package}/store/s3.yaml"] = s3_store(f"bucket-{package}")
        files[f"pipelines/{package}/dataset/{name}.yaml"] = dataset(name, store="s3")
    return files


def test_divergent_copies_in_two_packages_are_two_targets(workspace) -> None:
    g = load(workspace(_two_packages_with_own_s3({"a": "in-a", "b": "in-b"}))).graph
    assert ("//pipelines/a:in-a", "store", "//pipelines/a:s3") in edges(g)
    assert ("//pipelines/b:in-b", "store", "//pipelines/b:s3") in edges(g)
    assert not g.conflicts


def test_identical_copies_with_different_references_stay_apart(workspace) -> None:
    # Same text, but each package's copy of the store it names differs: not one target.
    g = load(workspace(_two_packages_with_own_s3({"a": "shared-in", "b": "shared-in"}))).graph
    assert ("//pipelines/a", "reads", "//pipelines/a:shared-in") in edges(g)
    assert ("//pipelines/b", "reads", "//pipelines/b:shared-in") in edges(g)


def test_namespaces_tell_two_transforms_apart(workspace) -> None:
    a, b = transform("ingest", ["raw"], ["out-a"]), transform("ingest", ["raw"], ["out-b"])
    a["metadata"]["namespace"], b["metadata"]["namespace"] = "team-a", "team-b"
    g = load(workspace({"team-a/ingest/dk.yaml": a, "team-b/ingest/dk.yaml": b,
                        "datasets/out-a/dk.yaml": dataset("out-a"), "datasets/out-b/dk.yaml": dataset("out-b")})).graph
    assert {"//team-a/ingest", "//team-b/ingest"} <= set(g.nodes)
    assert not g.conflicts


def test_differing_shared_definitions_are_a_conflict(workspace) -> None:
    g = load(workspace({"more/raw/dk.yaml": dataset("raw", table="elsewhere")})).graph
    (conflict,) = g.conflicts
    assert {d.file for d in conflict.definitions} == {"datasets/raw/dk.yaml", "more/raw/dk.yaml"}


def test_undefined_references_lead_to_external_nodes(workspace) -> None:
    g = load(workspace({"pipelines/orphan/dk.yaml": transform("orphan", ["nope"], ["raw2"]),
                        "datasets/raw2/dk.yaml": dataset("raw2", store="missing-store")})).graph
    external = {(e.node, e.kind, e.name) for e in g.externals}
    assert ("//pipelines/orphan", "DataSet", "nope") in external
    assert ("//datasets/raw2", "Store", "missing-store") in external
    assert ("//pipelines/orphan", "reads", "@external//dataset:nope") in edges(g)
    assert g.nodes["@external//store:missing-store"].external
    assert "@external//dataset:nope" not in select(g, ["//..."])


def test_tag_references_resolve_against_dataset_labels(workspace) -> None:
    tagged = dataset("tagged")
    tagged["metadata"]["labels"] = {"domain": "sales", "tier": "gold"}
    t = transform("by-tag", [], ["clean2"])
    t["spec"]["inputs"] = [{"tags": {"domain": "sales"}}]
    g = load(workspace({"datasets/tagged/dk.yaml": tagged, "pipelines/by-tag/dk.yaml": t,
                        "datasets/clean2/dk.yaml": dataset("clean2")})).graph
    assert ("//pipelines/by-tag", "reads", "//datasets/tagged") in edges(g)


def test_scaffold_and_flat_layouts(workspace) -> None:
    g = load(workspace({
        "datasets/users/dataset.yaml": dataset("users"),
        "pipelines/ingest/store/extra.yaml": store("extra"),
    })).graph
    assert "//datasets/users" in g.nodes
    assert select(g, ["//datasets/users"]) == {"//datasets/users"}
    assert "//pipelines/ingest:extra" in g.nodes


def test_patterns_select(workspace) -> None:
    g = load(workspace()).graph
    assert select(g, ["//pipelines/..."]) == {"//pipelines/ingest", "//pipelines/publish"}
    assert select(g, ["//...", "-//datasets/...", "-//platform/..."]) == {"//pipelines/ingest", "//pipelines/publish"}
    assert select(g, ["//pipelines/ingest:all"]) == {"//pipelines/ingest"}
    assert select(g, ["//pipelines/ingest:ingest"]) == {"//pipelines/ingest"}
    assert select(g, [":ingest"], current_package="pipelines/ingest") == {"//pipelines/ingest"}


def test_unknown_label_suggests_close_match(workspace) -> None:
    g = load(workspace()).graph
    with pytest.raises(PatternError) as err:
        select(g, ["//pipelines/ingst"])
    assert "//pipelines/ingest" in err.value.hint
    with pytest.raises(PatternError):
        select(g, ["//nothing/..."])


def test_multi_document_dk_yaml_default_target(workspace) -> None:
    root = workspace({"pipelines/multi/dk.yaml": [dataset("multi-out"), transform("multi", ["raw"], ["multi-out"])]})
    g = load(root).graph
    assert select(g, ["//pipelines/multi"]) == {"//pipelines/multi"}
    assert g.nodes["//pipelines/multi"].kind == "Transform"


def test_ambiguous_default_target(workspace) -> None:
    g = load(workspace({"platform/pair/dk.yaml": [dataset("p1"), dataset("p2")]})).graph
    with pytest.raises(PatternError) as err:
        select(g, ["//platform/pair"])
    assert "ambiguous" in str(err.value)
    assert select(g, ["//platform/pair:all"]) == {"//platform/pair:p1", "//platform/pair:p2"}

"""`dkb query` and `dkb graph` end to end on the example monorepo and temp workspaces."""

from __future__ import annotations

from tests.conftest import EXAMPLE


def test_deps_prints_labels_one_per_line_sorted(dkb) -> None:
    res = dkb("query", "deps(//pipelines/enrich)", cwd=EXAMPLE)
    assert res.code == 0, res
    lines = res.out.splitlines()
    assert lines == sorted(lines)
    assert {"//pipelines/enrich", "//datasets/raw-events", "//datasets/customers", "//datasets/enriched-events",
            "//platform/stores/lake-raw", "//platform/connectors/aws-s3"} <= set(lines)
    assert "//pipelines/sessionize" not in lines


def test_rdeps_json_carries_keys(dkb) -> None:
    res = dkb("query", "rdeps(//..., //datasets/raw-events)", "--output", "json", cwd=EXAMPLE)
    assert res.code == 0, res
    targets = {t["label"]: t for t in res.json()["targets"]}
    assert {"//datasets/raw-events", "//pipelines/enrich", "//pipelines/sessionize",
            "//pipelines/clickstream-landing"} <= set(targets)
    assert all(len(t["key"]) == 64 for t in targets.values())
    assert targets["//pipelines/enrich"]["kind"] == "Transform"


def test_label_kind_and_set_operators(dkb) -> None:
    res = dkb("query", "kind(Transform, //...) - attr(spec.runtime, dbt, //...)", "-o", "label_kind", cwd=EXAMPLE)
    assert res.code == 0, res
    assert all(line.startswith("Transform //") for line in res.out.splitlines())
    assert "//pipelines/revenue-mart" not in res.out and "//pipelines/enrich" in res.out


def test_syntax_error_points_at_column(dkb) -> None:
    res = dkb("query", "deps(//pipelines/enrich", cwd=EXAMPLE)
    assert res.code == 2
    assert "syntax error" in res.err and "^" in res.err


def test_unknown_function_suggests(dkb) -> None:
    res = dkb("query", "dep(//...)", cwd=EXAMPLE)
    assert res.code == 2 and "deps" in res.err


def test_unknown_label_suggests(dkb) -> None:
    res = dkb("query", "deps(//pipelines/enrch)", "--output", "json", cwd=EXAMPLE)
    assert res.code == 2
    assert "//pipelines/enrich" in res.json()["errors"][0]["hint"]


def test_relative_labels_from_a_package_dir(dkb) -> None:
    res = dkb("query", ":enrich", cwd=EXAMPLE / "pipelines" / "enrich")
    assert res.out.strip() == "//pipelines/enrich"


def test_graph_formats(dkb) -> None:
    dot = dkb("graph", "//pipelines/enrich", "--output", "dot", cwd=EXAMPLE)
    assert dot.code == 0 and dot.out.startswith("digraph") and '"//pipelines/enrich" -> "//datasets/raw-events"' in dot.out
    mermaid = dkb("graph", "//pipelines/...", "--output", "mermaid", cwd=EXAMPLE)
    assert mermaid.out.startswith("flowchart LR") and "-->|reads|" in mermaid.out
    js = dkb("graph", "//pipelines/enrich", "--no-deps", "--output", "json", cwd=EXAMPLE).json()
    assert [t["label"] for t in js["targets"]] == ["//pipelines/enrich"]


def test_query_answers_for_the_rest_and_names_what_it_skipped(workspace, dkb) -> None:
    root = workspace({"datasets/bad/dk.yaml": "kind: [\n"})
    res = dkb("query", "//...", cwd=root)
    assert res.code == 0 and "//pipelines/ingest" in res.out
    assert "skipped 1 manifest file(s)" in res.err and "datasets/bad/dk.yaml" in res.err
    js = dkb("query", "//...", "--output", "json", cwd=root)
    assert js.code == 0 and js.json()          # stdout stays one JSON document

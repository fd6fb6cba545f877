"""Static lineage: dataset and column walks, PII propagation and flows, query functions, CLI."""

from __future__ import annotations

import pytest

from dkbuild.api import load
from dkbuild.graph.labels import PatternError
from dkbuild.lineage import query as lineage_query  # noqa: F401  (registers the functions)
from dkbuild.lineage.pii import pii_columns, pii_flows
from dkbuild.lineage.query import evaluate_with_reasons, resolve
from dkbuild.lineage.walk import DOWN, UP, column_lineage, dataset_lineage
from tests.conftest import EXAMPLE, dataset, transform


@pytest.fixture(scope="module")
def example():
    return load(EXAMPLE).graph


def col(name: str, **extra):
    return {"name": name, "type": "string", **extra}


# -- dataset level ---------------------------------------------------------------------------------

def test_diamond_has_no_duplicates_and_respects_depth(example):
    walk = dataset_lineage(example, ["//datasets/raw-events"], DOWN)
    assert len(walk.nodes) == len(set(walk.nodes))
    assert "//pipelines/build-profiles" in walk.reached
    # build-profiles is reached through both branches of the diamond; both edges are kept.
    into = [a for a, b in walk.edges if b == "//pipelines/build-profiles"]
    assert sorted(into) == ["//datasets/enriched-events", "//datasets/sessions"]
    assert walk.reached["//datasets/customer-profile"].path == (
        "//datasets/raw-events", "//pipelines/enrich", "//datasets/enriched-events",
        "//pipelines/build-profiles", "//datasets/customer-profile")

    one = dataset_lineage(example, ["//datasets/raw-events"], DOWN, depth=1)
    assert set(one.reached) == {"//datasets/raw-events", "//pipelines/enrich", "//datasets/enriched-events",
                                "//pipelines/sessionize", "//datasets/sessions"}
    assert dataset_lineage(example, ["//datasets/raw-events"], DOWN, depth=0).nodes == ["//datasets/raw-events"]


def test_upstream_dataset_lineage(example):
    walk = dataset_lineage(example, ["//datasets/customer-profile"], UP)
    assert {"//datasets/crm-customers", "//datasets/clickstream", "//pipelines/crm-sync"} <= set(walk.reached)
    assert "//datasets/marketing-audience" not in walk.reached
    assert walk.reached["//datasets/sessions"].depth == 1
    # data-flow edges point from the upstream dataset to the transform
    assert ("//datasets/sessions", "//pipelines/build-profiles") in walk.data_edges()


# -- column level ----------------------------------------------------------------------------------

def test_multi_hop_renamed_email_and_masking_does_not_stop_lineage(example):
    walk = column_lineage(example, [("//datasets/crm-customers", "email")], DOWN)
    profile = walk.reached[("//datasets/customer-profile", "contact_email")]
    assert profile.depth == 3
    assert [(h.dataset, h.column, h.via) for h in profile.path] == [
        ("//datasets/crm-customers", "email", None),
        ("//datasets/customers", "email", "//pipelines/crm-sync"),
        ("//datasets/enriched-events", "user_email", "//pipelines/enrich"),
        ("//datasets/customer-profile", "contact_email", "//pipelines/build-profiles"),
    ]
    masked = walk.reached[("//datasets/marketing-audience", "email_sha256")]
    assert masked.masked and masked.masking == "hash" and masked.via == "//pipelines/audience-export"


def test_column_upstream(example):
    walk = column_lineage(example, [("//datasets/marketing-audience", "email_sha256")], UP)
    assert ("//datasets/crm-customers", "email") in walk.reached
    assert walk.reached[("//datasets/customer-profile", "contact_email")].via == "//pipelines/audience-export"
    short = column_lineage(example, [("//datasets/marketing-audience", "email_sha256")], UP, depth=2)
    assert set(short.reached) == {("//datasets/marketing-audience", "email_sha256"),
                                  ("//datasets/customer-profile", "contact_email"),
                                  ("//datasets/enriched-events", "user_email")}


def small(workspace, extra=None):
    files = {
        "datasets/src/dk.yaml": dataset("src", classification="restricted",
                                        columns=[col("id"), col("mail", pii=True)]),
        "datasets/mid/dk.yaml": dataset("mid", classification="restricted",
                                        columns=[col("addr", **{"from": "src.mail"}),
                                                 col("oops", **{"from": "src.nope"})]),
        "datasets/out/dk.yaml": dataset("out", classification="public",
                                        columns=[col("contact", **{"from": "mid.addr"}),
                                                 col("digest", **{"from": "mid.addr", "masking": "hash"})]),
        "datasets/last/dk.yaml": dataset("last", classification="public",
                                         columns=[col("d2", **{"from": "out.digest"})]),
        "pipelines/a/dk.yaml": {**transform("a", ["src"], ["mid"]),
                                "metadata": {"name": "a", "version": "1.0.0", "namespace": "ingest"}},
        "pipelines/b/dk.yaml": {**transform("b", ["mid"], ["out"]),
                                "metadata": {"name": "b", "version": "1.0.0", "namespace": "marketing"}},
        "pipelines/c/dk.yaml": transform("c", ["out"], ["last"]),
        **(extra or {}),
    }
    return load(workspace(files)).graph


def test_unresolvable_from_is_reported(workspace):
    graph = small(workspace)
    up = column_lineage(graph, [("//datasets/mid", "oops")], UP)
    assert [(u.dataset, u.column, u.ref) for u in up.unresolved] == [("//datasets/mid", "oops", "src.nope")]
    down = column_lineage(graph, [("//datasets/src", "mail")], DOWN)
    assert any(u.ref == "src.nope" for u in down.unresolved)


def test_derived_pii_and_masking_stops_it(workspace):
    graph = small(workspace)
    columns = pii_columns(graph)
    assert columns[("//datasets/src", "mail")].declared
    derived = columns[("//datasets/out", "contact")]
    assert not derived.declared and derived.sources == (("//datasets/src", "mail"),)
    assert [h.column for h in derived.path] == ["mail", "addr", "contact"]
    assert ("//datasets/out", "digest") not in columns        # masked
    assert ("//datasets/last", "d2") not in columns           # beyond the masking
    # ... but lineage goes on through the masking
    walk = column_lineage(graph, [("//datasets/src", "mail")], DOWN)
    assert ("//datasets/last", "d2") in walk.reached


def test_pii_flows_flags(workspace):
    graph = small(workspace)
    flows = {f.sink: f for f in pii_flows(graph)}
    assert set(flows) == {("//datasets/mid", "addr"), ("//datasets/out", "contact"), ("//datasets/out", "digest")}
    mid, contact, digest = flows[("//datasets/mid", "addr")], flows[("//datasets/out", "contact")], \
        flows[("//datasets/out", "digest")]
    assert not mid.downgrade and not mid.crosses_namespace and mid.hops == 1
    assert contact.downgrade and contact.crosses_namespace and not contact.masked
    assert (contact.source_namespace, contact.sink_namespace) == ("ingest", "marketing")
    assert digest.masked and digest.masking == "hash" and digest.hops == 2


def test_example_pii_flows(example):
    flows = {(f.source, f.sink): f for f in pii_flows(example)}
    src = ("//datasets/crm-customers", "email")
    profile = flows[(src, ("//datasets/customer-profile", "contact_email"))]
    assert profile.hops == 3 and profile.crosses_namespace and not profile.masked
    audience = flows[(src, ("//datasets/marketing-audience", "email_sha256"))]
    assert audience.masked and audience.downgrade
    # only origins are sources: customers.email is reached from crm-customers.email
    assert not any(f.source == ("//datasets/customers", "email") for f in flows.values())


# -- query functions -------------------------------------------------------------------------------

def q(graph, expr):
    return evaluate_with_reasons(expr, graph)


def test_produces_consumes(example):
    ids, reasons = q(example, "produces(//..., raw-events) + consumes(//..., raw-events)")
    assert ids == {"//pipelines/clickstream-landing", "//pipelines/enrich", "//pipelines/sessionize"}
    assert reasons["//pipelines/enrich"] == ["reads //datasets/raw-events (spec.inputs[0].dataset)"]
    ids, _ = q(example, "produces(//pipelines/..., //datasets/customers)")
    assert ids == {"//pipelines/crm-sync"}
    ids, _ = q(example, "consumes(//pipelines/..., 'kind(DataSet, //datasets/customer-profile)')")
    assert ids == {"//pipelines/audience-export"}


def test_pii_function(example):
    ids, reasons = q(example, "pii(//datasets/...)")
    assert "//datasets/customer-profile" in ids and "//datasets/marketing-audience" not in ids
    assert "//datasets/daily-revenue" not in ids
    assert any("declared pii" in r for r in reasons["//datasets/customers"])


def test_impact_dataset_and_column(example):
    ids, reasons = q(example, "impact(raw-events)")
    assert {"//pipelines/sessionize", "//datasets/marketing-audience", "//datasets/raw-events"} <= ids
    assert "//datasets/customers" not in ids
    assert "//pipelines/enrich" in reasons["//datasets/enriched-events"][0]
    ids, reasons = q(example, "impact(customers.email)")
    assert ids == {"//datasets/customers", "//datasets/enriched-events", "//datasets/customer-profile",
                   "//datasets/marketing-audience", "//pipelines/enrich", "//pipelines/build-profiles",
                   "//pipelines/audience-export"}
    assert "masked: hash" in reasons["//datasets/marketing-audience"][0]


def test_impact_stops_at_masking_for_pii(workspace):
    graph = small(workspace)
    ids, _ = q(graph, "impact(src.mail)")
    assert "//datasets/out" in ids and "//datasets/last" not in ids
    ids, _ = q(graph, "impact(//datasets/src)")             # dataset level: no masking stop
    assert "//datasets/last" in ids


def test_lineage_function(example):
    ids, _ = q(example, "lineage(customer-profile, up, 1)")
    assert ids == {"//datasets/customer-profile", "//pipelines/build-profiles", "//datasets/enriched-events",
                   "//datasets/sessions"}
    ids, _ = q(example, "lineage(//datasets/customers, down)")
    assert "//datasets/marketing-audience" in ids and "//datasets/crm-customers" not in ids
    ids, _ = q(example, "lineage(marketing-audience.email_sha256, up)")
    assert "//datasets/crm-customers" in ids and "//datasets/raw-events" not in ids


def test_classification_function(example):
    ids, _ = q(example, "classification(restricted, //...)")
    assert ids == {"//datasets/crm-customers", "//datasets/customers", "//datasets/enriched-events",
                   "//datasets/customer-profile"}
    ids, _ = q(example, 'classification(">=confidential", //...) - classification(restricted, //...)')
    assert "//datasets/raw-events" in ids and "//datasets/customers" not in ids
    assert "//datasets/daily-revenue" not in ids


def test_resolve_errors_suggest(example):
    with pytest.raises(PatternError) as exc:
        resolve(example, "customers.emial")
    assert "customers.email" in exc.value.hint
    with pytest.raises(PatternError) as exc:
        resolve(example, "raw-event")
    assert "raw-events" in exc.value.hint
    with pytest.raises(PatternError):
        q(example, "classification(secret, //...)")


# -- CLI -------------------------------------------------------------------------------------------

def test_cli_text_tree(dkb):
    r = dkb("lineage", "raw-events", "--downstream", cwd=EXAMPLE)
    assert r.code == 0, r
    assert "//pipelines/sessionize" in r.out and "(see above)" in r.out
    assert r.out.count("//pipelines/build-profiles") == 2          # once expanded, once referenced
    r = dkb("lineage", "customers.email", cwd=EXAMPLE)
    assert r.code == 0, r
    assert "crm-customers.email  via //pipelines/crm-sync" in r.out
    assert "marketing-audience.email_sha256  via //pipelines/audience-export  (masked: hash)" in r.out


def test_cli_json_paths(dkb):
    r = dkb("lineage", "//datasets/customers", "--columns", "--downstream", "--output", "json", cwd=EXAMPLE)
    assert r.code == 0, r
    doc = r.json()
    assert doc["level"] == "column" and "upstream" not in doc
    email = next(c for c in doc["downstream"]["columns"] if c["column"] == "contact_email")
    assert [h["column"] for h in email["path"]] == ["email", "user_email", "contact_email"]
    r = dkb("lineage", "raw-events", "--depth", "1", "-o", "json", cwd=EXAMPLE)
    doc = r.json()
    ids = [n["id"] for n in doc["downstream"]["nodes"]]
    assert "//datasets/customer-profile" not in ids and len(ids) == len(set(ids))
    assert doc["upstream"]["nodes"][1]["path"] == ["//datasets/raw-events", "//pipelines/clickstream-landing"]


def test_cli_dot_and_mermaid(dkb):
    r = dkb("lineage", "//datasets/sessions", "--upstream", "-o", "dot", cwd=EXAMPLE)
    assert r.code == 0 and r.out.startswith("digraph lineage {")
    assert '"//datasets/raw-events" -> "//pipelines/sessionize";' in r.out
    r = dkb("lineage", "customer-profile.contact_email", "--downstream", "-o", "mermaid", cwd=EXAMPLE)
    assert r.code == 0 and r.out.startswith("flowchart LR")
    assert "masked: hash" in r.out and "-.->" in r.out


def test_cli_unknown_targets_exit_2(dkb, workspace):
    r = dkb("lineage", "custmers", cwd=EXAMPLE)
    assert r.code == 2 and "customers" in r.err
    r = dkb("lineage", "customers.emial", cwd=EXAMPLE)
    assert r.code == 2 and "did you mean customers.email" in r.err
    r = dkb("lineage", "//platform/stores/lake-raw", cwd=EXAMPLE)
    assert r.code == 2 and "names no dataset or transform" in r.err
    root = workspace({"datasets/mid/dk.yaml": dataset("mid", columns=[col("x", **{"from": "raw.missing"})])})
    r = dkb("lineage", "mid.x", "--upstream", cwd=root)
    assert r.code == 0 and "unresolved from: mid.x <- raw.missing" in r.out


def test_lineage_of_a_package_by_name_or_directory_with_externals(workspace, dkb) -> None:
    root = workspace({"pipelines/ext/dk.yaml": transform("ext", ["partner-feed"], ["ext-out"]),
                      "datasets/ext-out/dk.yaml": dataset("ext-out")})
    by_name = dkb("lineage", "ext", "--output", "json", cwd=root)          # as `dk lineage <package>`
    assert by_name.code == 0, by_name
    upstream = {n["id"]: n for n in by_name.json()["upstream"]["nodes"]}
    assert upstream["@external//dataset:partner-feed"]["external"] is True
    by_dir = dkb("lineage", "./ext", cwd=root / "pipelines")
    assert by_dir.code == 0 and "@external//dataset:partner-feed (external)" in by_dir.out

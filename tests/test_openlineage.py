"""OpenLineage events: spec validity, dataset naming, secrets, run ids, transports, spool and replay."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from dkbuild.api import load
from dkbuild.lineage import events as E
from dkbuild.lineage.naming import dataset_identity
from tests.conftest import git
from tests.lineage_receiver import LineageReceiver
from tests.openlineage_validation import event_errors, registry, validate_event

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "monorepo"


@pytest.fixture(scope="module")
def example():  # type: ignore[no-untyped-def]
    return load(EXAMPLE)


def _ids(loaded, kind: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(n for n, node in loaded.graph.nodes.items() if node.kind == kind)


@pytest.fixture
def ws_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("OPENLINEAGE_URL", "OPENLINEAGE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    target = tmp_path / "ws"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".dkb", "target", "__pycache__"))
    return target


# --- validity ------------------------------------------------------------------------------------

def test_every_example_event_validates(example) -> None:  # type: ignore[no-untyped-def]
    graph, ws = example.graph, example.workspace
    transforms, datasets = _ids(example, "Transform"), _ids(example, "DataSet")
    assert len(transforms) >= 5 and len(datasets) >= 5
    events = [E.job_event(graph, t, ws) for t in transforms] + E.dataset_events(graph, datasets, ws)
    for t in transforms:
        run_id = E.new_run_id()
        events.append(E.run_event("START", graph, t, run_id, ws))
        events.append(E.run_event("RUNNING", graph, t, run_id, ws))
        events.append(E.run_event("COMPLETE", graph, t, run_id, ws))
        events.append(E.run_event("FAIL", graph, t, run_id, ws,
                                  error={"message": "container exited", "exit_code": 3}))
        events.append(E.run_event("ABORT", graph, t, run_id, ws, event_time="2026-03-15T10:00:00Z"))
    problems = [p for e in events for p in event_errors(e)]
    assert problems == []
    # Every dataset event carries our classification facet and the spec facets.
    for event in E.dataset_events(graph, datasets, ws):
        facets = event["dataset"]["facets"]
        assert {"schema", "dataSource", "dataClassification"} <= set(facets)


def test_validator_rejects_dk_style_events(example) -> None:  # type: ignore[no-untyped-def]
    graph, ws = example.graph, example.workspace
    event = E.run_event("START", graph, "//pipelines/enrich", E.new_run_id(), ws)
    validate_event(event)
    dk_like = json.loads(json.dumps(event))
    dk_like["producer"] = "dk"
    dk_like["run"]["runId"] = "enrich-20260315-100000"
    problems = event_errors(dk_like)
    assert any("producer" in p for p in problems) and any("runId" in p for p in problems)
    unknown = json.loads(json.dumps(event))
    unknown["inputs"][0]["facets"]["dataSource"]["_schemaURL"] = "https://example.com/Nope.json#/$defs/X"
    assert any("unknown facet schema" in p for p in event_errors(unknown))
    wrong_key = json.loads(json.dumps(event))
    wrong_key["inputs"][0]["facets"]["source"] = wrong_key["inputs"][0]["facets"].pop("dataSource")
    assert any("not 'source'" in p for p in event_errors(wrong_key))
    bad_facet = json.loads(json.dumps(event))
    bad_facet["outputs"][0]["facets"]["dataClassification"]["level"] = "top-secret"
    assert event_errors(bad_facet)


def test_run_events_content(example) -> None:  # type: ignore[no-untyped-def]
    graph, ws = example.graph, example.workspace
    run_id = E.new_run_id()
    start = E.run_event("START", graph, "//pipelines/enrich", run_id, ws)
    fail = E.run_event("FAIL", graph, "//pipelines/enrich", run_id, ws,
                       error={"message": "OOMKilled", "exit_code": 137})
    assert start["run"]["runId"] == fail["run"]["runId"] == run_id
    assert start["job"] == fail["job"] and start["inputs"] == fail["inputs"]
    assert start["job"]["namespace"] == "analytics" and start["job"]["name"] == "enrich"
    error = fail["run"]["facets"]["errorMessage"]
    assert "OOMKilled" in error["message"] and "137" in error["message"]
    assert error["programmingLanguage"] == "python"
    assert "errorMessage" not in start["run"]["facets"]
    assert start["job"]["facets"]["jobType"] == {**start["job"]["facets"]["jobType"],
                                                 "processingType": "BATCH", "integration": "DKB"}
    assert start["producer"].startswith("https://") and E.PRODUCER == start["producer"]
    with pytest.raises(ValueError):
        E.run_event("DONE", graph, "//pipelines/enrich", run_id, ws)
    with pytest.raises(ValueError):
        E.run_event("START", graph, "//pipelines/enrich", "enrich-20260315", ws)


def test_column_lineage_and_classification(example) -> None:  # type: ignore[no-untyped-def]
    graph, ws = example.graph, example.workspace
    event = E.dataset_events(graph, ["//datasets/customers"], ws)[0]
    facets = event["dataset"]["facets"]
    email = facets["columnLineage"]["fields"]["email"]["inputFields"][0]
    assert (email["namespace"], email["name"], email["field"]) == (
        "postgres://crm-replica.db.acme.internal:5432", "crm.public.customers", "email")
    assert email["transformations"][0]["type"] == "DIRECT"
    cls = facets["dataClassification"]
    assert cls["level"] == "restricted" and set(cls["piiColumns"]) == {"full_name", "email", "phone"}
    masked = [n for n, node in graph.nodes.items() if node.kind == "DataSet"
              and any(c.masking for c in node.manifest.model.spec.schema_)]
    assert masked, "the example should mask some PII"
    facets = E.dataset_events(graph, masked[:1], ws)[0]["dataset"]["facets"]
    assert facets["dataClassification"]["maskedColumns"]
    transformations = [t for f in facets["columnLineage"]["fields"].values() for i in f["inputFields"]
                       for t in i["transformations"]]
    assert any(t["masking"] for t in transformations)


def test_our_facet_schema_is_published_under_its_schema_url() -> None:
    path = Path(E.__file__).parent / "schemas" / "DataClassificationDatasetFacet.json"
    schema = json.loads(path.read_text())
    from dkbuild.lineage.facets import SCHEMA_URLS
    assert SCHEMA_URLS["dataClassification"] == schema["$id"] + "#/$defs/DataClassificationDatasetFacet"
    assert schema["$id"].startswith("https://github.com/dkbuild/dkbuild/")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    registry().resolver().lookup(SCHEMA_URLS["dataClassification"])


# --- naming --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset,expected", [
    ("//datasets/crm-customers", ("postgres://crm-replica.db.acme.internal:5432", "crm.public.customers")),
    ("//datasets/customer-ltv", ("postgres://warehouse.db.acme.internal:5432", "analytics.marts.customer_ltv")),
    ("//datasets/customers", ("s3://acme-lake-raw", "crm/customers")),
    ("//datasets/customer-profile", ("s3://acme-lake-curated", "customers/profile")),
    ("//datasets/clickstream", ("kafka://kafka-0.events.acme.internal:9093", "web.clickstream.v3")),
])
def test_dataset_identity(example, dataset: str, expected: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    assert dataset_identity(example.graph, dataset) == expected


def test_datasets_never_use_the_team_namespace(example) -> None:  # type: ignore[no-untyped-def]
    graph = example.graph
    teams = {graph.nodes[t].manifest.model.metadata.namespace for t in _ids(example, "Transform")}
    for d in _ids(example, "DataSet"):
        namespace, _ = dataset_identity(graph, d)
        assert namespace not in teams and "://" in namespace


def test_unknown_connector_naming(ws_copy: Path) -> None:
    (ws_copy / "platform" / "stores" / "odd").mkdir(parents=True)
    (ws_copy / "platform" / "stores" / "odd" / "dk.yaml").write_text(yaml.safe_dump({
        "apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": "Store", "metadata": {"name": "odd"},
        "spec": {"connector": "snowflake", "connection": {"account": "acme", "password": "pw-LITERAL-9"}}}))
    (ws_copy / "datasets" / "odd-table").mkdir()
    (ws_copy / "datasets" / "odd-table" / "dk.yaml").write_text(yaml.safe_dump({
        "apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": "DataSet", "metadata": {"name": "odd-table"},
        "spec": {"store": "odd", "table": "DB.S.T", "classification": "internal",
                 "schema": [{"name": "a", "type": "string"}]}}))
    loaded = load(ws_copy)
    assert dataset_identity(loaded.graph, "//datasets/odd-table") == ("snowflake://odd", "DB.S.T")
    event = E.dataset_events(loaded.graph, ["//datasets/odd-table"], loaded.workspace)[0]
    validate_event(event)
    assert "pw-LITERAL-9" not in json.dumps(event)


# --- secrets -------------------------------------------------------------------------------------

SECRETS = ["hunter2-LITERAL-pw", "S3cr3t-in-dsn", "AKIA-LITERAL-KEY", "kafka-LITERAL-pass", "tok3n-in-remote"]


def _edit_store(root: Path, name: str, **connection: Any) -> None:
    path = root / "platform" / "stores" / name / "dk.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["connection"].update(connection)
    path.write_text(yaml.safe_dump(doc))


def test_no_secret_values_in_events(ws_copy: Path) -> None:
    _edit_store(ws_copy, "warehouse", password="hunter2-LITERAL-pw",
                connection_string="postgresql://dk:S3cr3t-in-dsn@warehouse.db.acme.internal:5432/analytics"
                                  "?password=S3cr3t-in-dsn")
    _edit_store(ws_copy, "lake-raw", secret_access_key="AKIA-LITERAL-KEY", access_key_id="AKIA-LITERAL-KEY")
    _edit_store(ws_copy, "events-kafka", saslPassword="kafka-LITERAL-pass")
    git(ws_copy, "init", "-q")
    git(ws_copy, "remote", "add", "origin", "https://ci:tok3n-in-remote@github.com/acme/data.git")
    git(ws_copy, "add", "-A")
    git(ws_copy, "commit", "-qm", "init")
    head = git(ws_copy, "rev-parse", "HEAD").strip()
    loaded = load(ws_copy)
    graph, ws = loaded.graph, loaded.workspace
    events = [E.job_event(graph, t, ws) for t in _ids(loaded, "Transform")]
    events += E.dataset_events(graph, _ids(loaded, "DataSet"), ws)
    events += [E.run_event("FAIL", graph, t, E.new_run_id(), ws, error={"message": "x", "exit_code": 1})
               for t in _ids(loaded, "Transform")]
    text = json.dumps(events)
    for secret in SECRETS:
        assert secret not in text
    assert "${" not in text
    for event in events:
        validate_event(event)
    # the DSN keeps its non-secret parts; the git remote is stripped of credentials
    warehouse = E.dataset_events(graph, ["//datasets/customer-ltv"], ws)[0]["dataset"]["facets"]["dataSource"]
    assert warehouse["uri"] == "postgresql://warehouse.db.acme.internal:5432/analytics"
    location = events[0]["job"]["facets"]["sourceCodeLocation"]
    assert location["type"] == "git" and location["version"] == head
    assert location["url"].startswith("https://github.com/acme/data/tree/" + head)
    assert location["path"].startswith("pipelines/")


# --- run ids -------------------------------------------------------------------------------------

def test_run_ids_are_time_ordered_uuid7() -> None:
    before = int(time.time() * 1000)
    ids = [E.new_run_id() for _ in range(5000)]
    after = int(time.time() * 1000)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)                     # string order = time order
    for text in ids[:50] + ids[-50:]:
        value = uuid.UUID(text)
        assert str(value) == text and value.version == 7 and value.variant == uuid.RFC_4122
        assert before <= value.int >> 80 <= after + 1


# --- transports ----------------------------------------------------------------------------------

@pytest.fixture
def receiver() -> Iterator[LineageReceiver]:
    r = LineageReceiver()
    yield r
    r.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_emit_over_http_with_bearer(dkb, ws_copy: Path, receiver: LineageReceiver) -> None:  # type: ignore[no-untyped-def]
    result = dkb("lineage", "emit", "//pipelines/...", "--transport", "http", "--url", receiver.url,
                 "--output", "json", cwd=ws_copy, env={"OPENLINEAGE_API_KEY": "sekret-key"})
    assert result.code == 0, result
    summary = result.json()
    assert summary["spooled"] == 0 and summary["warnings"] == []
    assert len(receiver.requests) == summary["events"] == len(summary["jobs"]) + len(summary["datasets"])
    for request in receiver.requests:
        assert request["path"] == "/api/v1/lineage"
        assert request["headers"]["Authorization"] == "Bearer sekret-key"
        assert request["headers"]["Content-Type"] == "application/json"
        validate_event(request["event"])
    jobs = {r["event"]["job"]["name"] for r in receiver.requests if "job" in r["event"]}
    assert "enrich" in jobs and "crm-sync" in jobs
    assert not (ws_copy / ".dkb" / "lineage" / "spool.jsonl").exists()


def test_openlineage_url_env_selects_http(dkb, ws_copy: Path, receiver: LineageReceiver) -> None:  # type: ignore[no-untyped-def]
    result = dkb("lineage", "emit", "//pipelines/enrich", cwd=ws_copy, env={"OPENLINEAGE_URL": receiver.url})
    assert result.code == 0, result
    assert len(receiver.requests) == 4      # 3 datasets + 1 job
    assert all("Authorization" not in r["headers"] for r in receiver.requests)


def test_default_file_transport_writes_json_lines(dkb, ws_copy: Path) -> None:  # type: ignore[no-untyped-def]
    result = dkb("lineage", "emit", "//pipelines/crm-sync", cwd=ws_copy)
    assert result.code == 0, result
    lines = (ws_copy / ".dkb" / "lineage" / "events.jsonl").read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        validate_event(json.loads(line))


def test_console_transport_prints_events(dkb, ws_copy: Path) -> None:  # type: ignore[no-untyped-def]
    result = dkb("lineage", "emit", "//pipelines/crm-sync", "--transport", "console", cwd=ws_copy)
    assert result.code == 0, result
    events = [json.loads(line) for line in result.out.splitlines() if line.startswith("{")]
    assert len(events) == 3
    for event in events:
        validate_event(event)


def test_backend_down_spools_then_replay_delivers(dkb, ws_copy: Path) -> None:  # type: ignore[no-untyped-def]
    down = f"http://127.0.0.1:{_free_port()}"
    result = dkb("lineage", "emit", "//pipelines/enrich", "//pipelines/crm-sync", "--transport", "http",
                 "--url", down, cwd=ws_copy)
    assert result.code == 1, result
    assert "warning" in result.err and "spooled" in result.err
    spool = ws_copy / ".dkb" / "lineage" / "spool.jsonl"
    spooled = [json.loads(line) for line in spool.read_text().splitlines()]
    assert len(spooled) == 6          # datasets raw-events, customers, enriched-events, crm-customers + 2 jobs
    # still down: replay keeps them and says so
    again = dkb("lineage", "replay", "--url", down, cwd=ws_copy)
    assert again.code == 1 and len(spool.read_text().splitlines()) == 6
    assert again.err.strip().splitlines()[-2].startswith("✗ 6 event(s) still spooled") and down in again.err
    assert "fix:" in again.err.strip().splitlines()[-1]
    up = LineageReceiver()
    try:
        replayed = dkb("lineage", "replay", "--url", up.url, "--output", "json", cwd=ws_copy)
        assert replayed.code == 0, replayed
        assert replayed.json()["delivered"] == 6 and replayed.json()["remaining"] == 0
        assert [r["event"] for r in up.requests] == spooled
        assert all(r["path"] == "/api/v1/lineage" for r in up.requests)
    finally:
        up.close()
    assert not spool.exists() or spool.read_text().strip() == ""


@pytest.mark.parametrize("userinfo", ["admin:pa55-w0rd@", "tok3n-s3cret@", ""])
def test_emit_to_a_backend_that_is_down_fails_and_names_it(dkb, ws_copy: Path, userinfo: str) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    url = f"http://{userinfo}127.0.0.1:{port}"
    for output in ("text", "json"):
        result = dkb("lineage", "emit", "//pipelines/enrich", "--transport", "http", "--url", url, "-o", output,
                     cwd=ws_copy)
        assert result.code == 1, result
        last = result.err.strip().splitlines()
        assert any(line.startswith("✗ delivered 0 of 4 OpenLineage events") for line in last), result
        assert f"127.0.0.1:{port}" in result.err and "4 spooled" in result.err
        assert "fix:" in result.err and "dkb lineage replay" in result.err
        secret = userinfo.rstrip("@").partition(":")[2] or userinfo.rstrip("@")
        if secret:
            assert secret not in result.out + result.err
            assert "<redacted>@127.0.0.1" in result.err
        assert "Traceback" not in result.err
        if output == "json":
            doc = result.json()
            assert (doc["delivered"], doc["events"], doc["spooled"]) == (0, 4, 4)
            assert doc["undelivered"] == 4 and "127.0.0.1" in doc["error"]
            assert not secret or secret not in json.dumps(doc)


def test_partial_delivery_is_reported_as_such(dkb, ws_copy: Path) -> None:  # type: ignore[no-untyped-def]
    picky = LineageReceiver(status_of=lambda event: 400 if "job" in event else 201)    # refuses job events
    try:
        result = dkb("lineage", "emit", "//pipelines/enrich", "//pipelines/crm-sync", "--transport", "http",
                     "--url", picky.url, cwd=ws_copy)
    finally:
        picky.close()
    assert result.code == 1, result
    assert "✗ delivered 4 of 6 OpenLineage events" in result.err and "2 spooled" in result.err, result
    assert "400" in result.err
    spool = ws_copy / ".dkb" / "lineage" / "spool.jsonl"
    assert sorted("job" in json.loads(line) for line in spool.read_text().splitlines()) == [True, True]


def test_emitter_never_raises_and_spools(ws_copy: Path) -> None:
    from dkbuild.lineage.transport import make_emitter, read_spool, spool_path

    ws = load(ws_copy).workspace
    emitter = make_emitter(ws, transport="composite", url=f"http://127.0.0.1:{_free_port()}", timeout=1)
    assert emitter.emit({"not": "serialisable", "x": object()}) in (True, False)
    event = {"eventTime": "2026-01-01T00:00:00Z", "producer": E.PRODUCER, "schemaURL": E.JOB_EVENT_SCHEMA,
             "job": {"namespace": "n", "name": "j"}}
    assert emitter.emit(event) is False
    emitter.close()
    assert emitter.warnings and any("http" in w for w in emitter.warnings)
    assert event in read_spool(spool_path(ws))
    assert json.loads((ws_copy / ".dkb" / "lineage" / "events.jsonl").read_text().splitlines()[-1]) == event


def test_http_without_url_is_a_usage_error(dkb, ws_copy: Path) -> None:  # type: ignore[no-untyped-def]
    result = dkb("lineage", "emit", "--transport", "http", cwd=ws_copy)
    assert result.code == 2 and "URL" in result.err


def test_openlineage_is_imported_lazily() -> None:
    code = ("import sys, dkbuild.cli.main, dkbuild.lineage.events, dkbuild.lineage.transport;"
            "assert not any(m.startswith('openlineage') for m in sys.modules), 'eager import'")
    subprocess.run([sys.executable, "-c", code], check=True)

"""`dkb run`: store env vars (contract §1.13), local runs wrapped in OpenLineage runtime events.

Events are received by a real HTTP server on loopback (the OpenLineage HTTP transport's endpoint,
`/api/v1/lineage`) and each one is checked against the official OpenLineage JSON Schemas."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dkbuild.api import load
from dkbuild.lineage.storeenv import StoreEnvError, mask, store_env
from tests.conftest import API, EXAMPLE, connector, dataset, transform
from tests.lineage_receiver import LineageReceiver
from tests.openlineage_validation import validate_event

SECRET = "s3cr@t/pw!"   # needs URL encoding, and must never be printed


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture
def receiver() -> Iterator[LineageReceiver]:
    r = LineageReceiver()
    yield r
    r.close()


def store_doc(name: str, connector_name: str, connection: dict[str, Any],
              secrets: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"connector": connector_name, "connection": connection}
    if secrets:
        spec["secrets"] = secrets
    return {"apiVersion": API, "kind": "Store", "metadata": {"name": name}, "spec": spec}


def connector_doc(name: str, type_: str) -> dict[str, Any]:
    doc = connector(name)
    doc["spec"]["type"] = type_
    return doc


JOB = '''\
import json, os, sys, time
print("job ran", flush=True)
seen = {k: v for k, v in os.environ.items() if k.startswith(("DK_STORE_", "JOB_")) or k == "PYTHONPATH"}
open(os.environ["JOB_REPORT"], "w").write(json.dumps({"env": seen, "argv": sys.argv[1:], "cwd": os.getcwd()}))
time.sleep(float(os.environ.get("JOB_SLEEP", "0")))
sys.exit(int(os.environ.get("JOB_EXIT", "0")))
'''


def job_workspace(workspace, tmp_path: Path, **spec: Any) -> Path:
    """A workspace with //pipelines/job (generic-python, src/jobmod/main.py) reading from a postgres
    store with a secret and writing to an s3 store."""
    env = [{"name": "JOB_REPORT", "value": str(tmp_path / "report.json")}, *spec.pop("env", [])]
    return workspace({
        "platform/connectors/aws-s3/dk.yaml": connector_doc("aws-s3", "s3"),
        "platform/stores/crm-db/dk.yaml": store_doc(
            "crm-db", "postgres", {"host": "db.internal", "port": 6543, "database": "crm", "user": "svc"},
            {"password": "${TEST_CRM_PASSWORD}"}),
        "platform/stores/lake.raw/dk.yaml": store_doc("lake.raw", "aws-s3", {"bucket": "raw", "region": "eu-west-1"}),
        "datasets/customers/dk.yaml": dataset("customers", "crm-db"),
        "datasets/landed/dk.yaml": dataset("landed", "lake.raw"),
        "pipelines/job/dk.yaml": transform("job", ["customers"], ["landed"], env=env, **spec),
        "pipelines/job/src/jobmod/__init__.py": "",
        "pipelines/job/src/jobmod/main.py": JOB,
    })


def run_env(**extra: str) -> dict[str, str]:
    return {"TEST_CRM_PASSWORD": SECRET, **extra}


def assert_one_run(events: list[dict[str, Any]], expected_types: list[str]) -> str:
    assert [e["eventType"] for e in events] == expected_types
    for event in events:
        validate_event(event)
    run_ids = {e["run"]["runId"] for e in events}
    assert len(run_ids) == 1
    (run_id,) = run_ids
    assert uuid.UUID(run_id).version == 7
    assert {e["job"]["name"] for e in events} == {"job"}
    return run_id


def http_args(receiver: LineageReceiver) -> list[str]:
    return ["--transport", "http", "--lineage-url", receiver.url]


# --- store env (pure) ----------------------------------------------------------------------------

def graph_with(workspace, stores: list[dict[str, Any]], connectors: list[dict[str, Any]] = ()) -> Any:
    files: dict[str, Any] = {}
    for i, doc in enumerate(stores):
        name = doc["metadata"]["name"]
        files[f"platform/stores/{name}/dk.yaml"] = doc
        files[f"datasets/d{i}/dk.yaml"] = dataset(f"ds-{i}", name)
    for doc in connectors:
        files[f"platform/connectors/{doc['metadata']['name']}/dk.yaml"] = doc
    names = [f"ds-{i}" for i in range(len(stores))]
    files["pipelines/t/dk.yaml"] = transform("t", names[:1], names[1:] or names[:1])
    root = workspace(files)
    return load(root).graph


def test_postgres_dsn_with_secret_from_environment(workspace) -> None:
    graph = graph_with(workspace, [
        store_doc("crm-db", "postgres", {"host": "db", "port": 6543, "dbname": "crm", "username": "svc",
                                         "sslmode": "require", "password": "ignored"},
                  {"password": "${PG_PW}"}),
        store_doc("defaults", "postgresql", {"database": "app", "user": "u", "password": "plain"}),
    ])
    env = store_env(graph, "//pipelines/t", {"PG_PW": SECRET})
    assert env == {
        "DK_STORE_DSN_CRM_DB": "postgresql://svc:s3cr%40t%2Fpw%21@db:6543/crm?sslmode=require",
        "DK_STORE_TYPE_CRM_DB": "postgres",
        "DK_STORE_DSN_DEFAULTS": "postgresql://u:plain@localhost:5432/app?sslmode=disable",
        "DK_STORE_TYPE_DEFAULTS": "postgresql",
    }


def test_connection_string_wins_with_secret_keys_replaced(workspace) -> None:
    graph = graph_with(workspace, [store_doc(
        "warehouse", "snowflake",
        {"connection_string": "snowflake://svc:${token}@acme/db?role=${role}", "account": "acme"},
        {"token": "pre-${WH_TOKEN}", "role": "${WH_ROLE}"})])
    env = store_env(graph, "//pipelines/t", {"WH_TOKEN": "abc", "WH_ROLE": "loader"})
    assert env["DK_STORE_DSN_WAREHOUSE"] == "snowflake://svc:pre-abc@acme/db?role=loader"
    assert env["DK_STORE_TYPE_WAREHOUSE"] == "snowflake"


def test_s3_dsn_sorted_and_encoded_and_type_from_connector(workspace) -> None:
    graph = graph_with(workspace, [store_doc(
        "lake.raw-v2", "aws-s3",
        {"region": "eu-west-1", "bucket": "raw", "endpoint": "http://minio:9000/a b", "path_style": True})],
        [connector_doc("aws-s3", "s3")])
    env = store_env(graph, "//pipelines/t", {})
    assert env == {
        "DK_STORE_DSN_LAKE_RAW_V2": "s3://raw?endpoint=http%3A%2F%2Fminio%3A9000%2Fa+b&path_style=true&region=eu-west-1",
        "DK_STORE_TYPE_LAKE_RAW_V2": "s3",
    }


def test_kafka_default_brokers_and_other_connectors(workspace) -> None:
    graph = graph_with(workspace, [
        store_doc("bus", "kafka", {"topic": "events"}),
        store_doc("bus2", "kafka", {"brokers": ["k1:9092", "k2:9092"], "topic": "t"}),
        store_doc("wh", "snowflake", {"warehouse": "wh 1", "account": "acme"}),
    ])
    env = store_env(graph, "//pipelines/t", {})
    assert env["DK_STORE_DSN_BUS"] == "kafka://localhost:9092/events"
    assert env["DK_STORE_DSN_BUS2"] == "kafka://k1:9092,k2:9092/t"
    assert env["DK_STORE_DSN_WH"] == "snowflake:?account=acme&warehouse=wh+1"
    assert env["DK_STORE_TYPE_WH"] == "snowflake"


def test_each_store_once_even_when_several_datasets_use_it(workspace) -> None:
    root = workspace({"pipelines/two/dk.yaml": transform("two", ["raw", "clean"], ["report"])})
    assert store_env(load(root).graph, "//pipelines/two", {}) == {
        "DK_STORE_DSN_LAKE": "postgresql://db.internal:5432/?sslmode=disable", "DK_STORE_TYPE_LAKE": "postgres"}


def test_unset_secret_variable_is_a_clear_error_without_values(workspace) -> None:
    graph = graph_with(workspace, [store_doc("crm-db", "postgres", {"host": "db"},
                                             {"password": "${PG_PW}", "token": "${PG_TOKEN}"})])
    with pytest.raises(StoreEnvError) as info:
        store_env(graph, "//pipelines/t", {"PG_TOKEN": "topsecret-token"})
    message = str(info.value)
    assert 'store "crm-db"' in message and '"password"' in message and "PG_PW" in message
    assert "topsecret-token" not in message


def test_mask_hides_secrets_and_url_passwords() -> None:
    assert mask("postgresql://svc:s3cr%40t%2Fpw%21@db:5432/crm", [SECRET]) == "postgresql://svc:***@db:5432/crm"
    assert mask("x://u:literal@h/", []) == "x://u:***@h/"


# --- runs through the CLI ------------------------------------------------------------------------

def test_successful_run_sends_start_then_complete(workspace, dkb, receiver, tmp_path) -> None:
    root = job_workspace(workspace, tmp_path)
    result = dkb("run", "//pipelines/job", *http_args(receiver), "--", "--limit", "3", cwd=root, env=run_env())
    assert result.code == 0, result
    assert "job ran" in result.out
    assert {r["path"] for r in receiver.requests} == {"/api/v1/lineage"}
    run_id = assert_one_run(receiver.events, ["START", "COMPLETE"])
    assert run_id in result.err and receiver.url in result.err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["argv"] == ["--limit", "3"]
    assert Path(report["cwd"]) == root / "pipelines" / "job"
    assert report["env"]["PYTHONPATH"].split(":")[0] == str(root / "pipelines" / "job" / "src")
    assert report["env"]["DK_STORE_DSN_CRM_DB"] == "postgresql://svc:s3cr%40t%2Fpw%21@db.internal:6543/crm?sslmode=disable"
    assert report["env"]["DK_STORE_TYPE_LAKE_RAW"] == "s3"
    assert report["env"]["DK_STORE_DSN_LAKE_RAW"] == "s3://raw?region=eu-west-1"
    assert SECRET not in result.out + result.err


def test_failing_run_sends_fail_and_exits_with_the_package_code(workspace, dkb, receiver, tmp_path) -> None:
    root = job_workspace(workspace, tmp_path, env=[{"name": "JOB_EXIT", "value": "3"}])
    result = dkb("run", "//pipelines/job", *http_args(receiver), cwd=root, env=run_env())
    assert result.code == 3, result
    assert_one_run(receiver.events, ["START", "FAIL"])
    error = receiver.events[-1]["run"]["facets"]["errorMessage"]
    assert "3" in error["message"]


def test_heartbeats_while_running(workspace, dkb, receiver, tmp_path) -> None:
    root = job_workspace(workspace, tmp_path, env=[{"name": "JOB_SLEEP", "value": "1.2"}])
    result = dkb("run", "//pipelines/job", *http_args(receiver), "--heartbeat", "0.2", cwd=root, env=run_env())
    assert result.code == 0, result
    types = [e["eventType"] for e in receiver.events]
    assert types[0] == "START" and types[-1] == "COMPLETE"
    assert types.count("RUNNING") >= 2 and set(types[1:-1]) == {"RUNNING"}
    assert_one_run(receiver.events, types)


def test_timeout_kills_the_package_and_fails(workspace, dkb, receiver, tmp_path) -> None:
    root = job_workspace(workspace, tmp_path, timeout="1s", env=[{"name": "JOB_SLEEP", "value": "60"}])
    result = dkb("run", "//pipelines/job", *http_args(receiver), "--heartbeat", "0", cwd=root, env=run_env())
    assert result.code == 124, result
    assert_one_run(receiver.events, ["START", "FAIL"])
    assert "timed out" in receiver.events[-1]["run"]["facets"]["errorMessage"]["message"]


def test_backend_down_never_fails_the_run(workspace, dkb, tmp_path) -> None:
    with socket.socket() as s:           # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    root = job_workspace(workspace, tmp_path)
    result = dkb("run", "//pipelines/job", "--transport", "http", "--lineage-url", dead, cwd=root, env=run_env())
    assert result.code == 0, result
    assert "warning" in result.err.lower()
    spool = root / ".dkb" / "lineage" / "spool.jsonl"
    spooled = [json.loads(line) for line in spool.read_text().splitlines() if line.strip()]
    events = [e.get("event", e) for e in spooled]
    assert_one_run(events, ["START", "COMPLETE"])


def test_dry_run_sends_nothing_runs_nothing_and_prints_no_secret(workspace, dkb, receiver, tmp_path) -> None:
    root = job_workspace(workspace, tmp_path)
    for env in (run_env(), {}):          # secrets set, or not set at all
        result = dkb("run", "//pipelines/job", "--dry-run", *http_args(receiver), cwd=root, env=env)
        assert result.code == 0, result
        assert "DK_STORE_DSN_CRM_DB" in result.out and "DK_STORE_TYPE_LAKE_RAW" in result.out
        assert "jobmod.main" in result.out and "START" in result.out and "COMPLETE" in result.out
        assert SECRET not in result.out + result.err and "s3cr%40t" not in result.out + result.err
    assert receiver.requests == []
    assert not (tmp_path / "report.json").exists()
    assert not (root / ".dkb" / "lineage" / "spool.jsonl").exists()
    document = dkb("run", "//pipelines/job", "--dry-run", "--output", "json", cwd=root, env=run_env()).json()
    assert document["dry_run"] and [e["eventType"] for e in document["events"]] == ["START", "COMPLETE"]
    assert_one_run(document["events"], ["START", "COMPLETE"])
    assert SECRET not in json.dumps(document)


def test_json_output_keeps_stdout_one_document(workspace, dkb, receiver, tmp_path) -> None:
    root = job_workspace(workspace, tmp_path)
    result = dkb("run", "//pipelines/job", *http_args(receiver), "-o", "json", cwd=root, env=run_env())
    assert result.code == 0, result
    document = result.json()
    assert document["exit_code"] == 0 and document["target"] == "//pipelines/job"
    assert [e["eventType"] for e in document["events"]] == ["START", "COMPLETE"]
    assert document["run_id"] == receiver.events[0]["run"]["runId"]
    assert "job ran" in result.err


def test_spec_command_is_used(workspace, dkb, receiver, tmp_path) -> None:
    root = job_workspace(workspace, tmp_path, command=["python", "-m", "jobmod.main", "--from-spec"])
    result = dkb("run", "//pipelines/job", *http_args(receiver), cwd=root, env=run_env())
    assert result.code == 0, result
    assert json.loads((tmp_path / "report.json").read_text())["argv"] == ["--from-spec"]


def test_unset_secret_fails_before_anything_is_sent(workspace, dkb, receiver, tmp_path) -> None:
    root = job_workspace(workspace, tmp_path)
    result = dkb("run", "//pipelines/job", *http_args(receiver), cwd=root, env={"TEST_CRM_PASSWORD": ""})
    # an empty value is set; only a truly missing variable is an error
    assert result.code == 0, result
    env = {k: v for k, v in os.environ.items() if k != "TEST_CRM_PASSWORD"}
    proc = subprocess.run([sys.executable, "-m", "dkbuild", "run", "//pipelines/job", *http_args(receiver)],
                          cwd=root, env=env, check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "TEST_CRM_PASSWORD" in proc.stderr and 'store "crm-db"' in proc.stderr
    assert len(receiver.requests) == 2      # only the first run's START and COMPLETE


def test_unknown_runtimes_and_bad_targets(workspace, dkb, tmp_path) -> None:
    root = workspace({"pipelines/sparkjob/dk.yaml": transform("sparkjob", ["raw"], ["report"], runtime="spark")})
    result = dkb("run", "//pipelines/sparkjob", cwd=root)
    assert result.code == 2 and "spark" in result.err, result
    assert all(r in result.err for r in ("generic-python", "generic-go", "dbt", "cloudquery"))
    assert dkb("run", "//datasets/raw", cwd=root).code == 2
    assert dkb("run", "//pipelines/...", cwd=root).code == 2
    assert dkb("run", "//nope", cwd=root).code == 2


def _docker_daemon_up() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], check=False, capture_output=True, timeout=30).returncode == 0


@pytest.mark.parametrize("case", ["no-cli", "no-daemon"])
def test_container_mode_without_docker_is_a_clear_error(workspace, dkb, receiver, tmp_path, case) -> None:
    if case == "no-daemon" and (shutil.which("docker") is None or _docker_daemon_up()):
        pytest.skip("needs a docker CLI without a reachable daemon")
    root = job_workspace(workspace, tmp_path)
    bin_dir = tmp_path / "bin"          # a PATH without podman, with or without the docker CLI
    bin_dir.mkdir()
    if case == "no-daemon":
        (bin_dir / "docker").symlink_to(shutil.which("docker"))
    env = run_env(PATH=str(bin_dir))
    result = dkb("run", "//pipelines/job", "--container", *http_args(receiver), cwd=root, env=env)
    assert result.code == 2, result
    assert ("no `docker` CLI" if case == "no-cli" else "Docker daemon") in result.err
    assert receiver.requests == []
    assert not (root / ".dkb" / "lineage").exists()     # nothing touched before the error


# --- API -----------------------------------------------------------------------------------------

def test_run_package_api_result(workspace, tmp_path, receiver, monkeypatch) -> None:
    from dkbuild.lineage.run import run_package
    from dkbuild.lineage.transport import make_emitter

    root = job_workspace(workspace, tmp_path)
    monkeypatch.setenv("TEST_CRM_PASSWORD", SECRET)
    loaded = load(root)
    emitter = make_emitter(loaded.workspace, transport="http", url=receiver.url)
    try:
        result = run_package(loaded, "//pipelines/job", emitter=emitter, heartbeat_seconds=0,
                             extra_env={"JOB_EXIT": "5"})
    finally:
        emitter.close()
    assert result.exit_code == 5
    assert [e["eventType"] for e in result.events] == ["START", "FAIL"]
    assert result.events == receiver.events
    assert result.command[1:] == ["-m", "jobmod.main"]
    assert uuid.UUID(result.run_id).version == 7
    assert SECRET not in json.dumps(result.to_json())


# --- the example workspace -----------------------------------------------------------------------

def test_example_enrich_runs_with_missing_inputs(dkb, receiver, tmp_path) -> None:
    root = tmp_path / "monorepo"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".dkb"))
    secrets = {name: f"example-{name.lower()}" for name in (
        "LAKE_RAW_ACCESS_KEY_ID", "LAKE_RAW_SECRET_ACCESS_KEY",
        "LAKE_CURATED_ACCESS_KEY_ID", "LAKE_CURATED_SECRET_ACCESS_KEY")}
    result = dkb("run", "//pipelines/enrich", *http_args(receiver), cwd=root, env=secrets)
    assert result.code == 0, result
    assert "DK_STORE_DSN_LAKE_RAW: configured" in result.err
    events = receiver.events
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        validate_event(event)
    assert events[0]["job"]["name"] == "enrich"
    assert not any(value in result.out + result.err for value in secrets.values())

"""Tests of the per-manifest lint rules (dkbuild.governance.manifest_rules).

Manifests are written as YAML text. The line a diagnostic must point at is marked with a
trailing `#<` comment.
"""

from __future__ import annotations

import re
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dkbuild.config_model import WorkspaceConfig
from dkbuild.diagnostics import Severity
from dkbuild.governance.codes import CODES
from dkbuild.governance.manifest_rules import check_manifest
from dkbuild.governance.values import (
    cron_problem,
    is_dns_safe,
    is_schema_module_ref,
    is_semver,
    is_semver_range,
    parse_duration,
)
from dkbuild.manifests.layout import ManifestFile
from dkbuild.manifests.loader import load_file
from dkbuild.manifests.manifest import Manifest
from dkbuild.manifests.models import MODEL_OF_KIND
from dkbuild.manifests.yamlsource import parse_documents
from dkbuild.workspace import Workspace

FILE = "pipelines/example/dk.yaml"
API = "apiVersion: datakit.infoblox.dev/v1alpha1\n"


# --- helpers ---------------------------------------------------------------------------------

def manifest_of(text: str, file: str = FILE) -> Manifest:
    """Parse one YAML document into a Manifest record, as the loader would."""
    documents, problems = parse_documents(text, file)
    assert not problems, problems
    assert len(documents) == 1
    doc = documents[0]
    model = MODEL_OF_KIND[doc.data["kind"]].model_validate(doc.data)
    return Manifest(kind=doc.data["kind"], name=model.metadata.name, file=file, doc_index=0,
                    line=doc.line, package="pipelines/example", layout="dk.yaml", data=doc.data,
                    model=model, positions=doc.positions)


def doc(kind: str, body: str) -> str:
    return API + f"kind: {kind}\n" + textwrap.dedent(body).lstrip("\n")


def check(text: str) -> list:
    return check_manifest(manifest_of(text))


def marked_line(text: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), start=1) if line.rstrip().endswith("#<")]
    assert len(lines) == 1, "mark exactly one line with #<"
    return lines[0]


def codes(diagnostics: list) -> list[str]:
    return [d.code for d in diagnostics]


# --- valid manifests ---------------------------------------------------------------------------

VALID_CONNECTOR = doc("Connector", """
    metadata:
      name: postgres-1-3-0
    spec:
      type: postgres
      provider: postgres
      version: 1.3.0
      protocol: postgresql
      capabilities: [source, destination]
      tools:
        - name: psql
          type: exec
          command: psql
        - name: dsn
          type: config
""")

VALID_STORE = doc("Store", """
    metadata:
      name: warehouse
      namespace: platform
    spec:
      connector: postgres
      connectorVersion: ">=1.0.0 <2.0.0"
      connection:
        host: warehouse.db.internal
        port: 5432
        user: dk_pipelines
        password_file: ""
        token_url: ${TOKEN_URL}
      secrets:
        password: ${WAREHOUSE_PASSWORD}
        dsn: postgres://dk:${WAREHOUSE_PASSWORD}@warehouse/analytics
""")

VALID_DATASET = doc("DataSet", """
    metadata:
      name: users-parquet
      namespace: identity
      version: 1.0.0-rc.1+build.5
      labels: {domain: identity}
    spec:
      store: lake-raw
      prefix: data/users/
      format: parquet
      classification: confidential
      schema:
        - {name: id, type: integer, from: users.id}
        - {name: email, type: string, pii: true, from: users.email, masking: hash}
      declassify:
        reason: only hashed emails leave the source
""")

VALID_DATASET_SCHEMAREF = doc("DataSet", """
    metadata:
      name: users
    spec:
      store: warehouse
      table: users
      schemaRef: users@^1.0.0
""")

VALID_GROUP = doc("DataSetGroup", """
    metadata:
      name: crm-tables
    spec:
      store: crm-db
      datasets: [crm-orders, crm-products]
""")

VALID_TRANSFORM = doc("Transform", """
    metadata:
      name: enrich
      namespace: analytics
      version: 0.1.0
    spec:
      runtime: generic-python
      image: my-team/enrich:latest
      inputs:
        - dataset: raw-events
          schema: events@^2.0.0
        - tags: {domain: identity}
          version: ">=1.0.0"
      outputs: [{dataset: enriched-events}]
      trigger:
        policy: composite
        schedule: {cron: "*/15 6-18 * JAN-MAR MON-FRI"}
        policies:
          - schedule
          - on-change
          - policy: manual
      timeout: 1h30m
      env:
        - name: LOG_LEVEL
          value: info
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: db, key: password}}
""")

VALID_STREAMING = doc("Transform", """
    metadata: {name: fraud-watch, version: 1.1.0}
    spec:
      runtime: generic-go
      mode: streaming
      replicas: 2
      image: registry.acme.dev/finance/fraud-watch:1.1.0
      inputs: [{dataset: clickstream}]
      outputs: [{dataset: suspicious-activity}]
""")

VALID_CLOUDQUERY = doc("Transform", """
    metadata: {name: orders-replicate}
    spec:
      runtime: cloudquery
      mode: batch
      inputs: [{dataset: crm-orders}]
      outputs: [{dataset: stg-orders}]
      trigger:
        policy: schedule
        schedule: {cron: "@daily", timezone: UTC}
      timeout: 90s
""")


@pytest.mark.parametrize("text", [VALID_CONNECTOR, VALID_STORE, VALID_DATASET, VALID_DATASET_SCHEMAREF,
                                  VALID_GROUP, VALID_TRANSFORM, VALID_STREAMING, VALID_CLOUDQUERY],
                         ids=["connector", "store", "dataset", "dataset-schemaref", "group", "transform",
                              "streaming", "cloudquery"])
def test_valid_manifest_has_no_diagnostics(text):
    assert check(text) == []


# --- one case per code -------------------------------------------------------------------------

CASES = [
    # Common
    ("E006", "metadata.name", doc("DataSetGroup", """
        metadata:
          name: ""  #<
        spec: {store: s, datasets: [a]}
    """)),
    ("E001", "metadata.name", doc("DataSetGroup", """
        metadata:
          name: My_Group  #<
        spec: {store: s, datasets: [a]}
    """)),
    ("E007", "metadata.namespace", doc("Store", """
        metadata:
          name: warehouse
          namespace: Team.A  #<
        spec: {connector: postgres, connection: {host: h}}
    """)),
    ("E020", "metadata.version", doc("Transform", """
        metadata:
          name: enrich
          version: v1.0.0  #<
        spec: {runtime: cloudquery, inputs: [{dataset: a}], outputs: [{dataset: b}], trigger: {policy: manual}}
    """)),
    # Connector
    ("E020", "spec.version", doc("Connector", """
        metadata: {name: pg}
        spec:
          type: postgres
          version: 1.2.3.4  #<
          capabilities: [source]
    """)),
    ("E200", "spec.type", doc("Connector", """
        metadata: {name: pg}
        spec:  #<
          capabilities: [source]
    """)),
    ("E201", "spec.capabilities", doc("Connector", """
        metadata: {name: pg}
        spec:
          type: postgres
          capabilities: []  #<
    """)),
    ("E202", "spec.capabilities[1]", doc("Connector", """
        metadata: {name: pg}
        spec:
          type: postgres
          capabilities:
            - source
            - sink  #<
    """)),
    ("W206", "spec.capabilities[2]", doc("Connector", """
        metadata: {name: pg}
        spec:
          type: postgres
          capabilities:
            - source
            - destination
            - source  #<
    """)),
    ("E203", "spec.provider", doc("Connector", """
        metadata: {name: pg}
        spec:
          type: postgres
          provider: Postgres_SQL  #<
          capabilities: [source]
    """)),
    ("E204", "spec.tools[1].name", doc("Connector", """
        metadata: {name: pg}
        spec:
          type: postgres
          capabilities: [source]
          tools:
            - {name: psql, type: exec}
            - type: exec  #<
    """)),
    ("E205", "spec.tools[0].type", doc("Connector", """
        metadata: {name: pg}
        spec:
          type: postgres
          capabilities: [source]
          tools:
            - name: psql
              type: shell  #<
    """)),
    # Store
    ("E210", "spec.connector", doc("Store", """
        metadata: {name: warehouse}
        spec:
          connector: ""  #<
          connection: {host: h}
    """)),
    ("E211", "spec.connection", doc("Store", """
        metadata: {name: warehouse}
        spec:
          connector: postgres
          connection: {}  #<
    """)),
    ("E212", "spec.secrets.password", doc("Store", """
        metadata: {name: warehouse}
        spec:
          connector: postgres
          connection: {host: h}
          secrets:
            user: ${DB_USER}
            password: ""  #<
    """)),
    ("E213", "spec.connectorVersion", doc("Store", """
        metadata: {name: warehouse}
        spec:
          connector: postgres
          connectorVersion: ^^1  #<
          connection: {host: h}
    """)),
    ("E214", "spec.secrets.password", doc("Store", """
        metadata: {name: warehouse}
        spec:
          connector: postgres
          connection: {host: h}
          secrets:
            password: hunter2  #<
    """)),
    ("W215", "spec.connection.adminPassword", doc("Store", """
        metadata: {name: warehouse}
        spec:
          connector: postgres
          connection:
            host: h
            adminPassword: hunter2  #<
    """)),
    # DataSet
    ("E220", "spec.store", doc("DataSet", """
        metadata: {name: users}
        spec:  #<
          table: users
    """)),
    ("E020", "metadata.version", doc("DataSet", """
        metadata:
          name: users
          version: "1.0"  #<
        spec: {store: s, table: users}
    """)),
    ("E221", "spec", doc("DataSet", """
        metadata: {name: users}
        spec:  #<
          store: warehouse
          format: table
    """)),
    ("W225", "spec.format", doc("DataSet", """
        metadata: {name: users}
        spec:
          store: warehouse
          table: users
          format: xlsx  #<
    """)),
    ("E310", "spec.schemaRef", doc("DataSet", """
        metadata: {name: users}
        spec:
          store: warehouse
          table: users
          schemaRef: users@^1.0.0  #<
          schema:
            - {name: id, type: integer}
    """)),
    ("E311", "spec.schemaRef", doc("DataSet", """
        metadata: {name: users}
        spec:
          store: warehouse
          table: users
          schemaRef: users@  #<
    """)),
    ("E222", "spec.schema[1].name", doc("DataSet", """
        metadata: {name: users}
        spec:
          store: warehouse
          table: users
          schema:
            - {name: id, type: integer}
            - type: string  #<
    """)),
    ("E043", "spec.schema[2].name", doc("DataSet", """
        metadata: {name: users}
        spec:
          store: warehouse
          table: users
          schema:
            - {name: id, type: integer}
            - {name: email, type: string}
            - name: id  #<
              type: string
    """)),
    ("E223", "spec.schema[0].type", doc("DataSet", """
        metadata: {name: users}
        spec:
          store: warehouse
          table: users
          schema:
            - name: id
              type: ""  #<
    """)),
    ("E226", "spec.schema[0].masking", doc("DataSet", """
        metadata: {name: users}
        spec:
          store: warehouse
          table: users
          schema:
            - name: email
              type: string
              masking: blur  #<
    """)),
    ("E227", "spec.schema[0].from", doc("DataSet", """
        metadata: {name: users}
        spec:
          store: warehouse
          table: users
          schema:
            - name: email
              type: string
              from: users  #<
    """)),
    ("E224", "spec.classification", doc("DataSet", """
        metadata: {name: users}
        spec:
          store: warehouse
          table: users
          classification: confidental  #<
    """)),
    ("E228", "spec.declassify.reason", doc("DataSet", """
        metadata: {name: users}
        spec:
          store: warehouse
          table: users
          declassify:
            reason: "   "  #<
    """)),
    # DataSetGroup
    ("E240", "spec.store", doc("DataSetGroup", """
        metadata: {name: crm}
        spec:  #<
          datasets: [a]
    """)),
    ("E241", "spec.datasets", doc("DataSetGroup", """
        metadata: {name: crm}
        spec:
          store: crm-db
          datasets: []  #<
    """)),
    ("E242", "spec.datasets[2]", doc("DataSetGroup", """
        metadata: {name: crm}
        spec:
          store: crm-db
          datasets:
            - orders
            - products
            - orders  #<
    """)),
    # Transform
    ("E233", "spec.runtime", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: generic-pyhton  #<
          image: i
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger: {policy: manual}
    """)),
    ("E234", "spec.mode", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: generic-go
          mode: stream  #<
          image: i
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
    """)),
    ("E252", "spec.mode", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: dbt
          mode: streaming  #<
          image: i
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
    """)),
    ("E230", "spec.inputs", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: []  #<
          outputs: [{dataset: b}]
          trigger: {policy: manual}
    """)),
    ("E231", "spec.outputs", doc("Transform", """
        metadata: {name: t}
        spec:  #<
          runtime: cloudquery
          inputs: [{dataset: a}]
          trigger: {policy: manual}
    """)),
    ("E232", "spec.image", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: dbt
          image: ""  #<
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger: {policy: manual}
    """)),
    ("W209", "spec.trigger", doc("Transform", """
        metadata: {name: t}
        spec:  #<
          runtime: cloudquery
          mode: batch
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
    """)),
    ("E235", "spec.trigger.policy", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger:
            policy: onchange  #<
    """)),
    ("E236", "spec.trigger.schedule", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger:  #<
            policy: schedule
    """)),
    ("E239", "spec.trigger.schedule.cron", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger:
            policy: schedule
            schedule:
              cron: "0 25 * * *"  #<
    """)),
    ("E237", "spec.trigger.policies", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger:
            policy: composite
            policies: []  #<
    """)),
    ("E238", "spec.trigger.policies[2]", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger:
            policy: composite
            policies:
              - manual
              - policy: on-change
              - policy: composite  #<
    """)),
    ("E031", "spec.timeout", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger: {policy: manual}
          timeout: 30  #<
    """)),
    ("E250", "spec.inputs[1]", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs:
            - dataset: a
            - cell: c2  #<
          outputs: [{dataset: b}]
          trigger: {policy: manual}
    """)),
    ("E251", "spec.outputs[0]", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs:
            - dataset: b  #<
              tags: {tier: gold}
          trigger: {policy: manual}
    """)),
    ("W210", "spec.inputs[0].version", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs:
            - dataset: a
              version: ^1.0.0  #<
          outputs: [{dataset: b}]
          trigger: {policy: manual}
    """)),
    ("E311", "spec.outputs[0].schema", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs:
            - dataset: b
              schema: Users@^1  #<
          trigger: {policy: manual}
    """)),
    ("W253", "spec.replicas", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger: {policy: manual}
          replicas: 3  #<
    """)),
    ("E254", "spec.replicas", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: generic-go
          mode: streaming
          image: i
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          replicas: 0  #<
    """)),
    ("E255", "spec.env[0].name", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger: {policy: manual}
          env:
            - name: 1LOG-LEVEL  #<
              value: info
    """)),
    ("E256", "spec.env[1].name", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger: {policy: manual}
          env:
            - {name: LOG_LEVEL, value: info}
            - {name: LOG_LEVEL, value: debug}  #<
    """)),
    ("E257", "spec.env[0].valueFrom", doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger: {policy: manual}
          env:
            - name: DB_PASSWORD
              value: x
              valueFrom:  #<
                secretKeyRef: {name: db, key: password}
    """)),
]


def _case_id(case) -> str:
    return f"{case[0]}-{case[1]}"


@pytest.mark.parametrize("code, field, text", CASES, ids=[_case_id(c) for c in CASES])
def test_code_is_reported_at_the_offending_field(code, field, text):
    found = [d for d in check(text) if d.code == code]
    assert len(found) == 1, check(text)
    diagnostic = found[0]
    assert diagnostic.field == field
    assert diagnostic.line == marked_line(text)
    assert diagnostic.column >= 1
    assert diagnostic.file == FILE
    assert diagnostic.message
    assert diagnostic.hint
    assert diagnostic.severity is Severity(CODES[code].severity)


def test_every_manifest_code_is_covered():
    manifest_codes = {c for c, entry in CODES.items() if entry.group == "manifest"}
    assert {case[0] for case in CASES} == manifest_codes


@pytest.mark.parametrize("code, field, text", CASES, ids=[_case_id(c) for c in CASES])
def test_only_catalogue_codes_with_default_severity(code, field, text):
    for d in check(text):
        assert CODES[d.code].group == "manifest"
        # The code's letter no longer says its severity (issue 13 made some E-codes advisory): the catalogue does.
        assert d.severity.value == CODES[d.code].severity


# --- dk compatibility: order, messages -----------------------------------------------------------

def test_dk_worked_outcome_invalid_package():
    text = doc("Transform", """
        metadata:
          name: ""
        spec:
          runtime: generic-go
    """)
    result = check(text)
    assert [(d.code, d.field) for d in result] == [
        ("E006", "metadata.name"), ("E230", "spec.inputs"), ("E231", "spec.outputs"),
        ("E232", "spec.image"), ("W209", "spec.trigger")]
    assert [d.message for d in result] == [
        "metadata.name is required",
        "at least one input dataset is required",
        "at least one output dataset is required",
        "spec.image is required for generic-* runtimes",
        "trigger is recommended for batch-mode transforms",
    ]


def test_missing_metadata_name_points_at_metadata():
    text = doc("Transform", """
        metadata:  #<
          namespace: analytics
        spec: {runtime: cloudquery, inputs: [{dataset: a}], outputs: [{dataset: b}], trigger: {policy: manual}}
    """)
    [d] = check(text)
    assert (d.code, d.field, d.line) == ("E006", "metadata.name", marked_line(text))


def test_transform_order_follows_dk():
    text = doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: dbt
          mode: streaming
          trigger: {policy: nope}
          timeout: 1d
          inputs: [{}]
          outputs: [{dataset: b, tags: {a: b}}]
    """)
    assert codes(check(text)) == ["E252", "E232", "E235", "E031", "E250", "E251"]


def test_connector_messages_keep_dk_text():
    text = doc("Connector", """
        metadata: {name: pg}
        spec: {provider: "-pg", tools: [{type: run}]}
    """)
    messages = {d.code: d.message for d in check(text)}
    assert messages == {
        "E200": "spec.type is required for Connector",
        "E201": "spec.capabilities must list at least one capability (source, destination)",
        "E203": "spec.provider must be DNS-safe",
        "E204": "tool name is required",
        "E205": "tool type must be 'exec' or 'config'",
    }


def test_dbt_image_message():
    text = doc("Transform", """
        metadata: {name: t}
        spec: {runtime: dbt, inputs: [{dataset: a}], outputs: [{dataset: b}], trigger: {policy: manual}}
    """)
    [d] = check(text)
    assert d.message == "spec.image is required for dbt runtime"


def test_cloudquery_needs_no_image():
    assert check(VALID_CLOUDQUERY) == []


def test_streaming_transform_needs_no_trigger():
    assert "W209" not in codes(check(VALID_STREAMING))


def test_connector_namespace_is_not_checked():
    text = doc("Connector", """
        metadata: {name: pg, namespace: NOT_DNS}
        spec: {type: postgres, capabilities: [source]}
    """)
    assert check(text) == []


# --- hints ---------------------------------------------------------------------------------------

def _one(text: str, code: str):
    found = [d for d in check(text) if d.code == code]
    assert len(found) == 1, check(text)
    return found[0]


def test_classification_typo_hint():
    text = doc("DataSet", """
        metadata: {name: users}
        spec: {store: s, table: t, classification: confidental}
    """)
    assert "did you mean 'confidential'?" in _one(text, "E224").hint


def test_classification_unrelated_value_lists_choices():
    text = doc("DataSet", """
        metadata: {name: users}
        spec: {store: s, table: t, classification: top-secret-xyz}
    """)
    assert "public, internal, confidential, restricted" in _one(text, "E224").hint


def test_runtime_hints():
    text = doc("Transform", """
        metadata: {name: t}
        spec: {runtime: generic-pyhton, image: i, inputs: [{dataset: a}], outputs: [{dataset: b}]}
    """)
    assert "did you mean 'generic-python'?" in _one(text, "E233").hint
    missing = doc("Transform", """
        metadata: {name: t}
        spec: {image: i, inputs: [{dataset: a}], outputs: [{dataset: b}]}
    """)
    d = _one(missing, "E233")
    assert d.message == "spec.runtime must be a valid runtime (cloudquery, generic-go, generic-python, dbt)"
    assert "cloudquery, generic-go, generic-python, dbt" in d.hint


def test_semver_hint_mentions_leading_v():
    text = doc("Transform", """
        metadata: {name: t, version: v1.0.0}
        spec: {runtime: cloudquery, inputs: [{dataset: a}], outputs: [{dataset: b}], trigger: {policy: manual}}
    """)
    d = _one(text, "E020")
    assert d.message == "metadata.version must be valid SemVer"
    assert "leading 'v'" in d.hint and "1.0.0" in d.hint


@pytest.mark.parametrize("version, expected", [("1.0", "1.0.0"), ("01.0.0", "leading zeros"),
                                               ("1.2.3.4", "exactly three")])
def test_semver_hints(version, expected):
    text = doc("Connector", f"""
        metadata: {{name: pg}}
        spec: {{type: pg, capabilities: [source], version: "{version}"}}
    """)
    d = _one(text, "E020")
    assert d.message == "spec.version must be valid SemVer"
    assert expected in d.hint


@pytest.mark.parametrize("timeout, expected", [("30", "add a unit, e.g. 30m"), ("1d", "24h"),
                                               ("0s", "greater than zero"), ("-1h", "positive"),
                                               ("1h 30m", "1h30m"), ("fast", "30m")])
def test_timeout_hints(timeout, expected):
    text = doc("Transform", f"""
        metadata: {{name: t}}
        spec: {{runtime: cloudquery, inputs: [{{dataset: a}}], outputs: [{{dataset: b}}],
                trigger: {{policy: manual}}, timeout: "{timeout}"}}
    """)
    d = _one(text, "E031")
    assert d.message == "spec.timeout must be a valid duration (e.g., 1h, 30m)"
    assert expected in d.hint


def test_name_hint_suggests_a_dns_safe_name():
    text = doc("Store", """
        metadata: {name: My_Store}
        spec: {connector: pg, connection: {host: h}}
    """)
    d = _one(text, "E001")
    assert d.message == "metadata.name must be DNS-safe"
    assert "'my-store'" in d.hint


def test_composite_nested_hint():
    d = _one(CASES[[c[1] for c in CASES].index("spec.trigger.policies[2]")][2], "E238")
    assert "cannot be nested" in d.hint


def test_cron_problem_is_in_message():
    text = [c for c in CASES if c[0] == "E239"][0][2]
    d = _one(text, "E239")
    assert "hour" in d.message and "25" in d.message


def test_schedule_sub_policy_cron_is_checked():
    text = doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger:
            policy: composite
            policies:
              - policy: schedule
                schedule:
                  cron: "* * *"  #<
    """)
    d = _one(text, "E239")
    assert d.field == "spec.trigger.policies[0].schedule.cron"
    assert d.line == marked_line(text)


def test_schedule_sub_policy_without_any_schedule():
    text = doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger:
            policy: composite
            policies:
              - on-change
              - schedule  #<
    """)
    d = _one(text, "E236")
    assert d.field == "spec.trigger.policies[1]"
    assert d.line == marked_line(text)


def test_empty_cron_is_reported():
    text = doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger: {policy: schedule, schedule: {timezone: UTC}}
    """)
    assert codes(check(text)) == ["E239"]


def test_lineage_from_with_bad_dataset_part():
    text = doc("DataSet", """
        metadata: {name: users}
        spec:
          store: s
          table: t
          schema:
            - {name: a, type: string, from: Users.email}
            - {name: b, type: string, from: .email}
            - {name: c, type: string, from: "users."}
            - {name: d, type: string, from: users.address.city}
    """)
    result = check(text)
    assert [d.field for d in result] == ["spec.schema[0].from", "spec.schema[1].from", "spec.schema[2].from"]
    assert "'Users'" in result[0].hint


def test_declassify_without_reason_key_or_null():
    for body in ("declassify: {approvedBy: alice}", "declassify:"):
        text = doc("DataSet", f"""
            metadata: {{name: users}}
            spec:
              store: s
              table: t
              {body}
        """)
        d = _one(text, "E228")
        assert d.field == "spec.declassify.reason"


def test_masking_hint():
    text = doc("DataSet", """
        metadata: {name: users}
        spec:
          store: s
          table: t
          schema: [{name: email, type: string, masking: hsah}]
    """)
    assert "did you mean 'hash'?" in _one(text, "E226").hint


def test_env_name_missing():
    text = doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger: {policy: manual}
          env:
            - value: x  #<
    """)
    d = _one(text, "E255")
    assert d.field == "spec.env[0].name"
    assert d.line == marked_line(text)


def test_batch_with_replicas_zero_gives_both():
    text = doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger: {policy: manual}
          replicas: 0
    """)
    assert codes(check(text)) == ["W253", "E254"]


def test_duplicate_name_in_three_places():
    text = doc("DataSet", """
        metadata: {name: users}
        spec:
          store: s
          table: t
          schema:
            - {name: id, type: integer}
            - {name: id, type: integer}
            - {name: id, type: integer}
    """)
    result = check(text)
    assert [(d.code, d.field) for d in result] == [("E043", "spec.schema[1].name"),
                                                   ("E043", "spec.schema[2].name")]
    assert result[0].message == "duplicate schema field name: id"


# --- secrets -------------------------------------------------------------------------------------

def _store_with(secret: str, connection_secret: str) -> str:
    return doc("Store", f"""
        metadata: {{name: warehouse}}
        spec:
          connector: postgres
          connection:
            host: h
            api_key: {connection_secret}
            private_key_pem: {connection_secret}
          secrets:
            password: {secret}
            token: {secret}
    """)


def _assert_not_leaked(result, *values: str) -> None:
    for d in result:
        for value in values:
            assert value not in d.message, d
            assert value not in d.hint, d
            assert value not in d.field, d


def test_secret_values_are_never_printed():
    secret, inline = "'Hunter2!-s3cr3t'", "'AKIA-top-s3cr3t-key'"
    result = check(_store_with(secret, inline))
    assert codes(result) == ["E214", "E214", "W215", "W215"]
    _assert_not_leaked(result, "Hunter2!-s3cr3t", "AKIA-top-s3cr3t-key", "s3cr3t")
    assert "${PASSWORD}" in result[0].hint
    assert "${API_KEY}" in result[2].hint and "${PRIVATE_KEY_PEM}" in result[3].hint


_SECRETISH = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="'$"),
                     min_size=1, max_size=30).map(lambda s: "s3cr3t" + s)


@settings(max_examples=60, deadline=None)
@given(secret=_SECRETISH, inline=_SECRETISH)
def test_secret_values_are_never_printed_property(secret, inline):
    result = check(_store_with(f"'{secret}'", f"'{inline}'"))
    assert codes(result) == ["E214", "E214", "W215", "W215"]
    _assert_not_leaked(result, secret, inline, "s3cr3t")


def test_dollar_without_braces_gets_a_specific_hint():
    result = check(_store_with("$DB_PASSWORD", "${API_KEY}"))
    assert codes(result) == ["E214", "E214"]
    assert "braces" in result[0].hint
    _assert_not_leaked(result, "DB_PASSWORD")


def test_secret_references_and_numbers():
    text = doc("Store", """
        metadata: {name: warehouse}
        spec:
          connector: postgres
          connection: {host: h, db_password: 1234, passwordless: true, token_ttl: null}
          secrets:
            pin: 1234
            dsn: "user:${USER}@host"
            broken: "${1BAD}"
    """)
    result = check(text)
    assert [(d.code, d.field) for d in result] == [
        ("E214", "spec.secrets.pin"), ("E214", "spec.secrets.broken"),
        ("W215", "spec.connection.db_password")]
    _assert_not_leaked(result, "1234", "1BAD")


# --- loading from a file -------------------------------------------------------------------------

def test_through_the_loader(tmp_path):
    (tmp_path / "workspace.toml").write_text("")
    (tmp_path / "pkg").mkdir()
    text = doc("Transform", """
        metadata:
          name: enrich
        spec:
          runtime: generic-python
          image: i
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger: {policy: manual}
          timeout: 45  #<
    """)
    (tmp_path / "pkg" / "dk.yaml").write_text(text)
    workspace = Workspace(tmp_path, WorkspaceConfig())
    manifests, problems = load_file(workspace, ManifestFile("pkg/dk.yaml", "pkg", "dk.yaml"))
    assert problems == []
    [d] = check_manifest(manifests[0])
    assert (d.code, d.file, d.field, d.line) == ("E031", "pkg/dk.yaml", "spec.timeout",
                                                     marked_line(text))
    assert d.hint == "add a unit, e.g. 45m"


# --- format helpers: examples --------------------------------------------------------------------

@pytest.mark.parametrize("value", ["a", "0", "1abc", "my-name", "a" * 63, "a-b-c", "9-lives"])
def test_dns_safe_examples(value):
    assert is_dns_safe(value)


@pytest.mark.parametrize("value", ["", "-a", "a-", "A", "a_b", "a.b", "a" * 64, "café", "a b", "a\n"])
def test_not_dns_safe_examples(value):
    assert not is_dns_safe(value)


@pytest.mark.parametrize("value", ["1.2.3", "0.0.0", "1.2.3-rc.1", "1.2.3+build.5", "1.2.3-alpha-1.0+sha.abc",
                                   "10.20.30", "1.0.0-0A.is.legal"])
def test_semver_examples(value):
    assert is_semver(value)


@pytest.mark.parametrize("value", ["v1.0.0", "1.0", "1.2.3.4", "01.0.0", "1.01.0", "1..0", "1.2.3-",
                                   "1.2.3-01", "1.2.3+", "", " 1.2.3", "1.2.3\n", "１.2.3"])
def test_not_semver_examples(value):
    assert not is_semver(value)


@pytest.mark.parametrize("value", ["^1.2.0", "~1.2", ">=1.0.0 <2.0.0", "1.x", "1.2.*", "*", "=1.0.0",
                                   "^1.0.0 || ^2.0.0", "1.0.0 - 2.0.0", ">= 1.0.0", "1.2.3-beta.2", "~>1.2",
                                   "x", "<2", ">1.0.0-rc.1 || 3.x"])
def test_semver_range_examples(value):
    assert is_semver_range(value)


@pytest.mark.parametrize("value", ["abc", ">=", "^^1", "", "1.x.3", "v1.0.0", "1.0.0 ||", "|| 1.0.0",
                                   ">=1.0.0 <", "1.x-rc.1", "1.0.0 - ", "^1.0.0 foo", "01.0.0"])
def test_not_semver_range_examples(value):
    assert not is_semver_range(value)


@pytest.mark.parametrize("value, seconds", [("30m", 1800), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400),
                                            ("0s", 0), ("1h1h", 7200)])
def test_duration_examples(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["30", "", "1d", "-1h", "m30", "1hh", "1h ", "500ms", "1H", 30, None])
def test_not_duration_examples(value):
    assert parse_duration(value) is None


@pytest.mark.parametrize("value", ["* * * * *", "0 2 * * *", "*/15 * * * *", "0-30/5 9-17 * * 1-5",
                                   "0 0 1,15 * *", "0 0 * JAN-MAR mon-fri", "0 0 * dec SUN", "59 23 31 12 6",
                                   "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually"])
def test_cron_examples(value):
    assert cron_problem(value) is None


@pytest.mark.parametrize("value", ["", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
                                   "* * * 13 *", "* * * * 7", "*/0 * * * *", "5/15 * * * *", "30-10 * * * *",
                                   "a * * * *", "1,,2 * * * *", "@every 5m", "@midnight", "* * * FOO *"])
def test_not_cron_examples(value):
    assert cron_problem(value) is not None


@pytest.mark.parametrize("value, ok", [("users", True), ("users@^1.0.0", True), ("user-events@1.x", True),
                                       ("2fa", True), ("users@", False), ("Users", False), ("-users", False),
                                       ("users-", False), ("us--ers", False), ("", False), ("a@b@c", False),
                                       ("users@ ", False), ("user_events", False)])
def test_schema_module_refs(value, ok):
    assert is_schema_module_ref(value) is ok


# --- format helpers: properties ------------------------------------------------------------------

_DNS_NAME = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)


@given(_DNS_NAME)
def test_generated_dns_names_pass(name):
    assert is_dns_safe(name)


@given(_DNS_NAME, st.sampled_from(["-", "_", ".", "A", " ", "/", "é"]), st.integers(min_value=0))
def test_dns_names_with_a_bad_character_fail(name, bad, where):
    position = where % (len(name) + 1)
    broken = name[:position] + bad + name[position:]
    if bad == "-" and 0 < position < len(name):
        return  # an inner hyphen is fine
    assert not is_dns_safe(broken)


@given(st.text(alphabet="abc-0", min_size=64, max_size=100))
def test_long_names_fail(name):
    assert not is_dns_safe(name)


_NUMBER = st.integers(min_value=0, max_value=10**12).map(str)
_IDENT = st.from_regex(r"[0-9A-Za-z-]+", fullmatch=True).filter(
    lambda s: not (s.isdigit() and len(s) > 1 and s[0] == "0"))
_BUILD = st.from_regex(r"[0-9A-Za-z-]+", fullmatch=True)


@st.composite
def semvers(draw) -> str:
    core = ".".join(draw(_NUMBER) for _ in range(3))
    pre = draw(st.lists(_IDENT, max_size=3))
    build = draw(st.lists(_BUILD, max_size=3))
    return core + ("-" + ".".join(pre) if pre else "") + ("+" + ".".join(build) if build else "")


@given(semvers())
def test_generated_semvers_pass(version):
    assert is_semver(version)


@given(semvers(), st.sampled_from(["v", "V"]))
def test_leading_v_always_fails(version, v):
    assert not is_semver(v + version)


@given(st.lists(_NUMBER, min_size=1, max_size=6).filter(lambda parts: len(parts) != 3))
def test_wrong_number_of_parts_fails(parts):
    assert not is_semver(".".join(parts))


@given(semvers(), st.integers(min_value=0, max_value=2))
def test_leading_zero_fails(version, index):
    core, rest = re.match(r"([0-9.]+)(.*)", version).groups()
    parts = core.split(".")
    parts[index] = "0" + parts[index]
    assert not is_semver(".".join(parts) + rest)


@given(semvers(), st.sampled_from(["^", "~", ">=", "<=", ">", "<", "=", ""]))
def test_semver_with_operator_is_a_range(version, op):
    assert is_semver_range(op + version)


@given(st.lists(st.tuples(st.sampled_from(["h", "m", "s"]), st.integers(min_value=0, max_value=10**6)),
                min_size=1, max_size=5))
def test_generated_durations_parse(parts):
    text = "".join(f"{n}{unit}" for unit, n in parts)
    expected = sum(n * {"h": 3600, "m": 60, "s": 1}[unit] for unit, n in parts)
    assert parse_duration(text) == expected


@given(st.integers(min_value=0, max_value=10**9))
def test_bare_numbers_are_not_durations(n):
    assert parse_duration(str(n)) is None
    assert parse_duration(n) is None


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["d", "w", "ms", "us", "ns", "y", "H", "M"]))
def test_other_units_are_not_durations(n, unit):
    assert parse_duration(f"{n}{unit}") is None


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["h", "m", "s"]))
def test_positive_durations_pass_the_rule_and_zero_fails(n, unit):
    base = doc("Transform", """
        metadata: {name: t}
        spec:
          runtime: cloudquery
          inputs: [{dataset: a}]
          outputs: [{dataset: b}]
          trigger: {policy: manual}
    """)
    assert check(base + f"  timeout: {n}{unit}\n") == []
    assert codes(check(base + f"  timeout: 0{unit}\n")) == ["E031"]
    assert codes(check(base + f"  timeout: {n}\n")) == ["E031"]


@st.composite
def cron_fields(draw, low: int, high: int) -> str:
    def one() -> str:
        kind = draw(st.sampled_from(["star", "value", "range", "step", "range-step"]))
        a = draw(st.integers(min_value=low, max_value=high))
        b = draw(st.integers(min_value=a, max_value=high))
        n = draw(st.integers(min_value=1, max_value=high + 1))
        return {"star": "*", "value": str(a), "range": f"{a}-{b}", "step": f"*/{n}",
                "range-step": f"{a}-{b}/{n}"}[kind]
    return ",".join(one() for _ in range(draw(st.integers(min_value=1, max_value=3))))


@given(cron_fields(0, 59), cron_fields(0, 23), cron_fields(1, 31), cron_fields(1, 12), cron_fields(0, 6))
def test_generated_crons_pass(minute, hour, dom, month, dow):
    assert cron_problem(f"{minute} {hour} {dom} {month} {dow}") is None


# --- robustness: arbitrary strings never crash a rule ----------------------------------------

def _manifest_from_data(data: dict) -> Manifest:
    model = MODEL_OF_KIND[data["kind"]].model_validate(data)
    return Manifest(kind=data["kind"], name=model.metadata.name, file=FILE, doc_index=0, line=1,
                    package="", layout="dk.yaml", data=data, model=model)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=20), st.text(max_size=20))
def test_arbitrary_strings_never_crash(a, b, c, d):
    api = "datakit.infoblox.dev/v1alpha1"
    documents = [
        {"apiVersion": api, "kind": "Transform", "metadata": {"name": a, "namespace": b, "version": c},
         "spec": {"runtime": d, "mode": a, "timeout": b, "image": c,
                  "trigger": {"policy": d, "schedule": {"cron": a}, "policies": [b, {"policy": c}]},
                  "inputs": [{"dataset": a, "version": b, "schema": c}], "outputs": [{"tags": {a: b}}],
                  "env": [{"name": d, "value": a}, {"name": d, "value": b}]}},
        {"apiVersion": api, "kind": "Store", "metadata": {"name": a},
         "spec": {"connector": b, "connectorVersion": c, "connection": {d: a, "password": b},
                  "secrets": {a: b, "token": c}}},
        {"apiVersion": api, "kind": "DataSet", "metadata": {"name": a, "version": b},
         "spec": {"store": c, "format": d, "classification": a, "schemaRef": b,
                  "schema": [{"name": c, "type": d, "from": a, "masking": b}], "declassify": {"reason": c}}},
        {"apiVersion": api, "kind": "Connector", "metadata": {"name": a},
         "spec": {"type": b, "provider": c, "version": d, "capabilities": [a, b],
                  "tools": [{"name": c, "type": d}]}},
        {"apiVersion": api, "kind": "DataSetGroup", "metadata": {"name": a},
         "spec": {"store": b, "datasets": [c, d, c]}},
    ]
    for data in documents:
        for diagnostic in check_manifest(_manifest_from_data(data)):
            assert diagnostic.code in CODES and diagnostic.hint
            assert (diagnostic.line, diagnostic.column) == (1, 1)

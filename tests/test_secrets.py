"""Secrets in manifests (issue 18, class 1): credentials in URLs and connection strings, and values of
secret-looking keys, never leave dkb: not in artifacts (as built in .dkb/oci and as published to a
real registry), the local caches, lint output (text, JSON, SARIF), governance reports, lineage
events, nor error messages. Lint warns (W520, W521) and names the field and the fix."""

from __future__ import annotations

import gzip
import io
import json
import string
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dkbuild.manifests.redacted_text import redacted_yaml
from dkbuild.redaction import MARK, looks_like_secret_key, redact_document, redact_text
from tests.conftest import connector, store, transform

PW = "Zq7-hunter2-PW"


# --- the rules ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    f"postgres://admin:{PW}@db:5432/x", f"https://u:{PW}@s3.example", f"redis://:{PW}@cache:6379/0",
    f"https://{PW}@github.com/acme/repo.git", f"grpc://svc:{PW}@cache:9092",
    f"jdbc:postgresql://db/x?user=a&password={PW}", f"postgres://db/x?sslmode=require&sslpassword={PW}",
    f"https://api.example/v1?token={PW}&page=2", f"host=db user=admin password={PW} dbname=x",
    f"Server=db;Database=x;User Id=a;Password={PW};", f'PlainLoginModule required username="u" password="{PW}";',
    f"mysql://root:{PW}@p@ss@db/x", f"line one\napi_key: {PW}\n", f"s3://AKIA:{PW}/K7+b@bucket/k",
    f"Authorization: Bearer {PW}", f"--db-password={PW}", f"X-Api-Key: {PW}",
])
def test_credentials_inside_strings_are_redacted(text: str) -> None:
    clean = redact_text(text)
    assert PW not in clean and MARK in clean
    assert redact_text(clean) == clean                  # idempotent


@pytest.mark.parametrize("text", [
    "postgres://${DB_USER}:${DB_PASSWORD}@db:5432/x", "postgres://admin:${PW}@db/x", "https://s3.example/bucket",
    "jdbc:postgresql://db/x?user=a&password=${PW}", "http://host:8080/path?page=2&sort=asc",
    "postgresql://svc:***@db:5432/crm", "a password is needed", "token_url=https://auth/x",
])
def test_references_and_plain_urls_are_kept(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize("key", ["password", "db_pass", "adminPassword", "sslpassword", "X-API-Key", "client_secret",
                                 "authToken", "private_key_pem", "secret_access_key", "pwd", "apikey"])
def test_secret_keys(key: str) -> None:
    assert looks_like_secret_key(key)


@pytest.mark.parametrize("key", ["secret_ref", "secretKeyRef", "password_env", "token_url", "tokenizer", "bypass",
                                 "passwordless", "token_ttl", "primary_key", "connection_string", "host", "passthrough"])
def test_keys_that_name_where_a_secret_is(key: str) -> None:
    assert not looks_like_secret_key(key)


def test_documents_keep_references_and_the_shape_of_connector_schemas() -> None:
    data = {"spec": {"connection": {"password": 1234, "passwordless": True, "host": "h"},
                     "secrets": {"pin": 1, "pw": "${X}", "dsn": "u:${P}@h"},
                     "env": [{"name": "DB_PASSWORD", "value": PW}, {"name": "DB_HOST", "value": "db"}],
                     "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}},
                     "connectionSchema": {"password": {"field": "password", "secret": True}}}}
    clean, found = redact_document(data)
    spec = clean["spec"]
    assert spec["connection"] == {"password": MARK, "passwordless": True, "host": "h"}
    assert spec["secrets"] == {"pin": MARK, "pw": "${X}", "dsn": "u:${P}@h"}
    assert spec["env"] == [{"name": "DB_PASSWORD", "value": MARK}, {"name": "DB_HOST", "value": "db"}]
    assert spec["valueFrom"] == data["spec"]["valueFrom"] and spec["connectionSchema"] == data["spec"]["connectionSchema"]
    assert {f.path for f in found} == {("spec", "connection", "password"), ("spec", "secrets", "pin"),
                                       ("spec", "env", 0, "value")}
    assert data["spec"]["connection"]["password"] == 1234      # the input is not changed


# --- property: any secret, anywhere ------------------------------------------------------------

_SECRET = st.text(alphabet=string.ascii_letters + string.digits + "-_.~!*", min_size=6, max_size=24) \
    .map(lambda s: "S3cr" + s)
# Nesting names: not secret-looking, and not the few that describe a field (a connectionSchema's
# `field`, `description`, ...: redaction.py keeps those under a secret key, by design).
_NAME = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8).filter(
    lambda k: k not in {"field", "description", "type", "name", "kind", "format", "optional", "secret"})
_SCHEME = st.sampled_from(["postgres", "postgresql", "mysql", "https", "http", "redis", "amqp", "mongodb+srv",
                           "oci", "grpc", "s3", "kafka", "snowflake"])
_SECRET_KEY = st.sampled_from(["password", "db_password", "adminPassword", "api_key", "apiKey", "token",
                               "authToken", "client_secret", "secretAccessKey", "private_key", "passwd"])
_PARAM = st.sampled_from(["password", "sslpassword", "token", "access_token", "api_key", "secret"])


@st.composite
def secret_values(draw: Any) -> tuple[str, Any]:
    """(secret, value holding it): a URL with userinfo, a query or DSN parameter, or a bare value for a
    secret-looking key (the key comes with the placement)."""
    secret = draw(_SECRET)
    host = draw(_NAME) + ".example"
    shape = draw(st.sampled_from(["userinfo", "user-only", "query", "dsn"]))
    if shape == "userinfo":
        value = f"{draw(_SCHEME)}://{draw(_NAME)}:{secret}@{host}:{draw(st.integers(1, 65535))}/{draw(_NAME)}"
    elif shape == "user-only":
        value = f"{draw(_SCHEME)}://{secret}@{host}/{draw(_NAME)}"
    elif shape == "query":
        value = f"{draw(_SCHEME)}://{host}/{draw(_NAME)}?a=1&{draw(_PARAM)}={secret}"
    else:
        value = f"host={host} {draw(_PARAM)}={secret} dbname={draw(_NAME)}"
    return secret, value


@st.composite
def placed(draw: Any) -> tuple[str, dict[str, Any]]:
    """A Store whose connection hides one secret at a random depth, under a random field name (or a
    secret-looking key holding it bare)."""
    secret, value = draw(secret_values())
    if draw(st.booleans()):
        key, value = draw(_SECRET_KEY), secret
    else:
        key = draw(_NAME.filter(lambda k: not looks_like_secret_key(k)))
    for _ in range(draw(st.integers(0, 3))):
        value = {draw(_NAME.filter(lambda k: not looks_like_secret_key(k))): value} if draw(st.booleans()) \
            else [value]
    doc = store("lake")
    doc["spec"]["connection"][key] = value
    return secret, doc


@settings(max_examples=150, deadline=None)
@given(placed())
def test_property_no_secret_survives_redaction_or_text_redaction(case: tuple[str, dict[str, Any]]) -> None:
    secret, doc = case
    clean, found = redact_document(doc)
    assert found and secret not in json.dumps(clean)
    raw = yaml.safe_dump(doc, sort_keys=False).encode()
    packed = redacted_yaml(raw, "dk.yaml")
    assert packed is None or secret.encode() not in packed      # None: the caller packs a normalized copy
    if packed is not None:
        assert yaml.safe_load(packed) == clean


def test_a_secret_is_taken_out_wherever_it_is_repeated() -> None:
    """A YAML anchor on a non-secret key whose alias is a password's value, an argument list's
    `--password VALUE`, and a note that repeats the value."""
    raw = (f"kind: Transform\nmetadata: {{name: t}}\nx-default: &pw {PW}   # shared\n"
           f"spec:\n  password: *pw\n  command: [app, --password, {PW}x]\n  note: uses {PW}\n").encode()
    clean, found = redact_document(yaml.safe_load(raw))
    assert PW not in json.dumps(clean) and found
    packed = redacted_yaml(raw, "dk.yaml")
    assert packed is not None and PW.encode() not in packed and b"# shared" in packed
    assert yaml.safe_load(packed) == clean


def test_text_redaction_keeps_every_other_byte() -> None:
    raw = (f"# connect with postgres://admin:{PW}@db/x\n"
           "kind: Store\nmetadata: {name: lake}   # the lake\n"
           "spec:\n  connector: postgres\n  connection:\n"
           f"    password: \"{PW}\"    # rotate me\n    host: db\n"
           f"    dsn: 'host=db password={PW}'\n    user: ${{DB_USER}}\n").encode()
    packed = redacted_yaml(raw, "dk.yaml")
    assert packed is not None and PW.encode() not in packed
    assert packed.decode().splitlines()[2:6] == raw.decode().splitlines()[2:6]
    assert b"# rotate me" in packed and b"${DB_USER}" in packed


# --- end to end: build, lint, publish, report, events, errors ----------------------------------

def _secret_files(seed: str) -> dict[str, Any]:
    """One secret of each shape in a workspace, each a distinct token so a leak names its source."""
    lake = store("lake")
    lake["spec"]["connection"].update({
        "connection_string": f"postgres://admin:{seed}1@db:5432/x",
        "endpoint": f"https://u:{seed}2@s3.example",
        "password": f"{seed}3",
        "options": {"nested": [f"mysql://root:{seed}4@replica/x?sslpassword={seed}5"]},
        "auth": f"{seed}9",                        # not secret-looking, but its Connector says so
    })
    postgres = connector()
    postgres["spec"]["connectionSchema"] = {"auth": {"field": "auth", "secret": True}}
    lake["spec"]["secrets"] = {"password": "${LAKE_PASSWORD}"}
    ingest = transform("ingest", ["raw"], ["clean"],
                       env=[{"name": "API_TOKEN", "value": f"{seed}6"},
                            {"name": "UPSTREAM", "value": f"https://bot:{seed}7@api.example/v1?token={seed}8"}])
    return {"platform/stores/lake/dk.yaml": lake, "pipelines/ingest/dk.yaml": ingest,
            "platform/connectors/postgres/dk.yaml": postgres}


def _layer_bytes(path: Path) -> bytes:
    """A blob, and if it is a gzip'd tar, every member's bytes too."""
    data = path.read_bytes()
    try:
        unzipped = gzip.decompress(data)
    except OSError:
        return data
    out = [data, unzipped]
    try:
        with tarfile.open(fileobj=io.BytesIO(unzipped)) as tar:
            out += [tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()]  # type: ignore[union-attr]
    except tarfile.TarError:
        pass
    return b"\n".join(out)


def _assert_clean(root: Path, seed: str, *texts: str) -> None:
    for text in texts:
        assert seed not in text, text
    for path in (root / ".dkb").rglob("*"):
        if path.is_file():
            assert seed.encode() not in _layer_bytes(path), path


SEED = "Lk9pwSeed"


def test_build_lint_reports_and_caches_hold_no_secret(workspace, dkb) -> None:
    root = workspace(_secret_files(SEED))
    lint = dkb("lint", "--output", "json", cwd=root)
    assert lint.code == 0, lint                          # warnings: dk accepts these
    findings = {(d["code"], d["file"], d["field"]) for d in lint.json()["diagnostics"]}
    for field in ("spec.connection.connection_string", "spec.connection.endpoint",
                  "spec.connection.options.nested[0]"):
        assert ("W520", "platform/stores/lake/dk.yaml", field) in findings
    assert ("W215", "platform/stores/lake/dk.yaml", "spec.connection.password") in findings     # not twice
    assert ("W521", "platform/stores/lake/dk.yaml", "spec.connection.password") not in findings
    assert ("W521", "pipelines/ingest/dk.yaml", "spec.env[0].value") in findings
    assert ("W520", "pipelines/ingest/dk.yaml", "spec.env[1].value") in findings
    w520 = next(d for d in lint.json()["diagnostics"] if d["code"] == "W520")
    # Printed as a warning; advisory: dk accepts these, so `--strict` does not raise them.
    assert w520["line"] > 0 and "${" in w520["hint"] and w520["severity"] == "warning" and w520["advisory"]
    assert dkb("lint", "--strict", cwd=root).code == 0
    text = dkb("lint", cwd=root)
    sarif = dkb("lint", "--output", "sarif", cwd=root)
    build = dkb("build", "--output", "json", cwd=root)
    assert build.code == 0, build
    report = dkb("governance", "report", "--output", "json", cwd=root)
    html = dkb("governance", "report", "--output", "html", cwd=root)
    events = dkb("lineage", "emit", "--transport", "console", cwd=root)
    assert report.code == 0 and html.code == 0 and events.code == 0, (report, html, events)
    warm = dkb("lint", "--output", "json", cwd=root)    # from the snapshot: the same warnings
    assert {(d["code"], d["field"]) for d in warm.json()["diagnostics"]} == \
        {(d["code"], d["field"]) for d in lint.json()["diagnostics"]}
    _assert_clean(root, SEED, lint.out, lint.err, text.out, sarif.out, build.out, build.err, report.out, html.out,
                  events.out, events.err, warm.out)
    packed = [_layer_bytes(p) for p in (root / ".dkb/oci/blobs/sha256").iterdir()]
    assert any(b"connection_string: postgres://<redacted>@db:5432/x" in b for b in packed)
    assert any(b"- name: API_TOKEN\n    value: <redacted>" in b for b in packed)   # dk.yaml as written


def test_secret_change_does_not_change_the_artifact(workspace, dkb) -> None:
    """The artifact and its key depend on the redacted manifests: rotating a literal password in a
    Store rebuilds nothing and gives the same digest."""
    root = workspace(_secret_files(SEED))
    first = dkb("build", "--output", "json", cwd=root)
    path = root / "platform/stores/lake/dk.yaml"
    path.write_text(path.read_text().replace(f"{SEED}1", "rotated-pw"))
    second = dkb("build", "--output", "json", cwd=root)
    assert first.code == 0 and second.code == 0, (first, second)
    digests = [{t["label"]: (t["key"], t["artifacts"]["package"]) for t in r.json()["targets"]} for r in (first, second)]
    assert digests[0] == digests[1]
    assert {t["status"] for t in second.json()["targets"]} == {"cached"}


def test_run_still_gets_the_literal_values(workspace) -> None:
    from dkbuild.api import load
    from dkbuild.engine import snapshot
    from dkbuild.lineage.storeenv import store_env
    from dkbuild.manifests.loader import original_data

    root = workspace(_secret_files(SEED))
    load(root)                                           # cold: writes the snapshot
    snapshot._BODIES.clear()                             # as a new process would: nothing in memory
    graph = load(root).graph                             # warm: manifests from the snapshot, redacted
    assert "<redacted>" in store_env(graph, "//pipelines/ingest", {"LAKE_PASSWORD": "x"})["DK_STORE_DSN_LAKE"]
    env = store_env(graph, "//pipelines/ingest", {"LAKE_PASSWORD": "x"}, root=root)
    assert env["DK_STORE_DSN_LAKE"] == f"postgres://admin:{SEED}1@db:5432/x"
    lake = graph.lookup("Store", "lake").manifest
    assert lake.data["spec"]["connection"]["auth"] == MARK          # declared secret by the Connector
    assert original_data(lake, root)["spec"]["connection"]["auth"] == f"{SEED}9"


def test_run_plan_passes_literal_env_values_and_masks_them(workspace) -> None:
    from dkbuild.api import load
    from dkbuild.engine import snapshot
    from dkbuild.lineage.run import plan_run

    files = _secret_files(SEED)
    files["pipelines/ingest/dk.yaml"]["spec"]["command"] = ["python", "src/main.py"]
    root = workspace(files)
    load(root)
    snapshot._BODIES.clear()                             # a new process: manifests from the snapshot
    plan = plan_run(load(root), "//pipelines/ingest", placeholders=True)
    assert plan.env["API_TOKEN"] == f"{SEED}6" and plan.display_env["API_TOKEN"] == "***"
    assert plan.env["UPSTREAM"] == f"https://bot:{SEED}7@api.example/v1?token={SEED}8"
    assert SEED not in json.dumps(plan.display_env)
    assert plan.display_env["UPSTREAM"] == "https://<redacted>@api.example/v1?token=<redacted>"


@pytest.mark.parametrize("url", ["oci://user:{s}@127.0.0.1:1/x", "https://u:{s}@127.0.0.1:1/x",
                                 "user:{s}@127.0.0.1:1/x", "oci://{s}@127.0.0.1:1/x"])
def test_registry_url_credentials_are_never_echoed(workspace, dkb, url: str) -> None:
    root = workspace()
    for args in (["publish", "--registry", url.format(s=SEED), "--plain-http"],
                 ["publish", "--registry", url.format(s=SEED), "--plain-http", "--output", "json"]):
        res = dkb(*args, cwd=root)
        assert res.code != 0 and SEED not in res.out + res.err, res
        assert "credentials do not belong in a registry URL" in res.err and "docker login 127.0.0.1:1" in res.err
    res = dkb("build", "--remote-cache", url.format(s=SEED), cwd=root)
    assert SEED not in res.out + res.err, res
    _assert_clean(root, SEED)


def test_publish_to_a_real_registry_pushes_no_secret(workspace, dkb, registry) -> None:
    import subprocess

    root = workspace(_secret_files(SEED))
    res = dkb("publish", "--registry", f"oci://{registry.host}/acme", "--plain-http", "--output", "json", cwd=root)
    assert res.code == 0, res
    assert SEED not in res.out + res.err
    pushed = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/acme/ingest:1.0.0",
                             f"oci:{root / 'pulled'}:x"], capture_output=True, text=True)
    assert pushed.returncode == 0, pushed.stderr
    blobs = list((root / "pulled/blobs/sha256").iterdir())
    assert len(blobs) >= 4
    everything = b"\n".join(_layer_bytes(b) for b in blobs)
    assert SEED.encode() not in everything
    assert b"store/lake.yaml" in everything and b"postgres://<redacted>@db:5432/x" in everything


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(placed())
def test_property_build_and_lint_leak_nothing(workspace, dkb, tmp_path_factory, case) -> None:
    secret, doc = case
    root = workspace({"platform/stores/lake/dk.yaml": doc}, root=tmp_path_factory.mktemp("ws"))
    lint = dkb("lint", "--output", "json", cwd=root)
    assert {d["code"] for d in lint.json()["diagnostics"]} & {"W520", "W521", "W215"}, lint
    build = dkb("build", cwd=root)
    assert build.code == 0, build
    _assert_clean(root, secret, lint.out, lint.err, build.out, build.err)

"""The OCI registry client against a real CNCF distribution registry on loopback (tests/registry.py).

What a stub cannot show is tested for real: exact bytes and digests as the registry stores them
(cross-checked with skopeo), basic and bearer-token auth, credential sources, a registry SIGKILLed
mid-upload and restarted, and corruption in the registry's own storage. Only the retry policy
(5xx, 4xx, oversized answers, a lying Docker-Content-Digest) uses a scripted loopback HTTP server,
because a real registry cannot be made to answer that way on demand.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dkbuild.oci.auth import CredentialError, Credentials, resolve_credentials
from dkbuild.oci.jsoncanon import canonical_bytes, descriptor, sha256_digest
from dkbuild.oci.layout import OciLayout
from dkbuild.oci.package import PackageInputs, write_package
from dkbuild.oci.reference import Reference, parse_location, parse_reference
from dkbuild.oci.registry import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    AuthError,
    DigestMismatch,
    NotFound,
    RegistryClient,
    RegistryError,
    RegistryUnavailable,
    parse_challenges,
)
from dkbuild.oci.tarball import Entry
from tests.registry import Registry, free_port

CREDENTIAL_VARS = ("DKB_REGISTRY_TOKEN", "DKB_REGISTRY_USERNAME", "DKB_REGISTRY_PASSWORD", "DKB_REGISTRY_HOST",
                   "GITHUB_TOKEN", "GITHUB_ACTOR", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME")


@pytest.fixture(autouse=True)
def no_ambient_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test sees only the credentials it sets up: a fresh HOME and DOCKER_CONFIG."""
    for var in CREDENTIAL_VARS:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / ".docker"))
    return home


def package(layout: OciLayout, name: str = "enrich", content: bytes = b"print('hi')\n") -> dict[str, Any]:
    manifest = {"apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": "Transform",
                "metadata": {"name": name, "version": "1.0.0"}}
    built = write_package(layout, PackageInputs(
        name=name, namespace="acme", version="1.0.0", kind="Transform", description="", manifest=manifest,
        manifest_files=[Entry("dk.yaml", json.dumps(manifest).encode())], content=[Entry("src/main.py", content)],
        resources=[]))
    # Without the naming annotations dkb keeps for its local tags: a registry returns the bare descriptor.
    return {k: v for k, v in built.descriptor.items() if k != "annotations"}


def client(reg: Registry, **kwargs: Any) -> RegistryClient:
    return RegistryClient(reg.host, plain_http=True, **{"retries": 2, "backoff": 0.05, **kwargs})


def blobs_of(layout: OciLayout, desc: dict[str, Any]) -> set[str]:
    """Every digest reachable from a descriptor in a layout (reads through get_blob: verified)."""
    found = {desc["digest"]}
    manifest = json.loads(layout.get_blob(desc["digest"]))
    for child in manifest.get("manifests", []):
        found |= blobs_of(layout, child)
    for blob in [manifest.get("config"), *manifest.get("layers", [])]:
        if blob:
            layout.get_blob(blob["digest"])
            found.add(blob["digest"])
    return found


def skopeo_raw(reg: Registry, ref: str) -> bytes:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    proc = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{reg.host}/{ref}"],
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    text = "\n".join([str(exc), repr(exc), getattr(exc, "hint", ""), *map(str, exc.args),
                      "".join(traceback.format_exception(exc))])
    for secret in secrets:
        assert secret not in text


# --- references (pure) ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("oci://127.0.0.1:5000/acme/enrich:1.0", Reference("127.0.0.1:5000", "acme/enrich", "1.0")),
    ("ghcr.io/acme/enrich:v1", Reference("ghcr.io", "acme/enrich", "v1")),
    ("localhost:5000/acme/enrich", Reference("localhost:5000", "acme/enrich")),
    ("oci://registry/acme/x", Reference("registry", "acme/x")),
    ("host.example/a/b/c@sha256:" + "a" * 64, Reference("host.example", "a/b/c", None, "sha256:" + "a" * 64)),
    ("host.example/a:t@sha256:" + "b" * 64, Reference("host.example", "a", "t", "sha256:" + "b" * 64)),
])
def test_parse_reference(text: str, expected: Reference) -> None:
    ref = parse_reference(text)
    assert ref == expected
    assert parse_reference("oci://" + str(ref)) == ref


@pytest.mark.parametrize("text, words", [
    ("acme/enrich:1.0", "no registry host"),
    ("oci://host:5000", "no repository"),
    ("host.example/Acme/x", "invalid repository"),
    ("host.example/acme/x:-bad", "invalid tag"),
    ("host.example/acme/x@sha256:abc", "invalid digest"),
    ("oci://host:99999/x", "bad port"),
    ("", "no registry host"),
])
def test_parse_reference_rejects_clearly(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_reference(text)


def test_reference_helpers_and_locations() -> None:
    ref = parse_reference("oci://host:5000/acme/x")
    assert str(ref.with_tag("v2")) == "host:5000/acme/x:v2"
    assert str(ref.with_digest("sha256:" + "c" * 64)) == "host:5000/acme/x@sha256:" + "c" * 64
    with pytest.raises(ValueError):
        ref.with_tag("no/slash")
    assert parse_location("oci://host:5000/acme/cache") == ("host:5000", "acme/cache")
    assert parse_location("oci://host:5000/") == ("host:5000", "")
    assert parse_location("registry.example/team") == ("registry.example", "team")
    with pytest.raises(ValueError, match="not a tag"):
        parse_location("oci://host:5000/acme/cache:latest")


def test_parse_challenges() -> None:
    header = ('Bearer realm="https://auth.example/token",service="registry.example",'
              'scope="repository:acme/x:pull,push", Basic realm="x y"')
    assert parse_challenges(header) == [
        ("bearer", {"realm": "https://auth.example/token", "service": "registry.example",
                    "scope": "repository:acme/x:pull,push"}),
        ("basic", {"realm": "x y"})]
    assert parse_challenges('Basic realm="dkb-test"') == [("basic", {"realm": "dkb-test"})]


# --- credentials (pure, plus a fake helper executable) -------------------------------------------

def write_config(home: Path, config: dict[str, Any]) -> None:
    (home / ".docker" / "config.json").write_text(json.dumps(config))


def fake_helper(bindir: Path, name: str, host: str, username: str, secret: str) -> Path:
    """A `docker-credential-<name>` speaking the helper protocol; it logs the server it was asked for."""
    bindir.mkdir(parents=True, exist_ok=True)
    log = bindir / f"{name}.log"
    script = bindir / f"docker-credential-{name}"
    answer = json.dumps({"ServerURL": host, "Username": username, "Secret": secret})
    script.write_text(f"""#!/bin/sh
read -r server
printf '%s %s\\n' "$1" "$server" >> '{log}'
if [ "$1" = get ] && [ "$server" = '{host}' ]; then printf '%s' '{answer}'; exit 0; fi
echo "credentials not found in native keychain"; exit 1
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return log


@pytest.mark.parametrize("key", ["reg.example:5000", "https://reg.example:5000", "https://reg.example:5000/v1/",
                                 "http://reg.example:5000"])
def test_docker_config_auths_keys(no_ambient_credentials: Path, key: str) -> None:
    auth = base64.b64encode(b"alice:s3cret").decode()
    write_config(no_ambient_credentials, {"auths": {key: {"auth": auth}, "other.example": {"auth": "eDp5"}}})
    creds = resolve_credentials("reg.example:5000")
    assert creds is not None and (creds.username, creds.password) == ("alice", "s3cret")
    assert "docker config" in creds.source
    assert resolve_credentials("elsewhere.example") is None


def test_credentials_order_and_sources(no_ambient_credentials: Path, tmp_path: Path) -> None:
    write_config(no_ambient_credentials, {"auths": {"ghcr.io": {"username": "u", "password": "p"},
                                                    "idp.example": {"identitytoken": "refresh-me"}}})
    env = {"HOME": str(no_ambient_credentials), "DOCKER_CONFIG": str(no_ambient_credentials / ".docker")}
    assert resolve_credentials("ghcr.io", env).source.startswith("docker config")
    assert resolve_credentials("ghcr.io", {**env, "GITHUB_TOKEN": "gh"}) == Credentials("oauth2", "gh", None, "GITHUB_TOKEN")
    assert resolve_credentials("ghcr.io", {**env, "GITHUB_TOKEN": "gh", "GITHUB_ACTOR": "bot"}).username == "bot"
    assert resolve_credentials("quay.io", {**env, "GITHUB_TOKEN": "gh"}) is None
    both = {**env, "GITHUB_TOKEN": "gh", "DKB_REGISTRY_USERNAME": "d", "DKB_REGISTRY_PASSWORD": "k"}
    assert resolve_credentials("ghcr.io", both).source == "DKB_REGISTRY_USERNAME"
    token = resolve_credentials("ghcr.io", {**both, "DKB_REGISTRY_TOKEN": "t"})
    assert token.source == "DKB_REGISTRY_TOKEN" and token.is_registry_token
    assert resolve_credentials("ghcr.io", {**both, "DKB_REGISTRY_HOST": "other.example"}).source == "GITHUB_TOKEN"
    identity = resolve_credentials("idp.example", env)
    assert identity.identity_token == "refresh-me" and identity.password is None
    # podman/skopeo's auth.json is read after the docker config
    runtime = tmp_path / "run"
    (runtime / "containers").mkdir(parents=True)
    (runtime / "containers" / "auth.json").write_text(json.dumps({"auths": {"quay.io": {"auth": base64.b64encode(b"q:pw").decode()}}}))
    podman = resolve_credentials("quay.io", {**env, "XDG_RUNTIME_DIR": str(runtime)})
    assert (podman.username, podman.password) == ("q", "pw") and "auth.json" in podman.source


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials("alice", "hunter2-password", "refresh-token-xyz", "docker config")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "hunter2-password" not in text and "refresh-token-xyz" not in text
        assert "alice" in text and "docker config" in text


def test_credential_helpers(no_ambient_credentials: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_helper(tmp_path / "bin", "test", "reg.example", "helper-user", "helper-secret")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    write_config(no_ambient_credentials, {"credHelpers": {"reg.example": "test", "other.example": "nosuch"}})
    creds = resolve_credentials("reg.example")
    assert (creds.username, creds.password, creds.source) == ("helper-user", "helper-secret", "credential helper test")
    assert log.read_text() == "get reg.example\n"
    # credsStore serves every host; a host the store does not know is anonymous, not an error
    write_config(no_ambient_credentials, {"credsStore": "test"})
    assert resolve_credentials("reg.example").username == "helper-user"
    assert resolve_credentials("unknown.example") is None
    # a missing helper is an error only when it is the one configured for this host
    write_config(no_ambient_credentials, {"credHelpers": {"other.example": "nosuch"}})
    assert resolve_credentials("reg.example") is None
    with pytest.raises(CredentialError, match="docker-credential-nosuch .*not installed"):
        resolve_credentials("other.example")
    (no_ambient_credentials / ".docker" / "config.json").write_text("{not json")
    with pytest.raises(CredentialError, match="not valid JSON"):
        resolve_credentials("reg.example")


# --- the real registry: bytes and digests --------------------------------------------------------

def test_push_pull_roundtrip_exact_bytes(registry: Registry, tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "oci")
    desc = package(layout)
    c = client(registry)
    c.ping()
    assert c.push_from_layout(layout, desc, "acme/enrich", "1.0.0") == desc["digest"]
    manifest_bytes = layout.get_blob(desc["digest"])
    assert c.pull_manifest("acme/enrich", "1.0.0") == (manifest_bytes, OCI_MANIFEST, desc["digest"])
    assert skopeo_raw(registry, "acme/enrich:1.0.0") == manifest_bytes
    assert c.requests["blob-upload"] == 3          # config + two layers

    fresh = OciLayout(tmp_path / "fresh")
    assert c.pull_into_layout("acme/enrich", "1.0.0", fresh) == desc
    assert blobs_of(fresh, desc) == blobs_of(layout, desc)
    for digest in blobs_of(layout, desc):
        assert fresh.get_blob(digest) == layout.get_blob(digest)
    assert not [p for p in fresh.blobs.iterdir() if p.name.startswith(".")]     # no temp files left


def test_present_blobs_are_not_uploaded_again(registry: Registry, tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "oci")
    first, second = package(layout, content=b"one\n"), package(layout, content=b"two\n")
    c = client(registry)
    c.push_from_layout(layout, first, "acme/enrich", "a")
    uploads = c.requests["blob-upload"]
    assert c.push_from_layout(layout, first, "acme/enrich", "b") == first["digest"]
    assert c.requests["blob-upload"] == uploads               # nothing uploaded, only the tag
    c.push_from_layout(layout, second, "acme/enrich", "c")
    assert c.requests["blob-upload"] == uploads + 1           # config and manifests layer are shared
    config = json.loads(layout.get_blob(first["digest"]))["config"]
    assert c.push_blob("acme/enrich", config["digest"], layout.get_blob(config["digest"])) is False
    assert c.blob_exists("acme/enrich", config["digest"])
    assert not c.blob_exists("acme/other", config["digest"])
    assert sorted(c.tags("acme/enrich")) == ["a", "b", "c"]
    assert c.tags("acme/enrich", page_size=2) and sorted(c.tags("acme/enrich", page_size=2)) == ["a", "b", "c"]
    assert c.tags("acme/nothing-here") == []


def test_nested_index_and_docker_media_types(registry: Registry, tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "oci")
    children = [package(layout, "a", b"a\n"), package(layout, "b", b"b\n")]
    index_bytes = canonical_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
    index = descriptor(OCI_INDEX, index_bytes)
    layout.put_blob(index_bytes)
    c = client(registry)
    assert c.push_from_layout(layout, index, "acme/multi", "all") == index["digest"]
    assert skopeo_raw(registry, "acme/multi:all") == index_bytes
    for child in children:
        assert c.pull_manifest("acme/multi", child["digest"])[2] == child["digest"]
    fresh = OciLayout(tmp_path / "fresh")
    assert c.pull_into_layout("acme/multi", "all", fresh) == index
    assert blobs_of(fresh, index) == blobs_of(layout, index)

    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    c.push_blob("acme/docker", sha256_digest(config), config)
    docker = canonical_bytes({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "layers": [],
                              "config": descriptor("application/vnd.docker.container.image.v1+json", config)})
    c.push_manifest("acme/docker", "latest", docker, DOCKER_MANIFEST)
    assert c.pull_manifest("acme/docker", "latest") == (docker, DOCKER_MANIFEST, sha256_digest(docker))


def test_missing_things(registry: Registry, tmp_path: Path) -> None:
    c = client(registry)
    assert c.pull_manifest("acme/none", "latest") is None
    assert c.pull_manifest("acme/none", "sha256:" + "0" * 64) is None
    with pytest.raises(NotFound) as info:
        c.pull_blob("acme/none", "sha256:" + "0" * 64)
    assert info.value.status == 404 and f"{registry.host}/acme/none" in str(info.value)
    with pytest.raises(NotFound):
        c.pull_into_layout("acme/none", "latest", OciLayout(tmp_path / "oci"))
    with pytest.raises(RegistryError, match="MANIFEST_BLOB_UNKNOWN|blob unknown"):
        layout = OciLayout(tmp_path / "oci")
        c.push_manifest("acme/none", "x", layout.get_blob(package(layout)["digest"]), OCI_MANIFEST)
    with pytest.raises(ValueError):
        c.pull_manifest("Acme/Bad", "latest")


def test_digests_are_checked_before_sending(registry: Registry) -> None:
    c = client(registry)
    with pytest.raises(DigestMismatch):
        c.push_blob("acme/x", sha256_digest(b"this"), b"that")
    with pytest.raises(DigestMismatch):
        c.push_manifest("acme/x", sha256_digest(b"{}"), b'{"schemaVersion":2}', OCI_MANIFEST)
    assert c.requests["PUT"] == 0


def test_blob_from_file_with_wrong_digest_is_rejected(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"actual content")
    with pytest.raises(DigestMismatch, match="rejected"):
        client(registry).push_blob("acme/x", sha256_digest(b"claimed content"), path)


def test_corrupt_blob_in_registry_storage(registry: Registry, tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "oci")
    desc = package(layout)
    c = client(registry)
    c.push_from_layout(layout, desc, "acme/enrich", "v1")
    layer = json.loads(layout.get_blob(desc["digest"]))["layers"][1]["digest"]
    stored = registry.blob_data(layer)
    original = stored.read_bytes()
    stored.write_bytes(bytes(b ^ 0xFF for b in original))       # same length, other bytes
    with pytest.raises(DigestMismatch, match="corrupt") as info:
        c.pull_blob("acme/enrich", layer)
    assert layer in str(info.value)
    fresh = OciLayout(tmp_path / "fresh")
    with pytest.raises(DigestMismatch):
        c.pull_into_layout("acme/enrich", "v1", fresh)
    assert not fresh.blob_path(layer).exists()
    assert not fresh.blob_path(desc["digest"]).exists()         # no manifest without its blobs
    assert not [p for p in fresh.blobs.iterdir() if p.name.startswith(".")]


def test_referrers_fall_back_to_the_tag_schema(registry: Registry, tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "oci")
    subject = package(layout)
    empty = b"{}"
    layout.put_blob(empty)
    sig_bytes = canonical_bytes({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                 "artifactType": "application/vnd.dkb.test.signature",
                                 "config": descriptor("application/vnd.oci.empty.v1+json", empty),
                                 "layers": [descriptor("application/vnd.oci.empty.v1+json", empty)],
                                 "subject": subject})
    layout.put_blob(sig_bytes)
    c = client(registry)
    c.push_from_layout(layout, subject, "acme/enrich", "v1")
    assert c.referrers("acme/enrich", subject["digest"]) == []
    sig = c.push_from_layout(layout, descriptor(OCI_MANIFEST, sig_bytes), "acme/enrich", None)
    found = c.referrers("acme/enrich", subject["digest"])
    assert [(m["digest"], m["artifactType"]) for m in found] == [(sig, "application/vnd.dkb.test.signature")]
    assert c.referrers("acme/enrich", subject["digest"], "application/other") == []
    assert "sha256-" + subject["digest"].split(":")[1] in c.tags("acme/enrich")
    c.push_manifest("acme/enrich", sig, sig_bytes, OCI_MANIFEST)          # idempotent: listed once
    assert len(c.referrers("acme/enrich", subject["digest"])) == 1


# --- failures: down, slow, killed -----------------------------------------------------------------

def test_nothing_listening_is_unavailable_quickly() -> None:
    c = RegistryClient(f"127.0.0.1:{free_port()}", plain_http=True, retries=2, backoff=0.05)
    start = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="refused.*3 attempts") as info:
        c.ping()
    assert time.monotonic() - start < 3
    assert info.value.hint and info.value.registry in str(info.value)
    assert c.requests["GET"] == 3


def test_a_silent_server_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)               # the kernel accepts connections; nobody ever answers
        c = RegistryClient(f"127.0.0.1:{silent.getsockname()[1]}", plain_http=True, timeout=0.3, retries=1,
                           backoff=0.05)
        start = time.monotonic()
        with pytest.raises(RegistryUnavailable, match="timed out"):
            c.blob_exists("acme/x", sha256_digest(b"x"))
        assert time.monotonic() - start < 3


def test_https_against_a_plain_http_registry_says_so(registry: Registry) -> None:
    c = RegistryClient(registry.host, retries=3, backoff=0.05)
    with pytest.raises(RegistryError, match="TLS") as info:
        c.ping()
    assert not isinstance(info.value, RegistryUnavailable) and "plain_http" in info.value.hint
    assert c.requests["GET"] == 1                            # not retried: it would never work


def test_a_dropped_keep_alive_connection_is_reopened(registry: Registry) -> None:
    c = client(registry, retries=0)
    c.ping()                                   # leaves a keep-alive connection in the pool
    registry.stop()
    registry.start()                           # same port; the pooled connection is now dead
    c.ping()                                   # reconnects at once, without spending a retry
    assert c.requests["GET"] == 2


def test_registry_killed_mid_upload_then_repushed(registry: Registry, tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "oci")
    big = os.urandom(64 << 20)
    config = b'{"kind":"big"}'
    manifest = canonical_bytes({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.big",
                                "config": descriptor("application/x.big.config+json", config),
                                "layers": [descriptor("application/octet-stream", big)]})
    for data in (big, config, manifest):
        layout.put_blob(data)
    big_digest = sha256_digest(big)
    del big
    desc = descriptor(OCI_MANIFEST, manifest, artifact_type="application/x.big")
    started, killed = threading.Event(), threading.Event()

    def progress(digest: str, sent: int, total: int) -> None:
        if digest == big_digest and sent >= 8 << 20 and not started.is_set():
            started.set()
            killed.wait(10)            # hold the upload here until the registry is gone

    def killer() -> None:
        if started.wait(30):
            registry.kill()
        killed.set()

    thread = threading.Thread(target=killer)
    thread.start()
    c = client(registry, progress=progress)
    begin = time.monotonic()
    try:
        with pytest.raises(RegistryUnavailable) as info:
            c.push_from_layout(layout, desc, "acme/big", "v1")
    finally:
        started.set()
        thread.join()
    assert time.monotonic() - begin < 20
    assert big_digest in str(info.value)

    registry.start()
    again = client(registry)
    assert again.pull_manifest("acme/big", "v1") is None          # no half-published tag
    assert "v1" not in again.tags("acme/big")
    assert again.push_from_layout(layout, desc, "acme/big", "v1") == desc["digest"]
    assert again.requests["blob-upload"] == 1                      # the config got there before the kill
    assert again.pull_manifest("acme/big", "v1")[2] == desc["digest"]
    fresh = OciLayout(tmp_path / "fresh")
    assert again.pull_into_layout("acme/big", "v1", fresh) == desc
    assert fresh.verify_blob(big_digest)


# --- auth against the real registry --------------------------------------------------------------

def test_basic_auth_with_environment_credentials(auth_registry: Registry, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    layout = OciLayout(tmp_path / "oci")
    desc = package(layout)
    with pytest.raises(AuthError) as info:
        client(auth_registry).ping()
    assert info.value.status == 401 and "DKB_REGISTRY_USERNAME" in info.value.hint
    assert f"docker login {auth_registry.host}" in info.value.hint

    monkeypatch.setenv("DKB_REGISTRY_USERNAME", "dkb")
    monkeypatch.setenv("DKB_REGISTRY_PASSWORD", auth_registry.users["dkb"])
    c = client(auth_registry)
    c.ping()
    assert c.push_from_layout(layout, desc, "acme/enrich", "v1") == desc["digest"]
    assert c.pull_into_layout("acme/enrich", "v1", OciLayout(tmp_path / "fresh")) == desc
    assert c.tags("acme/enrich") == ["v1"]

    monkeypatch.setenv("DKB_REGISTRY_TOKEN", "a-bearer-token")       # wins over the user name, but
    with pytest.raises(AuthError, match="DKB_REGISTRY_TOKEN is a bearer token") as info:   # basic auth needs a user
        client(auth_registry).ping()
    assert_no_secret(info.value, "a-bearer-token")


def test_basic_auth_with_docker_config(auth_registry: Registry, tmp_path: Path, no_ambient_credentials: Path) -> None:
    auth = base64.b64encode(f"dkb:{auth_registry.users['dkb']}".encode()).decode()
    write_config(no_ambient_credentials, {"auths": {f"http://{auth_registry.host}": {"auth": auth}}})
    layout = OciLayout(tmp_path / "oci")
    desc = package(layout)
    assert client(auth_registry).push_from_layout(layout, desc, "acme/enrich", "v1") == desc["digest"]


def test_wrong_password_never_leaks(auth_registry: Registry, tmp_path: Path) -> None:
    wrong = "wrong-" + auth_registry.users["dkb"]
    c = client(auth_registry, credentials=Credentials("dkb", wrong, None, "DKB_REGISTRY_USERNAME"))
    layout = OciLayout(tmp_path / "oci")
    desc = package(layout)
    for call in (c.ping, lambda: c.push_from_layout(layout, desc, "acme/enrich", "v1"),
                 lambda: c.pull_manifest("acme/enrich", "v1")):
        with pytest.raises(AuthError) as info:
            call()
        assert info.value.status == 401 and "rejected" in info.value.hint and "DKB_REGISTRY_USERNAME" in info.value.hint
        assert_no_secret(info.value, wrong, auth_registry.users["dkb"],
                         base64.b64encode(f"dkb:{wrong}".encode()).decode())
    assert "wrong-" not in repr(c)


def test_basic_auth_with_a_credential_helper(auth_registry: Registry, tmp_path: Path, no_ambient_credentials: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_helper(tmp_path / "bin", "test", auth_registry.host, "dkb", auth_registry.users["dkb"])
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    write_config(no_ambient_credentials, {"auths": {auth_registry.host: {}}, "credHelpers": {auth_registry.host: "test"}})
    layout = OciLayout(tmp_path / "oci")
    desc = package(layout)
    c = client(auth_registry)
    assert c.push_from_layout(layout, desc, "acme/enrich", "v1") == desc["digest"]
    assert log.read_text() == f"get {auth_registry.host}\n"           # asked once, on the first 401

    write_config(no_ambient_credentials, {"credHelpers": {auth_registry.host: "nosuch"}})
    with pytest.raises(AuthError, match="docker-credential-nosuch"):
        client(auth_registry).ping()


def test_bearer_token_auth(token_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = token_registry.token
    assert tokens is not None
    layout = OciLayout(tmp_path / "oci")
    desc = package(layout)
    with pytest.raises(AuthError, match="401"):                   # an anonymous token grants nothing
        client(token_registry).push_from_layout(layout, desc, "acme/enrich", "v1")

    monkeypatch.setenv("DKB_REGISTRY_USERNAME", "dkb")
    monkeypatch.setenv("DKB_REGISTRY_PASSWORD", tokens.users["dkb"])
    tokens.requests.clear()
    c = client(token_registry)
    assert c.push_from_layout(layout, desc, "acme/enrich", "v1") == desc["digest"]
    assert c.pull_into_layout("acme/enrich", "v1", OciLayout(tmp_path / "fresh")) == desc
    assert c.tags("acme/enrich") == ["v1"]
    scopes = [tuple(r["scopes"]) for r in tokens.requests]
    assert all(r["user"] == "dkb" for r in tokens.requests)
    assert len(scopes) == len(set(scopes)) <= 2                    # one token per scope, then cached

    monkeypatch.setenv("DKB_REGISTRY_PASSWORD", "not-the-password")
    with pytest.raises(AuthError, match="token service rejected") as info:
        client(token_registry).pull_manifest("acme/enrich", "v1")
    assert_no_secret(info.value, "not-the-password", tokens.users["dkb"])


def test_identity_token_from_docker_config(token_registry: Registry, tmp_path: Path,
                                           no_ambient_credentials: Path) -> None:
    tokens = token_registry.token
    assert tokens is not None
    refresh = next(iter(tokens.refresh_tokens))
    write_config(no_ambient_credentials, {"auths": {token_registry.host: {"auth": base64.b64encode(b"<token>:").decode(),
                                                                          "identitytoken": refresh}}})
    layout = OciLayout(tmp_path / "oci")
    desc = package(layout)
    c = client(token_registry)
    assert c.push_from_layout(layout, desc, "acme/enrich", "v1") == desc["digest"]
    assert tokens.requests and all(r.get("grant") == "refresh_token" for r in tokens.requests)
    write_config(no_ambient_credentials, {"auths": {token_registry.host: {"identitytoken": "rt-forged"}}})
    with pytest.raises(AuthError, match="token service rejected") as info:
        client(token_registry).pull_manifest("acme/enrich", "v1")
    assert_no_secret(info.value, "rt-forged", refresh)


def test_registry_token_from_environment(token_registry: Registry, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = token_registry.token
    assert tokens is not None
    token = tokens.issue("dkb", ["repository:acme/enrich:pull,push"])
    monkeypatch.setenv("DKB_REGISTRY_TOKEN", token)
    tokens.requests.clear()
    layout = OciLayout(tmp_path / "oci")
    desc = package(layout)
    c = client(token_registry)
    assert c.push_from_layout(layout, desc, "acme/enrich", "v1") == desc["digest"]
    assert tokens.requests == []                                   # used as is, never exchanged
    with pytest.raises(AuthError) as info:                         # outside the token's scope
        c.push_from_layout(layout, desc, "acme/other", "v1")
    assert_no_secret(info.value, token)


# --- retry policy, against a scripted loopback server ----------------------------------------------

class Scripted:
    """Answers requests from a script of (status, headers, body); records what it was asked."""

    def __init__(self, script: list[tuple[int, dict[str, str], bytes]]):
        self.script = list(script)
        self.seen: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                outer.seen.append((self.command, self.path))
                status, headers, body = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                self.send_response(status)
                for k, v in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[Scripted] = []

    def make(*script: tuple[int, dict[str, str], bytes]) -> tuple[Scripted, RegistryClient]:
        server = Scripted(list(script))
        servers.append(server)
        return server, RegistryClient(server.host, plain_http=True, retries=2, backoff=0.01, timeout=2)

    yield make
    for server in servers:
        server.close()


def test_5xx_is_retried_then_succeeds_or_gives_up(scripted: Any) -> None:
    server, c = scripted((503, {}, b"busy"), (200, {}, b"{}"))
    c.ping()
    assert len(server.seen) == 2
    server, c = scripted((500, {}, b'{"errors":[{"code":"UNKNOWN","message":"boom"}]}'))
    with pytest.raises(RegistryUnavailable, match="HTTP 500: UNKNOWN: boom") as info:
        c.ping()
    assert info.value.status == 500 and len(server.seen) == 3


def test_4xx_is_not_retried(scripted: Any) -> None:
    server, c = scripted((400, {}, b'{"errors":[{"code":"NAME_INVALID","message":"bad name"}]}'))
    with pytest.raises(RegistryError, match="NAME_INVALID") as info:
        c.pull_manifest("acme/x", "latest")
    assert info.value.status == 400 and not isinstance(info.value, RegistryUnavailable)
    assert len(server.seen) == 1


def test_manifest_answers_are_bounded_and_verified(scripted: Any) -> None:
    _, c = scripted((200, {"Content-Type": OCI_MANIFEST}, b" " * ((4 << 20) + 1)))
    with pytest.raises(RegistryError, match="limit"):
        c.pull_manifest("acme/x", "latest")
    body = b'{"schemaVersion":2}'
    _, c = scripted((200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": sha256_digest(b"other")}, body))
    with pytest.raises(DigestMismatch, match="announced"):
        c.pull_manifest("acme/x", "latest")
    _, c = scripted((200, {"Content-Type": OCI_MANIFEST}, body))
    with pytest.raises(DigestMismatch):
        c.pull_manifest("acme/x", sha256_digest(b"something else"))
    _, c = scripted((201, {"Docker-Content-Digest": sha256_digest(b"other")}, b""))
    with pytest.raises(DigestMismatch, match="stored it as"):
        c.push_manifest("acme/x", "v1", body, OCI_MANIFEST)

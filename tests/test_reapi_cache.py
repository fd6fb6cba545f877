"""The REAPI remote cache (grpc://) against a real BuildGrid: round trip, read-only and down
servers, signing, large blobs through ByteStream, and the bound on RPCs in flight."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dkbuild.engine.remote_reapi import ENTRY_PATH, ReapiBackend
from dkbuild.remote.reapi import Digest, DigestMismatch, ReapiClient
from tests.buildgrid import BuildGrid
from tests.conftest import basic_files, write_tree
from tests.registry import free_port


def build(dkb, root: Path, url: str, *args: str, env=None):  # type: ignore[no-untyped-def]
    return dkb("build", "--remote-cache", url, "--output", "json", *args, cwd=root, env=env)


def statuses(res) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert res.code == 0, res
    return {t["label"]: t["status"] for t in res.json()["targets"]}


def artifacts(res) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    return {t["label"]: t["artifacts"] for t in res.json()["targets"]}


def local_blobs(root: Path, res) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Each target's blob digests, from the local action cache, after checking every blob's bytes."""
    found = {}
    for t in res.json()["targets"]:
        entry = json.loads((root / ".dkb" / "cache" / "ac" / f"{t['action_key']}.json").read_text())
        found[t["label"]] = [b["digest"] for b in entry["blobs"]]
        for digest in found[t["label"]]:
            assert Digest.of_file(blob_file(root, digest)).oci == digest
    return found


def blob_file(root: Path, digest: str) -> Path:
    return root / ".dkb" / "oci" / "blobs" / "sha256" / digest.split(":")[1]


def checkouts(tmp_path: Path, marker: str, extra: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Two clean workspaces with the same content; `marker` makes their keys this test's own, since
    the tests of this module share one server."""
    files = {**basic_files(), **{f"pipelines/{p}/src/marker.py": f"MARKER = {marker!r}\n" for p in ("ingest", "publish")},
             **(extra or {})}
    return write_tree(tmp_path / "ci", files), write_tree(tmp_path / "laptop", files)


def test_round_trip_second_workspace_builds_everything_as_remote_hits(tmp_path: Path, dkb, buildgrid) -> None:
    ci, laptop = checkouts(tmp_path, "round-trip")
    url = buildgrid.url()
    assert set(statuses(build(dkb, ci, url)).values()) == {"built"}                 # read-only by default
    assert set(statuses(build(dkb, laptop, url)).values()) == {"built"}             # so nothing to read
    shutil.rmtree(laptop / ".dkb")
    written = build(dkb, ci, url, "--remote-cache-write")
    assert set(statuses(written).values()) == {"cached"}                            # uploads local entries
    fetched = build(dkb, laptop, url)
    assert set(statuses(fetched).values()) == {"remote"}
    assert artifacts(fetched) == artifacts(written)
    assert "warnings" not in fetched.json()
    assert set(statuses(build(dkb, laptop, url)).values()) == {"cached"}            # now local
    assert local_blobs(laptop, fetched) == local_blobs(ci, written)                  # identical digests


def test_action_digest_is_the_same_everywhere_and_names_the_key(buildgrid) -> None:
    backend = ReapiBackend(ReapiClient.open(buildgrid.url()))
    command, action = backend.messages("ab" * 32)
    assert list(command.arguments) == ["dkb-cache-entry", "v1", "ab" * 32]
    assert Digest.from_proto(action.command_digest) == Digest.of(command.SerializeToString())
    other = ReapiBackend(ReapiClient.open(buildgrid.url("ro")))
    assert backend.action_digest("ab" * 32) == other.action_digest("ab" * 32) != backend.action_digest("cd" * 32)


def test_read_only_instance_is_read_and_not_written_with_one_warning(tmp_path: Path, dkb, buildgrid) -> None:
    ci, laptop = checkouts(tmp_path, "read-only")
    refused = build(dkb, ci, buildgrid.url("ro"), "--remote-cache-write")
    assert set(statuses(refused).values()) == {"built"}
    warnings = refused.json()["warnings"]
    assert len(warnings) == 1 and "read-only" in warnings[0], warnings
    assert set(statuses(build(dkb, laptop, buildgrid.url())).values()) == {"built"}  # nothing was written
    shutil.rmtree(laptop / ".dkb")
    build(dkb, ci, buildgrid.url(), "--remote-cache-write")                          # written through main
    read = build(dkb, laptop, buildgrid.url("ro"), "--remote-cache-write")           # read through ro
    assert set(statuses(read).values()) == {"remote"}
    assert "warnings" not in read.json()                     # remote hits: nothing to write, nothing refused
    required = build(dkb, write_tree(tmp_path / "third", basic_files()), buildgrid.url("ro"),
                     "--remote-cache-write", "--remote-cache-required")
    assert required.code == 1, required
    assert any("read-only" in e for t in required.json()["targets"] for e in t["errors"]), required.out


def test_server_down_degrades_to_local_with_one_warning(tmp_path: Path, dkb) -> None:
    ci, _ = checkouts(tmp_path, "down")
    res = build(dkb, ci, f"grpc://127.0.0.1:{free_port()}/main", "--remote-cache-write")
    assert set(statuses(res).values()) == {"built"}
    warnings = res.json()["warnings"]
    assert len(warnings) == 1 and "unusable" in warnings[0] and "UNAVAILABLE" in warnings[0], warnings
    required = build(dkb, write_tree(tmp_path / "other", basic_files()), f"grpc://127.0.0.1:{free_port()}",
                     "--remote-cache-required")
    assert required.code == 1
    assert set(t["status"] for t in required.json()["targets"]) == {"failed"}


def test_signed_entries_and_unsigned_or_tampered_ones_rejected(tmp_path: Path, dkb, buildgrid) -> None:
    ci, laptop = checkouts(tmp_path, "signed")
    url = buildgrid.url()
    signed = build(dkb, ci, url, "--remote-cache-write", env={"DKB_CACHE_SIGNING_KEY": "k1"})
    forged = build(dkb, laptop, url, env={"DKB_CACHE_SIGNING_KEY": "other-key"})
    assert set(statuses(forged).values()) == {"built"}
    assert any("signature" in w for w in forged.json()["warnings"])
    shutil.rmtree(laptop / ".dkb")
    good = build(dkb, laptop, url, env={"DKB_CACHE_SIGNING_KEY": "k1"})
    assert set(statuses(good).values()) == {"remote"}

    # Tamper with one entry on the server: same signature, other artifacts.
    key = {t["label"]: t["action_key"] for t in signed.json()["targets"]}["//pipelines/publish"]
    backend = ReapiBackend(ReapiClient.open(url))
    result = backend.client.get_action_result(backend.action_digest(key))
    entry_file = next(f for f in result.output_files if f.path == ENTRY_PATH)
    entry = json.loads(backend.client.read_blobs([Digest.from_proto(entry_file.digest)])[Digest.from_proto(entry_file.digest)])
    entry["artifacts"]["package"]["annotations"] = {"evil": "yes"}
    tampered = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    backend.client.upload({Digest.of(tampered): tampered})
    entry_file.digest.CopyFrom(Digest.of(tampered).proto())
    backend.client.update_action_result(backend.action_digest(key), result)
    shutil.rmtree(laptop / ".dkb")
    after = build(dkb, laptop, url, env={"DKB_CACHE_SIGNING_KEY": "k1"})
    assert statuses(after) == {"//pipelines/ingest": "remote", "//pipelines/publish": "built"}
    assert any("signature" in w and key[:12] in w for w in after.json()["warnings"])
    assert artifacts(after) == artifacts(signed)
    shutil.rmtree(laptop / ".dkb")
    unsigned_reader = build(dkb, laptop, url)      # without a key the tampered entry would be taken...
    assert statuses(unsigned_reader)["//pipelines/publish"] == "remote"

    # ...which is why a signing reader ignores unsigned entries.
    other_ci, other_laptop = checkouts(tmp_path / "unsigned", "unsigned")
    build(dkb, other_ci, url, "--remote-cache-write")
    rejected = build(dkb, other_laptop, url, env={"DKB_CACHE_SIGNING_KEY": "k1"})
    assert set(statuses(rejected).values()) == {"built"}
    assert any("missing or invalid signature" in w for w in rejected.json()["warnings"])


def test_corrupt_blob_on_the_server_is_rebuilt_locally(tmp_path: Path, dkb, buildgrid) -> None:
    ci, laptop = checkouts(tmp_path, "corrupt")
    url = buildgrid.url()
    written = {t["label"]: t for t in build(dkb, ci, url, "--remote-cache-write").json()["targets"]}
    stored = buildgrid.blob_file(written["//pipelines/ingest"]["artifacts"]["package"])
    stored.write_bytes(b"x" * stored.stat().st_size)                # the disk under the server rots
    res = build(dkb, laptop, url)
    assert statuses(res) == {"//pipelines/ingest": "built", "//pipelines/publish": "remote"}
    assert any("corrupt or incomplete" in w for w in res.json()["warnings"])
    assert artifacts(res) == {label: t["artifacts"] for label, t in written.items()}


def test_large_blob_goes_through_bytestream(tmp_path: Path, dkb, buildgrid) -> None:
    limit = ReapiClient.open(buildgrid.url()).capabilities().batch_limit
    payload = base64.b64encode(os.urandom(limit * 3 // 2)).decode()    # still larger than a batch once gzipped
    ci, laptop = checkouts(tmp_path, "large", {"pipelines/ingest/src/data.py": f"DATA = {payload!r}\n"})
    written = build(dkb, ci, buildgrid.url(), "--remote-cache-write")
    sizes = [blob_file(ci, d).stat().st_size for digests in local_blobs(ci, written).values() for d in digests]
    assert max(sizes) > limit                          # the package layer cannot go in a batch
    fetched = build(dkb, laptop, buildgrid.url())
    assert set(statuses(fetched).values()) == {"remote"}
    assert artifacts(fetched) == artifacts(written)
    assert local_blobs(laptop, fetched) == local_blobs(ci, written)


def test_rpcs_in_flight_are_bounded(buildgrid) -> None:
    client = ReapiClient.open(buildgrid.url(), env={"DKB_REAPI_MAX_IN_FLIGHT": "2"})
    blobs = [os.urandom(64 << 10) for _ in range(48)]
    errors: list[Exception] = []

    def work(part: list[bytes]) -> None:
        try:
            for data in part:
                client.upload_missing({Digest.of(data): data})
                assert client.read_blobs([Digest.of(data)])[Digest.of(data)] == data
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(blobs[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert client.gate.peak == 2          # eight threads wanted more; the gate held them to two


def test_bad_grpc_urls_are_usage_errors(tmp_path: Path, dkb) -> None:
    ci, _ = checkouts(tmp_path, "usage")
    for url, words in [("grpc://127.0.0.1", "port"), ("grpcx://host:1", "unknown scheme"),
                       ("grpcs://h:1", "DKB_REAPI_CA_CERT")]:
        env = {"DKB_REAPI_CA_CERT": str(tmp_path / "missing.pem")} if url.startswith("grpcs") else None
        res = build(dkb, ci, url, env=env)
        assert res.code == 2, res
        assert words in res.err and "Traceback" not in res.err, res


@pytest.mark.parametrize("size", ["small", "large"])
def test_corrupt_bytes_from_the_server_are_refused(tmp_path: Path, buildgrid, size: str) -> None:
    """The disk CAS hands out whatever its file holds: the client's digest check is what stops it,
    for a batch read and for a ByteStream read alike."""
    client = ReapiClient.open(buildgrid.url())
    data = os.urandom(16 if size == "small" else client.capabilities().batch_limit + 1)
    digest = Digest.of(data)
    client.upload({digest: data})
    stored = buildgrid.blob_file(digest.oci)
    stored.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    with pytest.raises(DigestMismatch):
        client.read_blobs([digest])
    with pytest.raises(DigestMismatch):
        client.read_blobs_to([digest], lambda d: tmp_path / d.hash)
    assert not (tmp_path / digest.hash).exists()          # an unverified blob never lands


@pytest.fixture(scope="module")
def secure_buildgrid(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """BuildGrid on grpcs://, requiring a client certificate (mTLS) and a JWT bearer token."""
    server = BuildGrid(tmp_path_factory.mktemp("buildgrid-tls"), secure=True).start()
    try:
        yield server
    finally:
        server.stop()


def test_grpcs_with_mtls_and_a_bearer_token_from_the_environment(tmp_path: Path, dkb, secure_buildgrid) -> None:
    ci, laptop = checkouts(tmp_path, "tls")
    url = secure_buildgrid.url()
    assert url.startswith("grpcs://")
    written = build(dkb, ci, url, "--remote-cache-write", env=secure_buildgrid.client_env())
    assert set(statuses(written).values()) == {"built"} and "warnings" not in written.json()
    fetched = build(dkb, laptop, url, env=secure_buildgrid.client_env())
    assert set(statuses(fetched).values()) == {"remote"}
    assert local_blobs(laptop, fetched) == local_blobs(ci, written)
    for env, words in [(secure_buildgrid.client_env(token=False), "UNAUTHENTICATED"),
                       (secure_buildgrid.client_env(client_cert=False), "UNAVAILABLE")]:
        shutil.rmtree(laptop / ".dkb")
        refused = build(dkb, laptop, url, env=env)
        assert set(statuses(refused).values()) == {"built"}
        warnings = refused.json()["warnings"]
        assert len(warnings) == 1 and words in warnings[0], warnings


def test_endpoint_urls_and_credentials_from_the_environment(tmp_path: Path) -> None:
    from dkbuild.remote.reapi import EndpointError, parse_endpoint

    plain = parse_endpoint("grpc://cache.internal:8980/ci/main", env={})
    assert (plain.target, plain.instance, plain.tls, plain.metadata()) == ("cache.internal:8980", "ci/main", False, ())
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    tls = parse_endpoint("grpcs://[::1]", env={"DKB_REAPI_TOKEN_FILE": str(token), "DKB_REAPI_MAX_IN_FLIGHT": "4"})
    assert (tls.target, tls.instance, tls.tls, tls.max_in_flight) == ("[::1]:443", "", True, 4)
    assert tls.metadata() == (("authorization", "Bearer s3cret"),)
    headers = parse_endpoint("grpcs://h", env={"DKB_REAPI_HEADERS": "X-BuildBuddy-API-Key=k1, x-team = data"})
    assert headers.metadata() == (("x-buildbuddy-api-key", "k1"), ("x-team", "data"))
    for url, env, words in [("grpc://h", {}, "no port"), ("http://h:1", {}, "not a REAPI URL"),
                            ("grpcs://h:1", {"DKB_REAPI_CLIENT_CERT": "c.pem"}, "go together"),
                            ("grpc://h:1", {"DKB_REAPI_CA_CERT": "ca.pem"}, "use a grpcs:// URL"),
                            ("grpc://h:1", {"DKB_REAPI_MAX_IN_FLIGHT": "0"}, "positive"),
                            ("grpc://h:1", {"DKB_REAPI_HEADERS": "novalue"}, "name=value")]:
        with pytest.raises(EndpointError, match=words):
            parse_endpoint(url, env=env)


def test_without_the_reapi_extra_dkb_runs_and_grpc_urls_say_what_to_install(tmp_path: Path) -> None:
    """The extra's modules made unimportable (None in sys.modules), as on an install without it."""
    ci, _ = checkouts(tmp_path, "no-extra")
    runner = ("import sys; sys.modules['buildgrid'] = None; sys.modules['grpc'] = None; "
              "from dkbuild.cli.main import main; sys.argv = ['dkb', *sys.argv[1:]]; main()")

    def dkb_without_extra(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", runner, *args], cwd=ci, capture_output=True, text=True, timeout=120)

    plain = dkb_without_extra("build", "--output", "json")
    assert plain.returncode == 0, plain.stderr
    missing = dkb_without_extra("build", "--remote-cache", "grpc://127.0.0.1:1/main")
    assert missing.returncode == 2
    assert "install dkbuild[reapi]" in missing.stderr and "Traceback" not in missing.stderr, missing.stderr

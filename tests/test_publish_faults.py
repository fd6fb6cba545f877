"""`dkb publish` against a registry that hangs, resets, truncates, freezes or dies mid-publish.

The registry is the real one (Debian's docker-registry, tests/registry.py). Faults in answers come
from `FaultProxy` (tests/fault_proxy.py), a test fixture in front of it; a frozen (SIGSTOP) or
killed registry is the real process, stopped while dkb talks to it directly. Limits are small
(`DKB_REGISTRY_TIMEOUT=1`, `DKB_REGISTRY_GIVE_UP_AFTER=3`) so that a hang costs seconds; the
upper bounds on wall time below are hang guards, far above what a run takes (see the report in
docs/fragments/registry.md for measured times).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dkbuild.oci.breaker import Breaker, RegistryLimits
from dkbuild.oci.layout import OciLayout
from dkbuild.oci.registry import RegistryClient
from tests.fault_proxy import FAULTS, FaultProxy
from tests.registry import Registry
from tests.test_store_faults import many_packages

FAST = {"DKB_REGISTRY_TIMEOUT": "1", "DKB_REGISTRY_GIVE_UP_AFTER": "3"}
HANG_GUARD = 30     # seconds: a run that takes longer is hanging


def publish(root: Path, host: str, *args: str, env: dict[str, str] | None = None,
            output: str = "json") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dkbuild", "publish", "--registry", f"oci://{host}/acme",
                           "--plain-http", "--output", output, *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **FAST, **(env or {})}, timeout=120)


def publish_proc(root: Path, host: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "dkbuild", "publish", "--registry", f"oci://{host}/acme",
                             "--plain-http", "--output", "json"], cwd=root, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **FAST})


def progress_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def built(root: Path) -> Path:
    res = subprocess.run([sys.executable, "-m", "dkbuild", "build"], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return root


def assert_complete(root: Path, registry: Registry, tmp_path: Path) -> None:
    """Every package is in the registry under its tag, with exactly the local digest, and pulls whole."""
    local = {t["label"]: t["artifacts"]["package"] for t in json.loads(subprocess.run(
        [sys.executable, "-m", "dkbuild", "build", "--output", "json"], cwd=root, capture_output=True,
        text=True).stdout)["targets"]}
    client = RegistryClient(registry.host, plain_http=True)
    for label, digest in local.items():
        name = label.rsplit("/", 1)[-1]
        assert client.manifest_digest(f"acme/{name}", "1.0.0") == digest, label
        client.pull_into_layout(f"acme/{name}", "1.0.0", OciLayout(tmp_path / "pulled"))
        index = client.pull_manifest(f"acme/{name}", digest.replace(":", "-"))
        assert index is not None and len(json.loads(index[0])["manifests"]) == 2, label   # SBOM + provenance


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    fixture = FaultProxy(registry.host)
    try:
        yield fixture
    finally:
        fixture.close()


# --- the breaker's arithmetic -------------------------------------------------------------------------

def test_breaker_opens_on_a_streak_a_silence_or_too_many_failures() -> None:
    now = [0.0]
    streak = Breaker(RegistryLimits(retries=2, give_up_after=100, max_failures=50), clock=lambda: now[0])
    assert not streak.failed(0, "a") and not streak.failed(0, "b")
    streak.answered()                                     # any answer ends the streak
    assert not streak.failed(0, "c") and not streak.failed(0, "d")
    assert "3 attempts in a row" in streak.failed(0, "e") and streak.open
    assert streak.failed(0, "f").startswith("e ")         # it stays open, with the first reason

    silence = Breaker(RegistryLimits(retries=9, give_up_after=20, max_failures=50), clock=lambda: now[0])
    now[0] = 10.0
    assert not silence.failed(0.0, "timed out")
    now[0] = 20.5
    assert "no answer for 20.5 s" in silence.failed(10.2, "timed out")

    total = Breaker(RegistryLimits(retries=3, give_up_after=100, max_failures=5), clock=lambda: now[0])
    for _ in range(2):
        assert not total.failed(now[0], "x") and not total.failed(now[0], "x")
        total.answered()
    assert "5 failed attempts in this run" in total.failed(now[0], "x")


def test_limits_are_validated_and_named_where_they_come_from(tmp_path: Path, dkb: Any) -> None:
    root = many_packages(tmp_path / "ws", 1)
    res = dkb("publish", "--registry", "oci://127.0.0.1:9/acme", "--plain-http", cwd=root,
              env={"DKB_REGISTRY_TIMEOUT": "-1"})
    assert res.code == 2 and "DKB_REGISTRY_TIMEOUT" in res.err and "Traceback" not in res.err, res
    (root / "workspace.toml").write_text("[registry]\nretries = 99\n")
    res = dkb("publish", "--registry", "oci://127.0.0.1:9/acme", "--plain-http", cwd=root)
    assert res.code == 2 and "workspace.toml" in res.err and "retries" in res.err, res


# --- progress ------------------------------------------------------------------------------------

def test_progress_per_target_as_text_and_json_lines(tmp_path: Path, registry: Registry) -> None:
    root = built(many_packages(tmp_path / "ws", 4))
    text = publish(root, registry.host, output="text")
    assert text.returncode == 0, text.stderr
    lines = [line for line in text.stderr.splitlines() if line.startswith("[")]
    assert [line.split()[0] for line in lines] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert all(" pushed " in line and f"{registry.host}/acme/p" in line for line in lines)
    again = publish(root, registry.host)
    assert again.returncode == 0, again.stderr
    events = progress_lines(again.stderr)
    assert [(e["done"], e["total"], e["status"]) for e in events] == [(i, 4, "unchanged") for i in range(1, 5)]
    assert {e["label"] for e in events} == {f"//pipelines/p{i}" for i in range(4)}
    assert all(e["digest"].startswith("sha256:") and e["duration_s"] >= 0 for e in events)
    assert json.loads(again.stdout)["summary"] == {"pushed": 0, "unchanged": 4, "conflict": 0, "failed": 0,
                                                  "skipped": 0, "not-attempted": 0}       # stdout stays one JSON document


# --- what an unchanged re-publish sends ------------------------------------------------------------

def test_unchanged_republish_sends_no_manifest_put(tmp_path: Path, registry: Registry, proxy: FaultProxy) -> None:
    root = built(many_packages(tmp_path / "ws", 5))
    first = publish(root, proxy.host)
    assert first.returncode == 0, first.stderr
    assert proxy.count("PUT", "/manifests/") >= 5 * 3        # package, SBOM, provenance (and the index)
    proxy.seen.clear()
    again = publish(root, proxy.host)
    assert again.returncode == 0, again.stderr
    assert {p["status"] for p in json.loads(again.stdout)["published"]} == {"unchanged"}
    assert proxy.count("PUT") == 0 and proxy.count("POST") == 0       # no manifest, no blob upload
    assert proxy.count("HEAD", "/manifests/sha256:") == 5 * 2        # each referrer looked up by digest


# --- broken answers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", FAULTS)
def test_a_broken_answer_now_and_then_is_retried(kind: str, tmp_path: Path, registry: Registry,
                                                proxy: FaultProxy) -> None:
    root = built(many_packages(tmp_path / "ws", 3))
    proxy.inject(kind, after=4, times=1, match="/blobs/")         # a blob HEAD, or an upload
    proxy.inject(kind, after=12, times=1, match="PUT /v2/acme/p1/manifests/")
    proxy.inject(kind, after=20, times=1, match="GET ")
    res = publish(root, proxy.host)
    assert res.returncode == 0, res.stderr
    assert proxy.faults() == [kind] * 3
    assert_complete(root, registry, tmp_path)


@pytest.mark.parametrize("kind", FAULTS)
def test_a_registry_that_keeps_failing_ends_the_run_in_seconds_with_one_message(
        kind: str, tmp_path: Path, registry: Registry, proxy: FaultProxy) -> None:
    root = built(many_packages(tmp_path / "ws", 10))
    proxy.inject(kind, after=40)                      # mid-publish: a few packages are already up
    start = time.monotonic()
    res = publish(root, proxy.host)
    assert time.monotonic() - start < HANG_GUARD
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    assert "stopped answering" in doc["stopped"]["message"] and doc["stopped"]["hint"]
    pushed = [p for p in doc["published"] if p["status"] == "pushed"]
    failed = [p for p in doc["published"] if p["status"] == "failed"]
    assert pushed and len(failed) == 1 and len(doc["not_attempted"]) == 10 - len(pushed) - 1
    assert doc["summary"]["not-attempted"] == len(doc["not_attempted"])
    stops = [e for e in progress_lines(res.stderr) if "stopped" in e]
    assert len(stops) == 1 and stops[0]["not_attempted"] == len(doc["not_attempted"])
    assert "Traceback" not in res.stderr
    # 4 attempts, then no more requests (an attempt is up to 3: an upload's POST and PUT, and a
    # look whether a lost answer had committed it; or a request and its reconnect)
    assert len(proxy.faults()) <= 3 * 4
    proxy.heal()
    proxy.inject(kind, after=20)
    before = len(proxy.faults())
    text = publish(root, proxy.host, output="text")                    # the same, for a person
    assert text.returncode == 1 and text.stderr.count("stopped answering") == 1, text.stderr
    assert "Traceback" not in text.stderr and 0 < len(proxy.faults()) - before <= 3 * 4
    proxy.heal()
    rerun = publish(root, proxy.host)
    assert rerun.returncode == 0, rerun.stderr
    assert {p["status"] for p in json.loads(rerun.stdout)["published"]} <= {"pushed", "unchanged"}
    assert_complete(root, registry, tmp_path)


def test_ctrl_c_mid_publish_says_what_is_left_and_a_rerun_finishes(tmp_path: Path, registry: Registry,
                                                                   proxy: FaultProxy) -> None:
    root = built(many_packages(tmp_path / "ws", 6))
    proxy.inject("hang", after=30)
    proc = subprocess.Popen([sys.executable, "-m", "dkbuild", "publish", "--registry", f"oci://{proxy.host}/acme",
                             "--plain-http", "--output", "json"], cwd=root, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "DKB_REGISTRY_TIMEOUT": "60"})
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not proxy.faults() and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)                  # Ctrl-C while an answer hangs
        out, err = proc.communicate(timeout=HANG_GUARD)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    doc = json.loads(out)
    assert "interrupted" in doc["stopped"]["message"] and doc["not_attempted"]
    proxy.heal()
    rerun = publish(root, proxy.host)
    assert rerun.returncode == 0, rerun.stderr
    assert_complete(root, registry, tmp_path)


def _when_tags(registry: Registry, count: int, action: Any) -> threading.Thread:
    """Run `action` once `count` packages have their tag in the registry's storage."""
    tags = registry.storage / "docker/registry/v2/repositories/acme"

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(list(tags.glob("*/_manifests/tags/1.0.0"))) >= count:
                action()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("fault", ["stop", "kill"])
def test_registry_frozen_or_killed_mid_publish(fault: str, tmp_path: Path, registry: Registry) -> None:
    root = built(many_packages(tmp_path / "ws", 12))
    assert registry.proc is not None
    pid = registry.proc.pid
    watcher = _when_tags(registry, 3, lambda: os.kill(pid, signal.SIGSTOP if fault == "stop" else signal.SIGKILL))
    start = time.monotonic()
    proc = publish_proc(root, registry.host)
    try:
        out, err = proc.communicate(timeout=HANG_GUARD)
    finally:
        proc.kill()
        watcher.join(5)
        if fault == "stop":
            os.kill(pid, signal.SIGCONT)
    assert time.monotonic() - start < HANG_GUARD
    assert proc.returncode == 1, err
    doc = json.loads(out)
    assert "stopped answering" in doc["stopped"]["message"]
    assert (" timed out" if fault == "stop" else "refused") in doc["stopped"]["message"]
    assert len(doc["not_attempted"]) >= 12 - 3 - 2
    assert "Traceback" not in err
    if fault == "kill":
        registry.proc = None
        registry.start()
    rerun = publish(root, registry.host)
    assert rerun.returncode == 0, rerun.stderr
    assert_complete(root, registry, tmp_path)


# --- two publishers at once --------------------------------------------------------------------------

def test_concurrent_publishes_of_the_same_content_both_succeed(tmp_path: Path, registry: Registry) -> None:
    root = built(many_packages(tmp_path / "ws", 20))
    first, second = publish_proc(root, registry.host), publish_proc(root, registry.host)
    out1, err1 = first.communicate(timeout=120)
    out2, err2 = second.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    statuses = [p["status"] for out in (out1, out2) for p in json.loads(out)["published"]]
    assert set(statuses) <= {"pushed", "unchanged"} and len(statuses) == 40
    assert_complete(root, registry, tmp_path)


# --- the local store ---------------------------------------------------------------------------------

def test_a_blob_corrupted_in_place_is_caught_before_upload(tmp_path: Path, registry: Registry,
                                                           proxy: FaultProxy) -> None:
    root = built(many_packages(tmp_path / "ws", 2))
    layout = OciLayout(root / ".dkb/oci")
    package = layout.resolve("p0:1.0.0")
    assert package is not None
    layer = max(json.loads(layout.get_blob(package["digest"]))["layers"], key=lambda d: d["size"])["digest"]
    path = layout.blob_path(layer)
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF                                   # same size ...
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))   # ... and the same mtime
    res = publish(root, proxy.host)
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    assert {t["label"]: t["status"] for t in doc["build"]["targets"]}["//pipelines/p0"] == "cached"
    p0 = next(p for p in doc["published"] if p["label"] == "//pipelines/p0")
    assert p0["status"] == "failed" and layer in p0["errors"][0] and "corrupt" in p0["errors"][0]
    assert "dkb publish" in p0["errors"][0]                                  # the fix, in the message
    assert next(p for p in doc["published"] if p["label"] == "//pipelines/p1")["status"] == "pushed"
    assert proxy.count("PUT", layer.replace(":", "%3A")) == 0                   # never sent
    assert not RegistryClient(registry.host, plain_http=True).blob_exists("acme/p0", layer)
    rerun = publish(root, proxy.host)
    assert rerun.returncode == 0, rerun.stderr
    assert {p["label"]: p["status"] for p in json.loads(rerun.stdout)["published"]}["//pipelines/p0"] == "pushed"
    assert_complete(root, registry, tmp_path)


WRITER = """
import sys, time
from pathlib import Path
from dkbuild.fsutil import atomic_file
with atomic_file(Path(sys.argv[1])) as fh:
    fh.write(b"half")
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def test_cache_gc_removes_temp_files_of_killed_writers_only(tmp_path: Path, dkb: Any) -> None:
    root = built(many_packages(tmp_path / "ws", 1))
    blobs = root / ".dkb/oci/blobs/sha256"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(blobs / name)], stdout=subprocess.PIPE, text=True)
               for name in ("killed", "alive")]
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        writers[0].send_signal(signal.SIGKILL)                  # kill -9 mid-write
        writers[0].wait()
        killed, alive = (next(blobs.glob(f".tmp-{w.pid}@*.part")) for w in writers)
        old = root / ".dkb/cache/ac/.tmp-0123abcd.part"          # an old one, from an older dkb
        old.write_bytes(b"left over")
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        recent = root / ".dkb/cache/ac/.tmp-4567efgh.part"     # a recent one whose writer is unknown
        recent.write_bytes(b"maybe being written")
        res = dkb("cache", "gc", "--output", "json", cwd=root)
        assert res.code == 0, res
        assert res.json()["temp_files_removed"] == 2
        assert not killed.exists() and not old.exists()
        assert alive.exists() and recent.exists()              # someone may still be writing these
        assert (root / ".dkb/oci/index.json").is_file()
    finally:
        for writer in writers:
            writer.kill()
            writer.wait()

"""Ctrl-C (SIGINT sent to a real `dkb` process mid-run): every long command ends with an
"interrupted" line and exit 130, keeps what finished, and leaves nothing half-written.
(The build case, with the store checked blob by blob, is in test_store_faults.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import basic_files, write_tree
from tests.test_store_faults import assert_store_consistent, many_packages


def start(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "dkbuild", *args], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert proc.poll() is None, f"dkb ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.02)


def interrupt(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "Aborted!" not in err, err
    last = err.splitlines()[-1]
    assert last.startswith("✗ interrupted:"), err
    assert "✓" not in err
    return out, err


def cache_entries(root: Path) -> list[Path]:
    return list((root / ".dkb/cache/ac").glob("*.json")) if (root / ".dkb/cache/ac").exists() else []


def test_publish_interrupted_while_building_publishes_nothing(tmp_path: Path, registry) -> None:
    root = many_packages(tmp_path / "ws", 30, big_each=3 * 1024 * 1024)
    proc = start(root, "publish", "-j", "1", "--registry", f"oci://{registry.host}/acme", "--plain-http")
    wait_for(lambda: bool(cache_entries(root)), proc, "a first cache entry")
    out, err = interrupt(proc)
    assert "nothing was published" in err.splitlines()[-1] and "not started" in err.splitlines()[-1]
    assert out.splitlines()[-1].startswith("✗ 30 target(s):") and "✓" not in out
    assert_store_consistent(root)
    catalog = json.loads(urllib.request.urlopen(f"{registry.url}/v2/_catalog").read())
    assert catalog["repositories"] == []


@pytest.fixture
def hung_registry() -> Iterator[dict[str, Any]]:
    """A TCP port that accepts connections and never answers, as a stopped registry does."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    state: dict[str, Any] = {"host": f"127.0.0.1:{server.getsockname()[1]}", "accepted": threading.Event(),
                             "conns": []}

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            state["conns"].append(conn)
            state["accepted"].set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield state
    server.close()
    for conn in state["conns"]:
        conn.close()


def test_publish_interrupted_while_pushing(workspace, hung_registry: dict[str, Any]) -> None:
    root = workspace()
    proc = start(root, "publish", "--registry", f"oci://{hung_registry['host']}/acme", "--plain-http")
    wait_for(hung_registry["accepted"].is_set, proc, "a connection to the registry")
    out, err = interrupt(proc)
    assert "published 0 of 2 target(s)" in err.splitlines()[-1], err
    assert out.splitlines()[-1].startswith("✓ 2 target(s): 2 built")    # the build itself finished


def test_lint_interrupted(tmp_path: Path) -> None:
    """Lint prints nothing until it is done, so the signal goes once lint is under way (its CPU
    time is past the interpreter's start-up) on a workspace big enough to still be linting."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.generate import generate

    root = tmp_path / "ws"
    generate(root, 1500, 0)
    proc = start(root, "lint")
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds() -> float:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    wait_for(lambda: cpu_seconds() > 0.6, proc, "lint under way")
    out, err = interrupt(proc)
    assert "`dkb lint` stopped before it finished" in err.splitlines()[-1]
    assert not list((root / ".dkb").rglob(".tmp-*.part")) if (root / ".dkb").exists() else True


def test_run_interrupted_kills_the_job_and_sends_abort(tmp_path: Path) -> None:
    marker = tmp_path / "job.pid"
    root = write_tree(tmp_path / "ws", {**basic_files(), "pipelines/ingest/main.py":
                      f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"})
    proc = start(root, "run", "//pipelines/ingest", "--heartbeat", "0")
    wait_for(lambda: marker.exists() and marker.read_text() != "", proc, "the job start")
    job = int(marker.read_text())
    out, err = interrupt(proc)
    assert "ABORT" in err.splitlines()[-1] and "//pipelines/ingest" in err.splitlines()[-1]
    with pytest.raises(ProcessLookupError):        # the job does not outlive dkb
        os.kill(job, 0)
    events = [json.loads(line) for line in (root / ".dkb/lineage/events.jsonl").read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "ABORT"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]

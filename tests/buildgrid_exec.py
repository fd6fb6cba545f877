"""Remote execution for real: PostgreSQL, BuildGrid with its SQL scheduler, and a fixture worker.

- `PostgresCluster`: a private cluster (initdb into a temp dir, trust auth on loopback, a free port),
  run as the `postgres` user when the tests run as root; stopped by pid.
- `BuildGridExec`: BuildGrid from the venv tests/buildgrid.py uses (scripts/buildgrid-venv.sh) with CAS, ByteStream,
  action cache, Execution and Bots on one instance, the scheduler on that PostgreSQL; stopped by pid.
  The server closes every connection after `connection_age_ms`, as production deployments do, so a
  long Execute stream is cut and the client has to resume it with WaitExecution.
- `FixtureWorker`: tests/fixture_worker.py, a TEST FIXTURE standing in for a production worker
  (none is packaged for this machine); stopped by pid.

Anything missing fails the test loudly (pytest.fail), never a skip.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.buildgrid import BuildGrid, ensure_buildgrid
from tests.registry import free_port

WORKER = Path(__file__).resolve().parent / "fixture_worker.py"
INSTANCE = "dkb"
# An instance whose queue holds one job and that no worker serves until a test starts one: the
# server answers RESOURCE_EXHAUSTED to a second Execute there.
FULL_INSTANCE = "dkb-full"
# What the fixture worker advertises, and so what image actions may ask for.
WORKER_PROPERTIES = {"OSFamily": "linux", "dkb-image-backend": "buildah"}


def _postgres_binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        pytest.fail(f"PostgreSQL's {name} is not installed (BuildGrid's SQL scheduler needs it): "
                    "run `make system-deps` (Debian package postgresql)")
    return found


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


class PostgresCluster:
    def __init__(self) -> None:
        # Under /tmp, not pytest's 0700 tmp dirs: the postgres user must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="dkb-pg-"))
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.root, self.user)
        self.port = 0
        self.log = self.root / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://bgd@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 30.0) -> "PostgresCluster":
        initdb, postgres = _postgres_binary("initdb"), _postgres_binary("postgres")
        done = subprocess.run([initdb, "-D", str(self.root / "data"), "-A", "trust", "-U", "bgd", "-E", "UTF8",
                               "--no-sync"], user=self.user, capture_output=True, cwd=self.root, check=False)
        if done.returncode != 0:
            pytest.fail(f"initdb failed: {done.stderr.decode(errors='replace')}")
        self.port = free_port()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [postgres, "-D", str(self.root / "data"), "-p", str(self.port), "-k", str(self.root),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off"],
                user=self.user, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while "ready to accept connections" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"PostgreSQL did not start:\n{_tail(self.log)}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)      # SIGINT: PostgreSQL's fast shutdown
        shutil.rmtree(self.root, ignore_errors=True)


class BuildGridExec(BuildGrid):
    """tests/buildgrid.py's server, configured for execution: its SQL scheduler on `database`."""

    def __init__(self, root: Path, database: str, connection_age_ms: int = 4000):
        super().__init__(root)
        self.database = database
        self.connection_age_ms = connection_age_ms

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, instance: str = INSTANCE) -> str:
        return f"grpc://{self.address}/{instance}"

    def _write_config(self) -> None:
        keys = json.dumps(sorted(k for k in WORKER_PROPERTIES if k not in ("OSFamily", "ISA")))
        instance = """\
  - name: {name}
    services:
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *scheduler
        operation-stream-keepalive-timeout: 1
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
"""
        self.config.write_text(f"""\
server:
  - !channel
    address: "{self.address}"
    insecure-mode: true
grpc-server-options:
  grpc.max_connection_age_ms: {self.connection_age_ms}
  grpc.max_connection_age_grace_ms: 500
authorization:
  method: none
connections:
  - !sql-connection &sql
    connection-string: {self.database}
    pool-size: 5
    max-overflow: 5
storages:
  - !disk-storage &cas
    path: {self.cas}
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 4096
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    action-cache: *ac
    storage: *cas
    property-set: !dynamic-property-set
      match-property-keys: {keys}
    instanced-queue-size:
      - max-size: 1
        instance-names: [{FULL_INSTANCE}]
instances:
{instance.format(name=INSTANCE)}{instance.format(name=FULL_INSTANCE)}thread-pool-size: 24
""")

    def start(self, timeout: float = 60.0) -> "BuildGridExec":
        migrate = subprocess.run([str(ensure_buildgrid()), "migrate", "apply", self.database], capture_output=True,
                                 check=False)
        if migrate.returncode != 0:
            pytest.fail(f"bgd migrate failed: {migrate.stderr.decode(errors='replace')[-2000:]}")
        self._write_config()
        super().start(timeout)
        return self


class FixtureWorker:
    """tests/fixture_worker.py as a process: `bots` bot sessions, each running one lease at a time."""

    def __init__(self, root: Path, address: str, bots: int = 2, instance: str = INSTANCE):
        self.root = root
        self.instance = instance
        self.root.mkdir(parents=True, exist_ok=True)
        self.address = address
        self.bots = bots
        self.events_file = root / "events.jsonl"
        self.log = root / "worker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> "FixtureWorker":
        args = [sys.executable, str(WORKER), "--server", self.address, "--instance", self.instance,
                "--events", str(self.events_file), "--workdir", str(self.root), "--bots", str(self.bots)]
        for key, value in WORKER_PROPERTIES.items():
            args += ["--property", f"{key}={value}"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while sum(e["event"] == "session" for e in self.events()) < self.bots:   # every bot is connected
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the fixture worker did not connect to BuildGrid:\n{_tail(self.log)}")
            time.sleep(0.05)
        return self

    def events(self) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        return [json.loads(line) for line in self.events_file.read_text().splitlines() if line.strip()]

    def executions(self) -> int:
        return sum(e["event"] == "start" for e in self.events())

    def peak_concurrency(self) -> int:
        running = peak = 0
        runs = [e for e in self.events() if e["event"] in ("start", "end")]
        for event in sorted(runs, key=lambda e: (e["time"], e["event"] == "start")):
            running += 1 if event["event"] == "start" else -1
            peak = max(peak, running)
        return peak

    def stop(self) -> None:
        _stop(self.proc)


class ExecStack:
    def __init__(self, root: Path, bots: int = 4):
        self.postgres = PostgresCluster()
        self.server = BuildGridExec(root / "buildgrid", "")
        self.worker = FixtureWorker(root / "worker", "", bots)

    def start(self) -> "ExecStack":
        try:
            self.postgres.start()
            self.server.database = self.postgres.url
            self.server.start()
            self.worker.address = self.server.address
            self.worker.start()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def url(self) -> str:
        return self.server.url()

    def stop(self) -> None:
        self.worker.stop()
        self.server.stop()
        self.postgres.stop()


@pytest.fixture(scope="module")
def buildgrid_exec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExecStack]:
    """One PostgreSQL + BuildGrid + fixture worker for a test module (they cost seconds of CPU)."""
    stack = ExecStack(tmp_path_factory.mktemp("buildgrid-exec")).start()
    try:
        yield stack
    finally:
        stack.stop()

"""A real BuildGrid REAPI server for tests, cache-only: a disk CAS, an in-memory action cache and
ByteStream, no database, on a free loopback port, from its own venv (`.venv-buildgrid`, made by
scripts/buildgrid-venv.sh: BuildGrid 0.9.1 needs Python >= 3.13).

Two instances share one storage: `main` (read-write) and `ro` (the same blobs and entries, but
CAS and ByteStream read-only and the action cache refusing updates), so a test can write through
one and see a read-only server through the other. Started and stopped by pid. Where BuildGrid or
its Python is missing, the fixture fails loudly; it never skips.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry import free_port

REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("DKB_BUILDGRID_VENV", REPO / ".venv-buildgrid"))
BGD = VENV / "bin" / "bgd"

CONFIG = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
{channel}
authorization:
{authorization}
storages:
  - !disk-storage &cas
    path: "{cas}"
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 200000
    allow-updates: true
  # The same entries as &ac (one shard: it), refusing updates.
  - !sharded-action-cache &ac-read-only
    allow-updates: false
    shards:
      - name: only
        cache: *ac
instances:
  - name: main
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
  - name: ro
    services:
      - !action-cache
        cache: *ac-read-only
      - !cas
        storage: *cas
        read-only: true
      - !bytestream
        storage: *cas
        read-only: true
thread-pool-size: 10
"""
PLAIN = ("    insecure-mode: true", "  method: none")
# grpcs with client certificates required (mTLS), and a JWT bearer token (HS256) on every call.
SECURE = ("""\
    insecure-mode: false
    credentials:
      tls-server-key: "{dir}/server.key"
      tls-server-cert: "{dir}/server.crt"
      tls-client-certs: "{dir}/ca.crt\"""", """\
  method: jwt
  secret: "{dir}/jwt.secret"
  algorithm: hs256""")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(root: Path) -> None:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, via openssl."""
    root.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(root / "ca.key"), "-out",
             str(root / "ca.crt"), "-days", "2", "-subj", "/CN=dkb-test-ca")
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                            ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(root / f"{name}.key"), "-out",
                 str(root / f"{name}.csr"), "-subj", f"/CN=dkb-test-{name}")
        (root / f"{name}.ext").write_text(extension + "\n")
        _openssl("x509", "-req", "-in", str(root / f"{name}.csr"), "-CA", str(root / "ca.crt"), "-CAkey",
                 str(root / "ca.key"), "-CAcreateserial", "-out", str(root / f"{name}.crt"), "-days", "2",
                 "-extfile", str(root / f"{name}.ext"))
    (root / "jwt.secret").write_text(os.urandom(16).hex())


def ensure_buildgrid() -> Path:
    """bgd, installing BuildGrid's venv first if it is not there (fails the test if it cannot)."""
    if not BGD.exists():
        setup = subprocess.run(["bash", str(REPO / "scripts" / "buildgrid-venv.sh"), str(VENV)],
                               capture_output=True, text=True)
        if setup.returncode != 0 or not BGD.exists():
            pytest.fail(f"BuildGrid is not installed at {VENV} and scripts/buildgrid-venv.sh could not install it:\n"
                        f"{setup.stdout}{setup.stderr}", pytrace=False)
    return BGD


class BuildGrid:
    def __init__(self, root: Path, *, secure: bool = False):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "buildgrid.yml"
        self.log = root / "buildgrid.log"
        self.port = free_port()
        self.cas = root / "cas"
        self.pki = root / "pki" if secure else None
        if self.pki:
            make_pki(self.pki)
        channel, authorization = (part.format(dir=self.pki) for part in SECURE) if self.pki else PLAIN
        self.config.write_text(CONFIG.format(port=self.port, cas=self.cas, channel=channel,
                                             authorization=authorization))
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, instance: str = "main") -> str:
        return f"{'grpcs' if self.pki else 'grpc'}://127.0.0.1:{self.port}/{instance}"

    def client_env(self, *, token: bool = True, client_cert: bool = True) -> dict[str, str]:
        """The DKB_REAPI_* settings a client of the secure server needs (empty for the plain one)."""
        if self.pki is None:
            return {}
        import jwt      # PyJWT, a test dependency (through PyGithub)

        env = {"DKB_REAPI_CA_CERT": str(self.pki / "ca.crt")}
        if client_cert:
            env |= {"DKB_REAPI_CLIENT_CERT": str(self.pki / "client.crt"),
                    "DKB_REAPI_CLIENT_KEY": str(self.pki / "client.key")}
        if token:
            env["DKB_REAPI_TOKEN"] = jwt.encode({"sub": "dkb-test", "exp": int(time.time()) + 3600},
                                                (self.pki / "jwt.secret").read_text(), algorithm="HS256")
        return env

    def blob_file(self, digest: str) -> Path:
        """Where BuildGrid's disk storage keeps a blob (`sha256:<hex>`), for planting corrupt bytes."""
        hexdigest = digest.partition(":")[2]
        return self.cas / "cas" / "objects" / hexdigest[:2] / hexdigest[2:]

    def start(self, timeout: float = 60.0) -> "BuildGrid":
        bgd = ensure_buildgrid()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([str(bgd), "server", "start", str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        from dkbuild.remote.reapi import ReapiClient, ReapiUnavailable

        client = ReapiClient.open(self.url(), self.client_env())
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    pytest.fail(f"BuildGrid exited with {self.proc.returncode}:\n{self.log_tail()}", pytrace=False)
                try:
                    client.capabilities()
                    return self
                except ReapiUnavailable:
                    time.sleep(0.1)
        finally:
            client.close()
        self.stop()
        pytest.fail(f"BuildGrid did not answer GetCapabilities within {timeout}s:\n{self.log_tail()}", pytrace=False)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


@pytest.fixture(scope="module")
def buildgrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildGrid]:
    """One cache-only BuildGrid per test module (it starts in about 2 s; tests use distinct keys)."""
    server = BuildGrid(tmp_path_factory.mktemp("buildgrid")).start()
    try:
        yield server
    finally:
        server.stop()

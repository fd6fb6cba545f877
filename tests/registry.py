"""A real OCI registry for tests: CNCF distribution (`docker-registry serve`) on 127.0.0.1.

`Registry` writes a config.yml (filesystem storage in a temp dir, a free loopback port, deletes
enabled, optional htpasswd or token auth), starts the server, waits for /v2/ to answer, and can
stop (SIGTERM), kill (SIGKILL) and start again on the same port and storage. `TokenServer` is a
small loopback token service (the registry's `auth: token` mode): it checks basic credentials and
issues RS256 JWTs signed with a throwaway key via the openssl CLI, so the bearer-token flow is
exercised against the real registry's verification, not against a stub.

Fixtures (imported by conftest.py): `registry`, `auth_registry` (htpasswd, user `dkb` with a
generated password) and `token_registry`. They skip only when `docker-registry` is not installed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

BINARY = shutil.which("docker-registry")
SKIP_REASON = "docker-registry (CNCF distribution) is not installed; run `make system-deps`"


def require_registry() -> str:
    if BINARY is None:
        pytest.skip(SKIP_REASON)
    return BINARY


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def htpasswd_line(user: str, password: str) -> str:
    import bcrypt  # test dependency; cost 4 keeps registry logins fast
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}"


class Registry:
    def __init__(self, root: Path, *, users: dict[str, str] | None = None, token: TokenServer | None = None):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.storage = root / "storage"
        self.config = root / "config.yml"
        self.log = root / "registry.log"
        self.port = 0                         # learnt at the first start
        self.http_secret = secrets.token_hex(16)   # the same across restarts, like the storage
        self.users = dict(users or {})
        self.token = token
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        lines = [
            "version: 0.1",
            # info level only until the port is known: that line is how we learn it
            "log:", f"  level: {'warn' if self.port else 'info'}", "  accesslog:", "    disabled: true",
            "storage:", "  filesystem:", f"    rootdirectory: {json.dumps(str(self.storage))}",
            "  delete:", "    enabled: true",
            "http:", f"  addr: {self.host}", f"  secret: {self.http_secret}",
        ]
        if self.users:
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in self.users.items()))
            lines += ["auth:", "  htpasswd:", "    realm: dkb-test", f"    path: {json.dumps(str(htpasswd))}"]
        elif self.token:
            lines += ["auth:", "  token:", f"    realm: {self.token.url}/token", f"    service: {self.token.service}",
                      f"    issuer: {self.token.issuer}", f"    rootcertbundle: {json.dumps(str(self.token.cert))}"]
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 15.0) -> Registry:
        """Start and wait until /v2/ answers. The first start binds port 0 (no race with other tests
        for a free port) and reads the port from the log; restarts reuse that port and the storage."""
        binary = require_registry()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([binary, "serve", str(self.config)], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.port == 0:
                found = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.log.read_text(errors="replace"))
                if not found:
                    time.sleep(0.01)
                    continue
                self.port = int(found.group(1))
                self._write_config()          # fixed port (and quiet logs) for restarts
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1):
                    pass
            except urllib.error.HTTPError:
                pass                          # 401 from an auth registry: it is up
            except OSError:
                time.sleep(0.01)
                continue
            return self
        self.kill()
        raise RuntimeError(f"docker-registry did not answer within {timeout}s:\n{self.log_tail()}")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no graceful shutdown, connections reset."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    @property
    def username(self) -> str | None:
        """The (first) user of an auth registry, htpasswd or token: `dkb`."""
        users = self.users or (self.token.users if self.token else {})
        return next(iter(users), None)

    @property
    def password(self) -> str | None:
        users = self.users or (self.token.users if self.token else {})
        return users.get(self.username) if self.username else None

    def blob_data(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.storage / "docker/registry/v2/blobs" / algorithm / hexdigest[:2] / hexdigest / "data"

    blob_file = blob_data

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A loopback token service for `auth: token`: basic credentials in, a signed JWT out."""

    service = "dkb-test-registry"
    issuer = "dkb-test-issuer"

    def __init__(self, root: Path, users: dict[str, str]):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.users = dict(users)
        self.key = root / "token.key"
        self.cert = root / "token.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "2", "-subj", "/CN=dkb-test-token"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self._x5c = base64.b64encode(der).decode()
        self.refresh_tokens = {"rt-" + secrets.token_urlsafe(12): user for user in self.users}
        self.requests: list[dict[str, Any]] = []     # {"user", "scopes"} per token request
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def issue(self, user: str | None, scopes: list[str]) -> str:
        access = []
        for scope in scopes if user else []:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and name:
                access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service, "exp": now + 300, "nbf": now - 30,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing_input.encode(), check=True, capture_output=True).stdout
        return f"{signing_input}.{_b64url(signature)}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                user = None
                authorization = self.headers.get("Authorization", "")
                if authorization.startswith("Basic "):
                    name, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
                    if server.users.get(name) != password:
                        self._answer(401, {"details": "bad credentials"})
                        return
                    user = name
                scopes = query.get("scope", [])
                with server._lock:
                    server.requests.append({"user": user, "scopes": scopes})
                self._answer(200, {"token": server.issue(user, scopes), "expires_in": 300})

            def do_POST(self) -> None:  # the OAuth2 refresh-token grant (docker's `identitytoken`)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                user = server.refresh_tokens.get(form.get("refresh_token", [""])[0])
                if form.get("grant_type") != ["refresh_token"] or user is None:
                    self._answer(401, {"details": "bad refresh token"})
                    return
                scopes = form.get("scope", [])
                with server._lock:
                    server.requests.append({"user": user, "scopes": scopes, "grant": "refresh_token"})
                self._answer(200, {"access_token": server.issue(user, scopes), "expires_in": 300})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- fixtures (imported by tests/conftest.py) ------------------------------------------------------

@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """An open registry on a free loopback port, fresh storage per test (it starts in ~50 ms)."""
    require_registry()
    reg = Registry(tmp_path / "registry").start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry behind htpasswd basic auth: `.username` (`dkb`) and a generated `.password`."""
    require_registry()
    reg = Registry(tmp_path / "auth-registry", users={"dkb": "pw-" + secrets.token_urlsafe(12)}).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry behind bearer-token auth, its TokenServer at `.token`; `.username`/`.password` log in."""
    require_registry()
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to sign test tokens")
    tokens = TokenServer(tmp_path / "token-server", {"dkb": "pw-" + secrets.token_urlsafe(12)})
    reg = Registry(tmp_path / "token-registry", token=tokens).start()
    try:
        yield reg
    finally:
        reg.stop()
        tokens.close()

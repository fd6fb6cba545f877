"""Where a REAPI server is and how to talk to it: `grpc://HOST:PORT[/INSTANCE]` (plaintext) or
`grpcs://HOST[:PORT][/INSTANCE]` (TLS), plus credentials from the environment, so no secret is
ever part of a URL, a command line or workspace.toml:

* `DKB_REAPI_TOKEN` (or `DKB_REAPI_TOKEN_FILE`): sent as `authorization: Bearer <token>`;
* `DKB_REAPI_HEADERS`: more call metadata, `name=value` pairs separated by commas or newlines
  (e.g. BuildBuddy's `x-buildbuddy-api-key=...`);
* `DKB_REAPI_CA_CERT`: PEM roots to trust instead of the system's (grpcs://);
* `DKB_REAPI_CLIENT_CERT` and `DKB_REAPI_CLIENT_KEY`: PEM client certificate and key, for mTLS;
* `DKB_REAPI_MAX_IN_FLIGHT` (default 16): RPCs open at once; `DKB_REAPI_TIMEOUT` (default 60 s).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMES = ("grpc", "grpcs")
DEFAULT_MAX_IN_FLIGHT = 16
DEFAULT_TIMEOUT = 60.0
# Large enough for a full BatchReadBlobs answer at any sane max_batch_total_size_bytes.
MAX_MESSAGE_BYTES = 64 << 20
_URL = re.compile(r"(?P<scheme>grpcs?)://(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>\d+))?"
                  r"(?:/(?P<instance>[^?#]*))?")


class EndpointError(ValueError):
    """A REAPI URL or credential setting that cannot be used (a usage error)."""


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    root_certificates: bytes | None = None
    client_certificate: bytes | None = None
    client_key: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Endpoint:
    url: str
    host: str
    port: int
    instance: str
    tls: bool
    credentials: Credentials = field(default_factory=Credentials, repr=False)
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    timeout: float = DEFAULT_TIMEOUT

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def metadata(self) -> tuple[tuple[str, str], ...]:
        token = self.credentials.token
        return ((("authorization", f"Bearer {token}"),) if token else ()) + self.credentials.headers

    def open_channel(self) -> Any:
        from dkbuild.remote.reapi.stubs import stubs

        grpc = stubs().grpc
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        if not self.tls:
            return grpc.insecure_channel(self.target, options=options)
        c = self.credentials
        creds = grpc.ssl_channel_credentials(root_certificates=c.root_certificates, private_key=c.client_key,
                                             certificate_chain=c.client_certificate)
        return grpc.secure_channel(self.target, creds, options=options)


def parse_endpoint(url: str, env: dict[str, str] | None = None) -> Endpoint:
    """The endpoint a grpc:// or grpcs:// URL names, with credentials and limits from `env`."""
    env = dict(os.environ) if env is None else env
    m = _URL.fullmatch(url)
    if m is None:
        raise EndpointError(f"{url!r} is not a REAPI URL: use grpc://HOST:PORT[/INSTANCE] or "
                            "grpcs://HOST[:PORT][/INSTANCE]")
    tls = m["scheme"] == "grpcs"
    if m["port"] is None and not tls:
        raise EndpointError(f"{url!r} names no port: grpc://HOST:PORT[/INSTANCE]")
    port = int(m["port"]) if m["port"] else 443
    if not 0 < port < 65536:
        raise EndpointError(f"{url!r}: port {port} is out of range")
    host = m["host"].strip("[]") if m["host"].startswith("[") else m["host"]
    host = f"[{host}]" if ":" in host else host
    return Endpoint(url, host, port, (m["instance"] or "").strip("/"), tls, _credentials(env, tls),
                    positive_setting(env, "DKB_REAPI_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT, int),
                    positive_setting(env, "DKB_REAPI_TIMEOUT", DEFAULT_TIMEOUT, float))


def _credentials(env: dict[str, str], tls: bool) -> Credentials:
    token = env.get("DKB_REAPI_TOKEN") or None
    if token is None and env.get("DKB_REAPI_TOKEN_FILE"):
        token = _read(env, "DKB_REAPI_TOKEN_FILE").decode().strip() or None
    cert, key = env.get("DKB_REAPI_CLIENT_CERT"), env.get("DKB_REAPI_CLIENT_KEY")
    if bool(cert) != bool(key):
        raise EndpointError("DKB_REAPI_CLIENT_CERT and DKB_REAPI_CLIENT_KEY go together (mTLS needs both)")
    if not tls and (cert or env.get("DKB_REAPI_CA_CERT")):
        raise EndpointError("DKB_REAPI_CA_CERT and DKB_REAPI_CLIENT_CERT apply to TLS: use a grpcs:// URL")
    return Credentials(token, _read(env, "DKB_REAPI_CA_CERT") if env.get("DKB_REAPI_CA_CERT") else None,
                       _read(env, "DKB_REAPI_CLIENT_CERT") if cert else None,
                       _read(env, "DKB_REAPI_CLIENT_KEY") if key else None,
                       _headers(env.get("DKB_REAPI_HEADERS", "")))


def _headers(raw: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in filter(None, (part.strip() for part in raw.replace("\n", ",").split(","))):
        name, sep, value = item.partition("=")
        name = name.strip().lower()     # gRPC metadata keys are lowercase
        if not sep or not re.fullmatch(r"[0-9a-z_.-]+", name) or name.endswith("-bin"):
            raise EndpointError(f"DKB_REAPI_HEADERS: {name or item!r} is not a `name=value` header "
                                "(letters, digits, - _ . in the name)")
        pairs.append((name, value.strip()))
    return tuple(pairs)


def _read(env: dict[str, str], name: str) -> bytes:
    path = Path(env[name]).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EndpointError(f"{name}={path}: cannot read it ({exc.strerror})") from None


def positive_setting(env: dict[str, str], name: str, default: Any, kind: type) -> Any:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise EndpointError(f"{name}={raw!r}: expected a positive number")
    return value

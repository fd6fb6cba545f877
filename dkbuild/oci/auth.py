"""Registry credentials: where dkb finds them, in the order docker, podman and CI users expect.

1. `DKB_REGISTRY_TOKEN` (a registry bearer token, sent as is), or `DKB_REGISTRY_USERNAME` with
   `DKB_REGISTRY_PASSWORD`. When `DKB_REGISTRY_HOST` is set they apply to that registry only,
   otherwise to every registry dkb talks to.
2. `GITHUB_TOKEN` for ghcr.io (user `GITHUB_ACTOR`, else `oauth2`).
3. The docker/podman auth files: `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`), then
   `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
   `$XDG_CONFIG_HOME/containers/auth.json` (else `~/.config/containers/auth.json`). In each file:
   `credHelpers[host]`, then an inline `auths` entry (base64 `auth`, `username`/`password`,
   `identitytoken`), then `credsStore`. Helpers speak the `docker-credential-<name> get` protocol.

Secrets never reach a repr, a log line or an exception message.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io"}
HELPER_TIMEOUT = 30.0


class CredentialError(Exception):
    """The configured credential source is broken (missing helper, unreadable config file)."""


@dataclass(frozen=True, repr=False)
class Credentials:
    username: str | None = None
    password: str | None = None          # a password, a personal access token, or a registry token
    identity_token: str | None = None    # an OAuth2 refresh token (docker's `identitytoken`)
    source: str = ""                     # where they came from, for messages: "DKB_REGISTRY_USERNAME", ...

    @property
    def is_registry_token(self) -> bool:
        """A ready-made bearer token: no user name to log in with, sent as `Authorization: Bearer`."""
        return self.username is None and bool(self.password) and not self.identity_token

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.identity_token) if s)

    def __repr__(self) -> str:
        hidden = lambda value: "None" if value is None else "'***'"
        return (f"Credentials(username={self.username!r}, password={hidden(self.password)}, "
                f"identity_token={hidden(self.identity_token)}, source={self.source!r})")

    __str__ = __repr__


def resolve_credentials(registry: str, env: Mapping[str, str] = os.environ) -> Credentials | None:
    """The credentials for `registry` (host[:port]), or None to go anonymous."""
    scoped = env.get("DKB_REGISTRY_HOST")
    if not scoped or scoped == registry:
        if env.get("DKB_REGISTRY_TOKEN"):
            return Credentials(password=env["DKB_REGISTRY_TOKEN"], source="DKB_REGISTRY_TOKEN")
        if env.get("DKB_REGISTRY_USERNAME") and env.get("DKB_REGISTRY_PASSWORD"):
            return Credentials(env["DKB_REGISTRY_USERNAME"], env["DKB_REGISTRY_PASSWORD"],
                               source="DKB_REGISTRY_USERNAME")
    if registry == "ghcr.io" and env.get("GITHUB_TOKEN"):
        return Credentials(env.get("GITHUB_ACTOR") or "oauth2", env["GITHUB_TOKEN"], source="GITHUB_TOKEN")
    for path in auth_files(env):
        found = _from_auth_file(path, registry, env)
        if found is not None:
            return found
    return None


def auth_files(env: Mapping[str, str] = os.environ) -> list[Path]:
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    files = [Path(env["DOCKER_CONFIG"]) / "config.json" if env.get("DOCKER_CONFIG")
             else home / ".docker" / "config.json"]
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    files.append(config_home / "containers" / "auth.json")
    unique: list[Path] = []
    for f in files:
        if f not in unique:
            unique.append(f)
    return unique


def _lookup_keys(registry: str) -> list[str]:
    if registry in _DOCKER_HUB_HOSTS:
        return [DOCKER_HUB_KEY, "docker.io", "index.docker.io", "registry-1.docker.io"]
    return [registry, f"https://{registry}", f"https://{registry}/v1/", f"https://{registry}/v2/",
            f"http://{registry}"]


def _hostname_of(key: str) -> str:
    """docker's ConvertToHostname: drop the scheme and any path."""
    for prefix in ("https://", "http://"):
        key = key.removeprefix(prefix)
    return key.split("/", 1)[0]


def _from_auth_file(path: Path, registry: str, env: Mapping[str, str]) -> Credentials | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialError(f"cannot read registry auth file {path}: {exc.strerror}") from None
    try:
        config = json.loads(raw) if raw.strip() else {}
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except ValueError:
        raise CredentialError(f"registry auth file {path} is not valid JSON; fix or remove it") from None
    keys = _lookup_keys(registry)
    helpers = config.get("credHelpers") or {}
    for key in keys:
        if isinstance(helpers, dict) and helpers.get(key):
            return run_credential_helper(str(helpers[key]), registry, env, configured_in=path)
    entry = _auth_entry(config.get("auths") or {}, keys, registry)
    if entry is not None:
        found = _decode_entry(entry, f"docker config {path}", path)
        if found is not None:
            return found
    if config.get("credsStore"):
        return run_credential_helper(str(config["credsStore"]), registry, env, configured_in=path)
    return None


def _auth_entry(auths: Any, keys: list[str], registry: str) -> dict[str, Any] | None:
    if not isinstance(auths, dict):
        return None
    for key in keys:
        if isinstance(auths.get(key), dict):
            return auths[key]
    for key, value in auths.items():
        if isinstance(value, dict) and _hostname_of(key) in {_hostname_of(k) for k in keys}:
            return value
    return None


def _decode_entry(entry: dict[str, Any], source: str, path: Path) -> Credentials | None:
    username, password = entry.get("username"), entry.get("password")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=False).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise CredentialError(f"registry auth file {path}: an `auth` entry is not base64 of user:password") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise CredentialError(f"registry auth file {path}: an `auth` entry is not base64 of user:password")
    identity = entry.get("identitytoken") or None
    if identity:
        return Credentials(username if username and username != "<token>" else None, None, identity, source)
    if username and password:
        return Credentials(username, password, None, source)
    return None


def run_credential_helper(name: str, registry: str, env: Mapping[str, str] = os.environ, *,
                          configured_in: Path | None = None) -> Credentials | None:
    """`docker-credential-<name> get`: server on stdin, {"Username", "Secret"} on stdout.

    A helper that has nothing for this server gives None; a configured helper that is missing or
    fails is a CredentialError, because silently going anonymous would hide the real problem.
    """
    import shutil
    import subprocess

    program = f"docker-credential-{name}"
    where = f" (configured in {configured_in})" if configured_in else ""
    executable = shutil.which(program, path=env.get("PATH"))
    if executable is None:
        raise CredentialError(f"credential helper {program}{where} is not installed or not on PATH; "
                              "install it, or remove it from the config")
    server = DOCKER_HUB_KEY if registry in _DOCKER_HUB_HOSTS else registry
    try:
        proc = subprocess.run([executable, "get"], input=server.encode(), capture_output=True, check=False,
                              timeout=HELPER_TIMEOUT, env=dict(env))
    except subprocess.TimeoutExpired:
        raise CredentialError(f"credential helper {program}{where} did not answer in {HELPER_TIMEOUT:.0f}s") from None
    except OSError as exc:
        raise CredentialError(f"credential helper {program}{where} could not run: {exc.strerror}") from None
    if proc.returncode != 0:
        said = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        if "credentials not found" in said.lower() or "not found in native keychain" in said.lower():
            return None
        # Only the helper's own stderr, cut short: stdout may hold a partial secret.
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
        raise CredentialError(f"credential helper {program}{where} failed (exit {proc.returncode})"
                              + (f": {reason[0][:200]}" if reason else ""))
    try:
        answer = json.loads(proc.stdout)
        username, secret = answer.get("Username") or None, answer.get("Secret") or None
    except (ValueError, AttributeError):
        raise CredentialError(f"credential helper {program}{where} printed something that is not "
                              "the credential JSON") from None
    if not secret:
        return None
    source = f"credential helper {name}"
    if username == "<token>":
        return Credentials(None, None, secret, source)
    return Credentials(username, secret, None, source)

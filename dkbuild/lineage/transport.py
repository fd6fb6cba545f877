"""Sending OpenLineage events: openlineage-python's File/Http transports behind a never-raising
Emitter that spools undeliverable events to `.dkb/lineage/spool.jsonl` for `dkb lineage replay`.

Our events are plain dicts validated against the spec. The client's transports serialise with
`Serde.to_json`, which accepts a dict as is, so no conversion to the client's event classes is
needed. openlineage is imported lazily, inside the functions that build transports.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dkbuild.redaction import redact_text

TRANSPORTS = ("file", "http", "console", "composite")
ENDPOINT = "api/v1/lineage"
SPOOL_NAME = "spool.jsonl"


class LineageConfigError(ValueError):
    """The lineage transport cannot be set up from the configuration given."""


FIX = ("start the backend, or point --url / OPENLINEAGE_URL / [lineage] url at one that is up; "
       "then resend the spooled events with `dkb lineage replay`")


class _Console:
    """Prints each event as one JSON line on stdout (the client's ConsoleTransport only logs at INFO,
    which a CLI without logging configured would silently drop — dk's `emitter: console` bug)."""

    def emit(self, event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
        sys.stdout.flush()

    def close(self, timeout: float = -1) -> bool:
        return True


def _file_transport(path: Path) -> Any:
    from openlineage.client.transport.file import FileConfig, FileTransport

    path.parent.mkdir(parents=True, exist_ok=True)
    return FileTransport(FileConfig(log_file_path=str(path), append=True))


def _http_transport(url: str, api_key: str | None, timeout: float) -> Any:
    from openlineage.client.transport.http import (
        ApiKeyTokenProvider, HttpConfig, HttpTransport, TokenProvider)

    parts = urlsplit(url)
    if not (parts.scheme in ("http", "https") and parts.netloc):
        raise LineageConfigError(f"invalid lineage URL {redact_text(url)!r}: expected http(s)://host[:port]")
    path = parts.path.rstrip("/")
    if path.endswith("/" + ENDPOINT) or path == "/" + ENDPOINT:
        base, endpoint = urlunsplit((parts.scheme, parts.netloc, path, "", "")), ""
    else:
        base, endpoint = urlunsplit((parts.scheme, parts.netloc, path + "/", "", "")), ENDPOINT
    auth = ApiKeyTokenProvider({"api_key": api_key}) if api_key else TokenProvider({})
    config = HttpConfig(url=base, endpoint=endpoint, timeout=timeout, auth=auth,
                        retry={"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.1,
                               "status_forcelist": [500, 502, 503, 504], "allowed_methods": ["POST"]})
    return HttpTransport(config)


class Emitter:
    """Sends events to the configured backends. `emit` never raises: when a backend fails, the event
    is appended to the spool file (the file transport) and a warning is recorded."""

    def __init__(self, backends: list[tuple[str, Any]], spool_path: Path | None,
                 description: str = "") -> None:
        self._backends = backends
        self.spool_path = spool_path
        self.description = description
        self.warnings: list[str] = []
        self.delivered = 0
        self.spooled = 0
        self.failures: dict[str, str] = {}     # backend → its first failure
        self._spool: Any = None

    def emit(self, event: dict[str, Any]) -> bool:
        ok = True
        for name, backend in self._backends:
            try:
                backend.emit(event)
            except Exception as exc:  # noqa: BLE001 - a lineage backend never fails the caller
                ok = False
                self.failures.setdefault(name, _describe(exc))
                self.warnings.append(f"lineage {name} transport failed: {_describe(exc)}")
        if ok:
            self.delivered += 1
            return True
        if self.spool_path is not None:
            try:
                if self._spool is None:
                    self._spool = _file_transport(self.spool_path)
                self._spool.emit(event)
                self.spooled += 1
                self.warnings.append(f"lineage event spooled to {self.spool_path} "
                                     f"(resend with `dkb lineage replay`)")
            except Exception as exc:  # noqa: BLE001
                self.warnings.append(f"lineage event lost: cannot spool to {self.spool_path}: {_describe(exc)}")
        return False

    def close(self) -> None:
        for name, backend in [*self._backends, ("spool", self._spool)]:
            if backend is None:
                continue
            try:
                backend.close()
            except Exception as exc:  # noqa: BLE001
                self.warnings.append(f"closing lineage {name} transport: {_describe(exc)}")

    def shortfall(self, total: int) -> str | None:
        """None when all `total` events were delivered; else what a command ends with: how many of
        them got where (named without a password), why not, where the rest went, and the fix."""
        if self.delivered >= total:
            return None
        why = "; ".join(f"{name}: {_condense(reason)}" for name, reason in self.failures.items())
        kept = (f"{self.spooled} spooled to {self.spool_path}" if self.spooled else "none could be spooled") \
            if self.spool_path is not None else f"{total - self.delivered} left in the spool"
        return (f"✗ delivered {self.delivered} of {total} OpenLineage events via {self.description}"
                f"{f' ({why})' if why else ''}; {kept}\n  fix: {FIX}")

    def __enter__(self) -> "Emitter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _condense(reason: str) -> str:
    """The telling part of a transport error: "Connection refused" rather than urllib3's retry story."""
    errno = re.search(r"\[Errno -?\d+\] ([^\"')]+)", reason)
    return errno.group(1).strip() if errno else reason


def _describe(exc: BaseException) -> str:
    text = redact_text(f"{type(exc).__name__}: {exc}")
    return text if len(text) < 300 else text[:297] + "..."


def lineage_dir(workspace: Any) -> Path:
    return Path(workspace.root) / workspace.config.cache.dir / "lineage"


def spool_path(workspace: Any) -> Path:
    return lineage_dir(workspace) / SPOOL_NAME


def resolve_url(workspace: Any, url: str | None) -> str | None:
    """--url, else OPENLINEAGE_URL, else [lineage] url."""
    return url or os.environ.get("OPENLINEAGE_URL") or workspace.config.lineage.url


def make_emitter(workspace: Any, *, transport: str | None = None, url: str | None = None,
                 spool: bool = True, timeout: float = 5.0) -> Emitter:
    """An Emitter from [lineage], overridden by `transport`/`url`. OPENLINEAGE_URL selects http when
    no transport is given or configured; OPENLINEAGE_API_KEY is sent as a bearer token. `spool=False`
    (used by replay) records failures without spooling."""
    config = workspace.config.lineage
    configured = "transport" in config.model_fields_set
    kind = transport or (config.transport if configured or not os.environ.get("OPENLINEAGE_URL") else "http")
    if kind not in TRANSPORTS:
        raise LineageConfigError(f"unknown lineage transport {kind!r}; use one of {', '.join(TRANSPORTS)}")
    target = resolve_url(workspace, url)
    api_key = os.environ.get("OPENLINEAGE_API_KEY") or None
    file_path = Path(config.file)
    if not file_path.is_absolute():
        file_path = Path(workspace.root) / file_path

    backends: list[tuple[str, Any]] = []
    if kind in ("file", "composite"):
        backends.append(("file", _file_transport(file_path)))
    if kind in ("http", "composite"):
        if not target:
            raise LineageConfigError(f"the {kind} lineage transport needs a URL: pass --url, set "
                                     f"OPENLINEAGE_URL, or set [lineage] url in workspace.toml")
        backends.append(("http", _http_transport(target, api_key, timeout)))
    if kind == "console":
        backends.append(("console", _Console()))
    where = {"file": str(file_path), "http": redact_text(target or ""), "console": "stdout",
             "composite": f"{file_path} + {redact_text(target or '')}"}[kind]
    return Emitter(backends, spool_path(workspace) if spool else None, f"{kind} → {where}")


def read_spool(path: Path) -> list[dict[str, Any]]:
    events = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return events


def replay(workspace: Any, *, url: str | None = None) -> tuple[int, int, list[str]]:
    """Resend spooled events over http. Delivered events leave the spool; the rest stay (appended back
    after anything spooled meanwhile). Returns (delivered, remaining, warnings)."""
    path = spool_path(workspace)
    if not path.is_file():
        return 0, 0, []
    emitter = make_emitter(workspace, transport="http", url=url, spool=False)
    claimed = path.with_name(f"{SPOOL_NAME}.replay-{os.getpid()}")
    os.replace(path, claimed)          # atomic: concurrent writers start a fresh spool
    lines = [line for line in claimed.read_text(encoding="utf-8").splitlines() if line.strip()]
    remaining: list[str] = []
    delivered = done = 0
    try:
        for done, line in enumerate(lines):
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                emitter.warnings.append("dropping an unreadable line from the lineage spool")
                continue
            if emitter.emit(event):
                delivered += 1
            else:
                remaining.append(line)
        done = len(lines)
    finally:
        emitter.close()
        remaining += lines[done:]          # interrupted: keep what was not tried
        if remaining:
            with open(path, "a", encoding="utf-8") as out:
                out.write("\n".join(remaining) + "\n")
        claimed.unlink(missing_ok=True)
    return delivered, len(remaining), emitter.warnings

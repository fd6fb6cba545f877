"""The shared remote cache: one entry per action key, in an OCI repository (`oci://`, tagged with
the key) or on a REAPI server's action cache and CAS (`grpc://`, `grpcs://`).

Read-through on a local miss: the entry's blobs are fetched into the local store with every digest
verified, and the hit is recorded as `remote`. Written only when asked (`--remote-cache-write`),
because pull-request builds must not poison what trusted branches read. With a signing key
(`DKB_CACHE_SIGNING_KEY`), entries carry an HMAC-SHA256 of their config and unsigned or forged
entries are ignored with a warning. A slow or down server degrades to local building with a
warning (the remote is switched off for the rest of the run), unless the cache is required; a
read-only one is still read, and not written to, with one warning.

The trust policy lives here once; a backend (`remote_oci`, `remote_reapi`) only moves bytes:
the entry's config and signature, and blobs into the local store.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from dkbuild.engine.cache import CacheEntry
from dkbuild.oci.jsoncanon import canonical_bytes

# Where each remote cache URL scheme is served from: the one place a scheme is registered.
BACKENDS = {
    "oci": "dkbuild.engine.remote_oci:OciBackend",
    "grpc": "dkbuild.engine.remote_reapi:ReapiBackend",
    "grpcs": "dkbuild.engine.remote_reapi:ReapiBackend",
}


class RemoteCacheRequired(Exception):
    """The remote cache was required (--remote-cache-required) and could not be used."""


class RemoteCacheLocationError(ValueError):
    """A remote cache URL dkb cannot use (a usage error: exit 2)."""


class EntryUnusable(Exception):
    """This one entry is corrupt, incomplete or missing blobs: rebuild it locally."""


class BackendUnavailable(Exception):
    """The server is down, slow or refusing reads: stop using it for this run."""


class BackendReadOnly(Exception):
    """The server (or this instance of it) does not accept writes."""


@dataclass(frozen=True)
class StoredEntry:
    config: bytes                 # canonical JSON: action_key, label, key, artifacts, blobs
    signature: str                # hex HMAC-SHA256 of config, "" when unsigned
    handle: Any = None            # what the backend needs to fetch the blobs (sizes, digests)


class CacheBackend(Protocol):
    def read_entry(self, action_key: str) -> StoredEntry | None: ...

    def fetch_blobs(self, stored: StoredEntry, digests: list[str], store: Any) -> None: ...

    def write_entry(self, entry: CacheEntry, config: bytes, signature: str | None, store: Any) -> None: ...


def backend_class(location: str) -> type:
    """The backend class for a remote cache URL; RemoteCacheLocationError for an unknown scheme or
    a grpc:// URL without the REAPI extra installed."""
    scheme, sep, _ = location.partition("://")
    scheme = scheme if sep else "oci"        # a bare host/repository is an OCI one, as for publish
    if scheme not in BACKENDS:
        raise RemoteCacheLocationError(f"remote cache {location!r}: unknown scheme; use one of "
                                       + ", ".join(f"{s}://" for s in BACKENDS))
    module, _, name = BACKENDS[scheme].partition(":")
    cls: type = getattr(importlib.import_module(module), name)
    cls.check_location(location)
    return cls


def entry_config(entry: CacheEntry) -> bytes:
    """What a remote entry says (and what its signature covers)."""
    return canonical_bytes({"action_key": entry.action_key, "label": entry.label, "key": entry.key,
                            "artifacts": entry.artifacts, "blobs": [b["digest"] for b in entry.blobs]})


@dataclass(frozen=True)
class RemoteCacheSettings:
    location: str                 # oci://host[:port]/repository, grpc[s]://host:port[/instance]
    write: bool = False
    required: bool = False
    plain_http: bool = False
    signing_key: bytes | None = None

    @classmethod
    def resolve(cls, flag: str | None, write: bool, required: bool, plain_http: bool, config_url: str | None,
                env: dict[str, str] | None = None) -> "RemoteCacheSettings | None":
        """Flag > DKB_REMOTE_CACHE > workspace.toml [cache] remote."""
        env = dict(os.environ) if env is None else env
        location = flag or env.get("DKB_REMOTE_CACHE") or config_url
        if not location:
            if required:
                raise RemoteCacheRequired("--remote-cache-required, but no remote cache is configured "
                                          "(--remote-cache, DKB_REMOTE_CACHE or [cache] remote)")
            return None
        backend_class(location)
        key = env.get("DKB_CACHE_SIGNING_KEY")
        return cls(location, write, required, plain_http, key.encode() if key else None)


@dataclass
class RemoteCache:
    settings: RemoteCacheSettings
    backend: CacheBackend
    warnings: list[str] = field(default_factory=list)
    _down: bool = False
    _read_only: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def connect(cls, settings: RemoteCacheSettings) -> "RemoteCache":
        return cls(settings, backend_class(settings.location).connect(settings))

    # --- failure policy ------------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        with self._lock:
            if message not in self.warnings:
                self.warnings.append(message)

    def _unavailable(self, exc: Exception) -> None:
        self._switch_off("_down", "unusable", f"unusable ({exc}); building locally", exc)

    def _refused_write(self, exc: Exception) -> None:
        self._switch_off("_read_only", "read-only", f"is read-only ({exc}); reading it, not writing to it", exc)

    def _switch_off(self, flag: str, state: str, warning: str, exc: Exception) -> None:
        """Stop using the remote (or writing to it) for the rest of the run, with one warning;
        with --remote-cache-required, fail instead."""
        location = self.settings.location
        if self.settings.required:
            raise RemoteCacheRequired(f"remote cache {location} is required but {state}: {exc}")
        with self._lock:
            first = not getattr(self, flag)
            setattr(self, flag, True)
        if first:
            self._warn(f"remote cache {location} {warning}")

    # --- signing -------------------------------------------------------------------------------

    def _sign(self, config: bytes) -> str | None:
        key = self.settings.signing_key
        return hmac.new(key, config, hashlib.sha256).hexdigest() if key else None

    def _signature_ok(self, stored: StoredEntry, action_key: str) -> bool:
        if self.settings.signing_key is None:
            return True
        if hmac.compare_digest(stored.signature, self._sign(stored.config) or ""):
            return True
        self._warn(f"remote cache entry {action_key[:12]} has a missing or invalid signature; ignored")
        return False

    # --- read ------------------------------------------------------------------------------------

    def fetch(self, action_key: str, store: Any) -> CacheEntry | None:
        """Bring a remote entry into the local store, or None (miss, down, forged, or corrupt)."""
        if self._down:
            return None
        try:
            stored = self.backend.read_entry(action_key)
            if stored is None or not self._signature_ok(stored, action_key):
                return None
            entry = json.loads(stored.config)
            if entry.get("action_key") != action_key:
                self._warn(f"remote cache entry {action_key[:12]} names another action; ignored")
                return None
            missing = [d for d in entry["blobs"] if not store.layout.blob_path(d).exists()]
            self.backend.fetch_blobs(stored, missing, store)
        except EntryUnusable as exc:
            self._warn(f"remote cache entry {action_key[:12]} is corrupt or incomplete ({exc}); rebuilding locally")
            return None
        except BackendUnavailable as exc:
            self._unavailable(exc)
            return None
        except (ValueError, KeyError, TypeError) as exc:
            self._warn(f"remote cache entry {action_key[:12]} is malformed ({exc}); ignored")
            return None
        return store.cache.store(action_key, entry["label"], entry["key"], entry["artifacts"], entry["blobs"])

    # --- write -----------------------------------------------------------------------------------

    def upload(self, entry: CacheEntry, store: Any) -> None:
        if not self.settings.write or self._down or self._read_only:
            return
        config = entry_config(entry)
        try:
            self.backend.write_entry(entry, config, self._sign(config), store)
        except BackendReadOnly as exc:
            self._refused_write(exc)
        except BackendUnavailable as exc:
            self._unavailable(exc)

"""The shared remote cache: an OCI repository with one artifact per action key, tagged with it.

Read-through on a local miss: the entry's blobs are fetched into the local store with every digest
verified, and the hit is recorded as `remote`. Written only when asked (`--remote-cache-write`),
because pull-request builds must not poison what trusted branches read. With a signing key
(`DKB_CACHE_SIGNING_KEY`), entries carry an HMAC-SHA256 of their config and unsigned or forged
entries are ignored with a warning. A slow or down registry degrades to local building with a
warning (the remote is switched off for the rest of the run), unless the cache is required.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from dkbuild.engine.cache import CacheEntry
from dkbuild.oci.breaker import RegistryLimits
from dkbuild.oci.jsoncanon import canonical_bytes, descriptor

CACHE_ARTIFACT_TYPE = "application/vnd.dkbuild.cache.v1"
CACHE_CONFIG_TYPE = "application/vnd.dkbuild.cache.entry.v1+json"
BLOB_TYPE = "application/octet-stream"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
SIGNATURE = "io.dkbuild.cache.signature"


class RemoteCacheRequired(Exception):
    """The remote cache was required (--remote-cache-required) and could not be used."""


class RemoteCacheLocationError(ValueError):
    """A remote cache URL dkb cannot use (an unknown scheme, no host, a tag): usage error, exit 2."""


# The one place remote cache URLs are read: a new kind of cache adds its scheme here.
SUPPORTED_SCHEMES = {"oci": "oci://HOST[:PORT]/REPOSITORY (or HOST[:PORT]/REPOSITORY)"}


def parse_remote_location(location: str, given_by: str = "--remote-cache") -> tuple[str, str]:
    """(registry, repository) of a remote cache URL, or RemoteCacheLocationError naming where the
    URL came from (`given_by`) and the forms that are supported."""
    from dkbuild.oci.reference import parse_location

    supported = "; supported: " + ", ".join(SUPPORTED_SCHEMES.values())
    scheme, sep, _ = location.partition("://")
    if sep and scheme.lower() not in SUPPORTED_SCHEMES:
        raise RemoteCacheLocationError(f"{given_by}: unsupported remote cache scheme '{scheme}://' in "
                                       f"{location!r}{supported}")
    try:
        return parse_location(location)
    except ValueError as exc:
        raise RemoteCacheLocationError(f"{given_by}: {exc}{supported}") from None


@dataclass(frozen=True)
class RemoteCacheSettings:
    location: str                 # oci://host[:port]/repository
    write: bool = False
    required: bool = False
    plain_http: bool = False
    signing_key: bytes | None = None
    limits: RegistryLimits = RegistryLimits()

    @classmethod
    def resolve(cls, flag: str | None, write: bool, required: bool, plain_http: bool, config_url: str | None,
                env: dict[str, str] | None = None,
                limits: RegistryLimits | None = None) -> "RemoteCacheSettings | None":
        """Flag > DKB_REMOTE_CACHE > workspace.toml [cache] remote. The URL is checked here, before
        any work (RemoteCacheLocationError)."""
        env = dict(os.environ) if env is None else env
        location = flag or env.get("DKB_REMOTE_CACHE") or config_url
        if not location:
            if required:
                raise RemoteCacheRequired("--remote-cache-required, but no remote cache is configured "
                                          "(--remote-cache, DKB_REMOTE_CACHE or [cache] remote)")
            return None
        parse_remote_location(location, "--remote-cache" if flag else
                              "DKB_REMOTE_CACHE" if env.get("DKB_REMOTE_CACHE") else "[cache] remote")
        key = env.get("DKB_CACHE_SIGNING_KEY")
        return cls(location, write, required, plain_http, key.encode() if key else None, limits or RegistryLimits())


@dataclass
class RemoteCache:
    settings: RemoteCacheSettings
    client: Any                               # dkbuild.oci.registry.RegistryClient
    repository: str
    warnings: list[str] = field(default_factory=list)
    _down: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def connect(cls, settings: RemoteCacheSettings) -> "RemoteCache":
        from dkbuild.oci.registry import RegistryClient

        registry, repository = parse_remote_location(settings.location)
        return cls(settings, RegistryClient(registry, plain_http=settings.plain_http, limits=settings.limits),
                   repository)

    # --- failure policy ------------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        with self._lock:
            if message not in self.warnings:
                self.warnings.append(message)

    def _unavailable(self, exc: Exception) -> None:
        if self.settings.required:
            raise RemoteCacheRequired(f"remote cache {self.settings.location} is required but unusable: {exc}")
        with self._lock:
            first = not self._down
            self._down = True
        if first:
            self._warn(f"remote cache {self.settings.location} unusable ({exc}); building locally")

    # --- signing -------------------------------------------------------------------------------

    def _sign(self, config: bytes) -> str | None:
        key = self.settings.signing_key
        return hmac.new(key, config, hashlib.sha256).hexdigest() if key else None

    def _signature_ok(self, config: bytes, manifest: dict[str, Any], action_key: str) -> bool:
        if self.settings.signing_key is None:
            return True
        given = manifest.get("annotations", {}).get(SIGNATURE, "")
        if hmac.compare_digest(given, self._sign(config) or ""):
            return True
        self._warn(f"remote cache entry {action_key[:12]} has a missing or invalid signature; ignored")
        return False

    # --- read ------------------------------------------------------------------------------------

    def fetch(self, action_key: str, store: Any) -> CacheEntry | None:
        """Bring a remote entry into the local store, or None (miss, down, forged, or corrupt)."""
        from dkbuild.oci.registry import DigestMismatch, NotFound, RegistryError, RegistryUnavailable

        if self._down:
            return None
        try:
            found = self.client.pull_manifest(self.repository, action_key)
            if found is None:
                return None
            manifest = json.loads(found[0])
            config = self.client.pull_blob(self.repository, manifest["config"]["digest"])
            if not self._signature_ok(config, manifest, action_key):
                return None
            entry = json.loads(config)
            if entry.get("action_key") != action_key:
                self._warn(f"remote cache entry {action_key[:12]} names another action; ignored")
                return None
            for digest in entry["blobs"]:
                if not store.layout.blob_path(digest).exists():
                    store.layout.put_blob(self.client.pull_blob(self.repository, digest))
        except (DigestMismatch, NotFound) as exc:
            self._warn(f"remote cache entry {action_key[:12]} is corrupt or incomplete ({exc}); rebuilding locally")
            return None
        except RegistryUnavailable as exc:
            self._unavailable(exc)
            return None
        except RegistryError as exc:
            self._unavailable(exc)
            return None
        except (ValueError, KeyError) as exc:
            self._warn(f"remote cache entry {action_key[:12]} is malformed ({exc}); ignored")
            return None
        return store.cache.store(action_key, entry["label"], entry["key"], entry["artifacts"], entry["blobs"])

    # --- write -----------------------------------------------------------------------------------

    def upload(self, entry: CacheEntry, store: Any) -> None:
        if not self.settings.write or self._down:
            return
        from dkbuild.oci.registry import RegistryError

        digests = [b["digest"] for b in entry.blobs]
        config = canonical_bytes({"action_key": entry.action_key, "label": entry.label, "key": entry.key,
                                  "artifacts": entry.artifacts, "blobs": digests})
        layers = [{"mediaType": BLOB_TYPE, "digest": b["digest"], "size": b["size"]} for b in entry.blobs]
        annotations = {"io.dkbuild.cache.label": entry.label}
        signature = self._sign(config)
        if signature:
            annotations[SIGNATURE] = signature
        manifest = canonical_bytes({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                                    "artifactType": CACHE_ARTIFACT_TYPE,
                                    "config": descriptor(CACHE_CONFIG_TYPE, config), "layers": layers,
                                    "annotations": annotations})
        try:
            for digest in digests:
                self.client.push_blob(self.repository, digest, store.layout.blob_path(digest))
            self.client.push_blob(self.repository, descriptor(CACHE_CONFIG_TYPE, config)["digest"], config)
            self.client.push_manifest(self.repository, entry.action_key, manifest, MANIFEST_TYPE)
        except RegistryError as exc:
            self._unavailable(exc)

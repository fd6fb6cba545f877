"""The remote cache on an OCI registry: one artifact per action key, tagged with it. The entry's
config is the artifact's config blob, the signature a manifest annotation, the blobs its layers."""

from __future__ import annotations

import json
from typing import Any

from dkbuild.engine.cache import CacheEntry
from dkbuild.engine.remote_cache import BackendUnavailable, EntryUnusable, RemoteCacheLocationError, StoredEntry
from dkbuild.oci.jsoncanon import canonical_bytes, descriptor

CACHE_ARTIFACT_TYPE = "application/vnd.dkbuild.cache.v1"
CACHE_CONFIG_TYPE = "application/vnd.dkbuild.cache.entry.v1+json"
BLOB_TYPE = "application/octet-stream"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
SIGNATURE = "io.dkbuild.cache.signature"


class OciBackend:
    def __init__(self, client: Any, repository: str):
        self.client = client                      # dkbuild.oci.registry.RegistryClient
        self.repository = repository

    @staticmethod
    def check_location(location: str) -> None:
        from dkbuild.oci.reference import parse_location

        try:
            parse_location(location)
        except ValueError as exc:
            raise RemoteCacheLocationError(str(exc)) from None

    @classmethod
    def connect(cls, settings: Any) -> "OciBackend":
        from dkbuild.oci.reference import parse_location
        from dkbuild.oci.registry import RegistryClient

        registry, repository = parse_location(settings.location)
        return cls(RegistryClient(registry, plain_http=settings.plain_http), repository)

    def read_entry(self, action_key: str) -> StoredEntry | None:
        from dkbuild.oci.registry_errors import DigestMismatch, NotFound, RegistryError

        try:
            found = self.client.pull_manifest(self.repository, action_key)
            if found is None:
                return None
            manifest = json.loads(found[0])
            config = self.client.pull_blob(self.repository, manifest["config"]["digest"])
        except (DigestMismatch, NotFound) as exc:
            raise EntryUnusable(str(exc)) from None
        except RegistryError as exc:
            raise BackendUnavailable(str(exc)) from None
        return StoredEntry(config, manifest.get("annotations", {}).get(SIGNATURE, ""))

    def fetch_blobs(self, stored: StoredEntry, digests: list[str], store: Any) -> None:
        from dkbuild.oci.registry_errors import DigestMismatch, NotFound, RegistryError

        try:
            for digest in digests:
                store.layout.put_blob(self.client.pull_blob(self.repository, digest))
        except (DigestMismatch, NotFound) as exc:
            raise EntryUnusable(str(exc)) from None
        except RegistryError as exc:
            raise BackendUnavailable(str(exc)) from None

    def write_entry(self, entry: CacheEntry, config: bytes, signature: str | None, store: Any) -> None:
        from dkbuild.oci.registry_errors import RegistryError

        layers = [{"mediaType": BLOB_TYPE, "digest": b["digest"], "size": b["size"]} for b in entry.blobs]
        annotations = {"io.dkbuild.cache.label": entry.label}
        if signature:
            annotations[SIGNATURE] = signature
        manifest = canonical_bytes({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                                    "artifactType": CACHE_ARTIFACT_TYPE,
                                    "config": descriptor(CACHE_CONFIG_TYPE, config), "layers": layers,
                                    "annotations": annotations})
        try:
            for blob in entry.blobs:
                self.client.push_blob(self.repository, blob["digest"], store.layout.blob_path(blob["digest"]))
            self.client.push_blob(self.repository, descriptor(CACHE_CONFIG_TYPE, config)["digest"], config)
            self.client.push_manifest(self.repository, entry.action_key, manifest, MANIFEST_TYPE)
        except RegistryError as exc:
            raise BackendUnavailable(str(exc)) from None

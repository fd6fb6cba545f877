"""dk's registry client (`sdk/registry/oras.go` Pull, in dk-corpus), followed step by step in Python.

It is independent of dkb's own OCI code on purpose: it talks HTTP with urllib (or reads an OCI
layout directory) and decodes JSON the way Go's encoding/json decodes into dk's structs, so an
artifact dkb writes is checked against what dk would do with it, not against dkb's idea of it.

Pull, as dk does it:
1. `oras.Copy(repo, ref, memory, ref)`: resolve the tag to a descriptor (the media type is the
   response's Content-Type), fetch the manifest, and, because it is an image manifest, every
   successor it names (subject, config, layers); each fetch is verified against its descriptor's
   size and digest.
2. Decode the manifest into `ocispec.Manifest`, the config blob into dk's `ArtifactConfig`
   (`manifest` any, `kind` string, `buildInfo` *BuildInfo of strings), and keep every layer with
   its media type and annotations.
A consumer then picks the manifests layer by media type (`MediaTypeDKManifest`), opens it as a
gzip'd tar, and parses `dk.yaml` the way `manifest.ParseManifest` does (kind probe first).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# sdk/registry/client.go
MEDIA_TYPE_DK_MANIFEST = "application/vnd.infoblox.dk.manifest.v1+yaml"
MEDIA_TYPE_DK_CONFIG = "application/vnd.infoblox.dk.config.v1+json"
MEDIA_TYPE_DK_PACKAGE = "application/vnd.infoblox.dk.package.v1"
MEDIA_TYPE_TAR_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
# What oras-go asks a registry for when it resolves a reference (registry/remote: manifestAcceptHeader).
MANIFEST_ACCEPT = ["application/vnd.docker.distribution.manifest.v2+json",
                   "application/vnd.docker.distribution.manifest.list.v2+json",
                   "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
                   "application/vnd.oci.artifact.manifest.v1+json"]
IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
KINDS = ("Connector", "Store", "DataSet", "DataSetGroup", "Transform")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


class GoDecodeError(Exception):
    """What Go's json.Unmarshal (or oras-go's verification) would have returned as an error."""


# --- encoding/json into Go types ---------------------------------------------------------------
# A type is "string", "int", "any", ("list", T), ("map", T) (map[string]T), ("ptr", T) or a struct:
# a dict of field name -> T. Structs match keys case-insensitively and ignore unknown keys, as Go does.

DESCRIPTOR = {"mediaType": "string", "digest": "string", "size": "int", "urls": ("list", "string"),
              "annotations": ("map", "string"), "data": "string", "artifactType": "string",
              "platform": ("ptr", "any")}
OCI_MANIFEST = {"schemaVersion": "int", "mediaType": "string", "artifactType": "string", "config": DESCRIPTOR,
                "layers": ("list", DESCRIPTOR), "subject": ("ptr", DESCRIPTOR),
                "annotations": ("map", "string")}
BUILD_INFO = {name: "string" for name in ("timestamp", "builder", "gitCommit", "gitBranch", "gitTag", "host")}
ARTIFACT_CONFIG = {"manifest": "any", "kind": "string", "buildInfo": ("ptr", BUILD_INFO)}


def go_decode(value: Any, typ: Any, where: str = "") -> Any:
    if value is None:
        return None                                 # null leaves the zero value, for every type
    if typ == "any":
        return value
    if typ == "string":
        if not isinstance(value, str):
            raise GoDecodeError(f"json: cannot unmarshal {type(value).__name__} into Go value of type string ({where})")
        return value
    if typ == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise GoDecodeError(f"json: cannot unmarshal {value!r} into Go value of type int64 ({where})")
        return value
    if isinstance(typ, tuple):
        shape, inner = typ
        if shape == "ptr":
            return go_decode(value, inner, where)
        if shape == "list":
            if not isinstance(value, list):
                raise GoDecodeError(f"json: cannot unmarshal into a Go slice ({where})")
            return [go_decode(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        if shape == "map":
            if not isinstance(value, dict):
                raise GoDecodeError(f"json: cannot unmarshal into a Go map ({where})")
            return {k: go_decode(v, inner, f"{where}.{k}") for k, v in value.items()}
    if not isinstance(value, dict):
        raise GoDecodeError(f"json: cannot unmarshal {type(value).__name__} into a Go struct ({where})")
    out: dict[str, Any] = {}
    for key, item in value.items():
        field = key if key in typ else next((f for f in typ if f.lower() == key.lower()), None)
        if field is not None:
            out[field] = go_decode(item, typ[field], f"{where}.{field}")
    return out


# --- where the bytes come from -----------------------------------------------------------------

class RegistrySource:
    """A plain-HTTP registry (dk's `--plain-http`), as oras-go's remote.Repository reads it."""

    def __init__(self, reference: str):
        host, _, rest = reference.partition("/")
        self.host, (self.repository, _, self.tag) = host, rest.rpartition(":")

    def resolve(self) -> tuple[dict[str, Any], bytes]:
        request = urllib.request.Request(f"http://{self.host}/v2/{self.repository}/manifests/{self.tag}",
                                         headers={"Accept": ", ".join(MANIFEST_ACCEPT)})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            digest = response.headers.get("Docker-Content-Digest") or sha256(body)
        return {"mediaType": media_type, "digest": digest, "size": len(body)}, body

    def blob(self, digest: str) -> bytes:
        with urllib.request.urlopen(f"http://{self.host}/v2/{self.repository}/blobs/{digest}", timeout=10) as r:
            return r.read()


class LayoutSource:
    """An OCI image layout directory (index.json entries by org.opencontainers.image.ref.name)."""

    def __init__(self, root: Path, ref: str):
        self.root, self.ref = root, ref

    def resolve(self) -> tuple[dict[str, Any], bytes]:
        index = json.loads((self.root / "index.json").read_text())
        matches = [m for m in index["manifests"]
                   if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == self.ref]
        if len(matches) != 1:
            raise GoDecodeError(f"{self.ref}: not found")
        return matches[0], self.blob(matches[0]["digest"])

    def blob(self, digest: str) -> bytes:
        algorithm, _, hexdigest = digest.partition(":")
        return (self.root / "blobs" / algorithm / hexdigest).read_bytes()


# --- Pull ----------------------------------------------------------------------------------------

@dataclass
class Layer:
    media_type: str
    content: bytes
    annotations: dict[str, str]


@dataclass
class Artifact:
    manifest: dict[str, Any]          # ocispec.Manifest as decoded
    config: dict[str, Any]            # ArtifactConfig as decoded
    layers: list[Layer]
    digest: str


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _verified(data: bytes, desc: dict[str, Any]) -> bytes:
    """content.VerifyReader: the size and the digest the descriptor announces."""
    if not _DIGEST.fullmatch(desc["digest"]):
        raise GoDecodeError(f"invalid digest {desc['digest']!r}")
    if len(data) != desc["size"] or sha256(data) != desc["digest"]:
        raise GoDecodeError(f"{desc['digest']}: content does not match its descriptor")
    return data


def pull(source: RegistrySource | LayoutSource) -> Artifact:
    root, body = source.resolve()
    _verified(body, root)
    if root["mediaType"] != IMAGE_MANIFEST:
        raise GoDecodeError(f"oras copies no successors of a {root['mediaType']!r}: dk's Pull would find no layers")
    manifest = go_decode(json.loads(body), OCI_MANIFEST, "manifest")
    # oras.Copy: the successors of an image manifest, each fetched and verified into the memory store.
    store = {}
    for desc in [*([manifest["subject"]] if manifest.get("subject") else []), manifest["config"],
                 *manifest.get("layers", [])]:
        store[desc["digest"]] = _verified(source.blob(desc["digest"]), desc)
    config = go_decode(json.loads(store[manifest["config"]["digest"]]), ARTIFACT_CONFIG, "config")
    layers = [Layer(d["mediaType"], store[d["digest"]], d.get("annotations") or {}) for d in manifest["layers"]]
    return Artifact(manifest, config, layers, root["digest"])


def files_of(layer: Layer) -> dict[str, bytes]:
    """A layer opened as dk's bundler wrote it: gzip, then tar. Regular files only."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.content))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def manifests_layer(artifact: Artifact) -> Layer:
    """The layer a dk consumer reads the package's manifests from: picked by dk's media type."""
    picked = [layer for layer in artifact.layers if layer.media_type == MEDIA_TYPE_DK_MANIFEST]
    if len(picked) != 1:
        raise GoDecodeError(f"{len(picked)} layers of media type {MEDIA_TYPE_DK_MANIFEST}")
    return picked[0]


def parse_manifest(data: bytes) -> tuple[str, dict[str, Any]]:
    """manifest.ParseManifest: probe `kind`, then the typed parse, which checks the kind again."""
    document = yaml.safe_load(data)
    kind = (document or {}).get("kind") if isinstance(document, dict) else None
    if not kind:
        raise GoDecodeError("manifest is missing required 'kind' field")
    if kind not in KINDS:
        raise GoDecodeError(f"unsupported manifest kind {kind!r}")
    return kind, document


def reference(registry: str, namespace: str, name: str, version: str) -> str:
    """sdk/registry/bundler.go Reference."""
    return f"{registry}/{namespace}/{name}:{version}"

"""The dk package artifact (contract §3.2), built reproducibly and with honest media types.

Compatible with dk: an OCI image manifest with artifactType `application/vnd.infoblox.dk.package.v1`
and a config blob `application/vnd.infoblox.dk.config.v1+json` holding `{manifest, kind}`. Fixed
from dk: the manifests layer says it is a gzip'd tar; bytes are reproducible; no timestamp, host or
commit unless stamped; the content layer never carries manifests, resource directories or secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dkbuild.oci.jsoncanon import canonical_bytes, descriptor
from dkbuild.oci.layout import OciLayout
from dkbuild.oci.tarball import Entry, gzip_bytes, tar_bytes

ARTIFACT_TYPE = "application/vnd.infoblox.dk.package.v1"
CONFIG_MEDIA_TYPE = "application/vnd.infoblox.dk.config.v1+json"
MANIFESTS_MEDIA_TYPE = "application/vnd.infoblox.dk.manifests.v1.tar+gzip"
CONTENT_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
LAYER_TYPE = "io.infoblox.dk.layer.type"


@dataclass(frozen=True)
class PackageInputs:
    name: str
    namespace: str
    version: str
    kind: str
    manifest: dict[str, Any]          # the package's own (normalized) manifest
    manifest_files: dict[str, bytes]  # path inside the manifests layer -> bytes (dk.yaml, dataset/x.yaml, ...)
    content: list[Entry]              # the package's source files
    build_info: dict[str, str] = field(default_factory=dict)   # only when stamped


@dataclass(frozen=True)
class BuiltArtifact:
    descriptor: dict[str, Any]        # descriptor of the image manifest
    blobs: list[str]


def write_package(layout: OciLayout, inputs: PackageInputs) -> BuiltArtifact:
    config: dict[str, Any] = {"manifest": inputs.manifest, "kind": inputs.kind}
    if inputs.build_info:
        config["buildInfo"] = dict(sorted(inputs.build_info.items()))
    config_bytes = canonical_bytes(config)
    manifests_layer = gzip_bytes(tar_bytes(Entry(p, d) for p, d in inputs.manifest_files.items()))
    content_layer = gzip_bytes(tar_bytes(inputs.content))
    annotations = {
        "org.opencontainers.image.title": inputs.name,
        "org.opencontainers.image.version": inputs.version,
        "io.infoblox.dk.namespace": inputs.namespace,
        "io.infoblox.dk.kind": inputs.kind,
    }
    if "timestamp" in inputs.build_info:
        annotations["org.opencontainers.image.created"] = inputs.build_info["timestamp"]
    if "gitCommit" in inputs.build_info:
        annotations["org.opencontainers.image.revision"] = inputs.build_info["gitCommit"]
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": descriptor(CONFIG_MEDIA_TYPE, config_bytes),
        "layers": [
            descriptor(MANIFESTS_MEDIA_TYPE, manifests_layer, {LAYER_TYPE: "manifests"}),
            descriptor(CONTENT_MEDIA_TYPE, content_layer, {LAYER_TYPE: "content"}),
        ],
        "annotations": dict(sorted((k, v) for k, v in annotations.items() if v)),
    }
    manifest_bytes = canonical_bytes(manifest)
    blobs = [layout.put_blob(b) for b in (config_bytes, manifests_layer, content_layer, manifest_bytes)]
    return BuiltArtifact(descriptor(MANIFEST_MEDIA_TYPE, manifest_bytes, artifact_type=ARTIFACT_TYPE), blobs)

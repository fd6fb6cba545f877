"""The dk package artifact (contract §3.2), in dk's own structure, built reproducibly.

What dk's registry client (`sdk/registry`) pushes and pulls, kept as is: an OCI image manifest with
artifactType `application/vnd.infoblox.dk.package.v1`; a config blob
`application/vnd.infoblox.dk.config.v1+json` holding `{manifest, kind, buildInfo}`; layer 1
`application/vnd.infoblox.dk.manifest.v1+yaml` (a gzip'd tar, as dk writes it) with the package's
`dk.yaml` and the `schemas/` tree; layer 2 `application/vnd.oci.image.layer.v1.tar+gzip` with the
package's other files; dk's manifest annotations, with the same keys.

What dkb changes: bytes are reproducible (sorted entries, fixed mtimes and owners); `buildInfo` and
the `created` annotation carry no clock, host or commit unless stamped. What dkb adds comes after
dk's layers, in a layer of its own media type that dk's client carries along and nothing of dk
reads: the normalized, secret-free copies of every resource the package references.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from dkbuild.oci.jsoncanon import canonical_bytes, descriptor
from dkbuild.oci.layout import OciLayout
from dkbuild.oci.tarball import Entry, gzip_bytes, source_date_epoch, tar_bytes

ARTIFACT_TYPE = "application/vnd.infoblox.dk.package.v1"
CONFIG_MEDIA_TYPE = "application/vnd.infoblox.dk.config.v1+json"
# dk's name for layer 1, although the bytes are a gzip'd tar: dk's client finds the layer by it.
MANIFESTS_MEDIA_TYPE = "application/vnd.infoblox.dk.manifest.v1+yaml"
CONTENT_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
RESOURCES_MEDIA_TYPE = "application/vnd.dkbuild.resources.v1.tar+gzip"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
LAYER_TYPE = "io.infoblox.dk.layer.type"
# Bump when the artifact's structure changes: it is part of every build action key.
PACKAGE_FORMAT = "dk-package-v2"
UNSTAMPED_BUILDER = "dkb"


@dataclass(frozen=True)
class PackageInputs:
    name: str
    namespace: str
    version: str
    kind: str
    description: str
    manifest: dict[str, Any]          # the package's dk.yaml as parsed (config `manifest`)
    manifest_files: list[Entry]       # layer 1: dk.yaml and schemas/
    content: list[Entry]              # layer 2: the package's other files
    resources: list[Entry]            # dkb's layer: normalized resource copies and rendered specs
    build_info: dict[str, str] = field(default_factory=dict)   # only when stamped


@dataclass(frozen=True)
class BuiltArtifact:
    descriptor: dict[str, Any]        # descriptor of the image manifest
    blobs: list[str]


def build_info(stamp: dict[str, str]) -> dict[str, str]:
    """dk's BuildInfo: `timestamp` and `builder` always (dk never omits them), the rest only when
    stamped. Unstamped, the time is SOURCE_DATE_EPOCH (default 0), so the bytes are reproducible."""
    epoch = datetime.datetime.fromtimestamp(source_date_epoch(), datetime.timezone.utc)
    info = {"timestamp": epoch.strftime("%Y-%m-%dT%H:%M:%SZ"), "builder": UNSTAMPED_BUILDER}
    info.update({k: v for k, v in stamp.items() if v})
    return info


def write_package(layout: OciLayout, inputs: PackageInputs) -> BuiltArtifact:
    info = build_info(inputs.build_info)
    config_bytes = canonical_bytes({"manifest": inputs.manifest, "kind": inputs.kind, "buildInfo": info})
    layers = [
        (MANIFESTS_MEDIA_TYPE, gzip_bytes(tar_bytes(inputs.manifest_files)), "manifests"),
        (CONTENT_MEDIA_TYPE, gzip_bytes(tar_bytes(inputs.content)), "content"),
    ]
    if inputs.resources:
        layers.append((RESOURCES_MEDIA_TYPE, gzip_bytes(tar_bytes(inputs.resources)), "dkb-resources"))
    # dk's keys, empty values included (dk writes a description it never has).
    annotations = {
        "org.opencontainers.image.created": info["timestamp"],
        "org.opencontainers.image.version": inputs.version,
        "org.opencontainers.image.title": inputs.name,
        "org.opencontainers.image.description": inputs.description,
        "io.infoblox.dk.namespace": inputs.namespace,
        "io.infoblox.dk.kind": inputs.kind,
    }
    if info.get("gitCommit"):
        annotations["org.opencontainers.image.revision"] = info["gitCommit"]
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": descriptor(CONFIG_MEDIA_TYPE, config_bytes),
        "layers": [descriptor(media_type, data, {LAYER_TYPE: kind}) for media_type, data, kind in layers],
        "annotations": dict(sorted(annotations.items())),
    }
    manifest_bytes = canonical_bytes(manifest)
    blobs = [layout.put_blob(b) for b in (config_bytes, *(data for _m, data, _k in layers), manifest_bytes)]
    # The descriptor carries what names the package (dk's tag scheme), so tagging needs no manifest read.
    naming = {k: annotations[k] for k in ("org.opencontainers.image.title", "org.opencontainers.image.version",
                                          "io.infoblox.dk.namespace") if annotations[k]}
    return BuiltArtifact(descriptor(MANIFEST_MEDIA_TYPE, manifest_bytes, naming, artifact_type=ARTIFACT_TYPE), blobs)

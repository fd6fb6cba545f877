"""Pure-Python image assembly for packages without a Dockerfile (DESIGN §5): a pinned base image
from an OCI image layout plus one reproducible layer holding the package under /app.

No tool runs and no clock is read: the same base, files, command, env and SOURCE_DATE_EPOCH give
the same manifest digest on any machine.
"""

from __future__ import annotations

import json
import platform as _platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dkbuild.oci.backends import BadImageRequest, BaseImageUnavailable, ImageRequest, ImageResult
from dkbuild.oci.backends.context import checked_relpath
from dkbuild.oci.backends.ociimport import INDEX_TYPES, MANIFEST_TYPES, OCI_MANIFEST
from dkbuild.oci.jsoncanon import canonical_bytes, descriptor, sha256_digest
from dkbuild.oci.layout import OciLayout
from dkbuild.oci.tarball import entries_from_files, gzip_bytes, tar_bytes

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
APP_DIR = "/app"
CREATED_BY = "dkb assemble"
BASE_DIGEST_ANNOTATION = "org.opencontainers.image.base.digest"
# Docker schema 2 layer types and their OCI names (same bytes), so the result is a pure OCI image.
OCI_LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": OCI_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
}


def _is_sha256(digest: str) -> bool:
    hexdigest = digest.removeprefix("sha256:")
    return digest.startswith("sha256:") and len(hexdigest) == 64 and all(c in "0123456789abcdef" for c in hexdigest)


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_base_ref(ref: str, workspace_root: Path) -> tuple[Path, str]:
    """`oci:<dir>@sha256:<hex>` -> (layout dir, manifest digest). Unpinned refs are refused: a tag
    can move, and the base must be part of the content key."""
    if not ref.startswith("oci:"):
        raise BadImageRequest(f"base image {ref!r} is not pinned; use oci:<dir>@sha256:<manifest digest> "
                              "or <registry>/<repository>@sha256:<manifest digest>")
    location, at, digest = ref[len("oci:"):].rpartition("@")
    if not at:
        raise BadImageRequest(f"base image {ref!r} is not pinned by digest; use oci:<dir>@sha256:<manifest "
                              "digest> (a tag can move, so it cannot be part of a reproducible build)")
    if not _is_sha256(digest):
        raise BadImageRequest(f"base image {ref!r}: {digest!r} is not a sha256 digest (sha256:<64 hex digits>)")
    if not location:
        raise BadImageRequest(f"base image {ref!r} names no OCI layout directory")
    path = Path(location)
    return (path if path.is_absolute() else workspace_root / path), digest


def pull_base(request: ImageRequest, layout: OciLayout) -> tuple[Path, str]:
    """A registry base pinned by digest, pulled into dkb's own store (every digest verified); the
    digest pins it, so the store can serve it on later builds without asking the registry again."""
    from dkbuild.oci.reference import parse_reference
    from dkbuild.oci.registry import RegistryClient, RegistryError

    ref = request.base_image or ""
    if "@sha256:" not in ref:
        raise BadImageRequest(f"base image {ref!r} is not pinned by digest; use <registry>/<repository>"
                              "@sha256:<manifest digest> or oci:<dir>@sha256:<manifest digest> (a tag can move)")
    try:
        parsed = parse_reference(ref)
    except ValueError as exc:
        raise BadImageRequest(f"base image {ref!r}: {exc}") from None
    if not parsed.digest:
        raise BadImageRequest(f"base image {ref!r} is not pinned by digest; use {parsed.registry}/"
                              f"{parsed.repository}@sha256:<manifest digest> (a tag can move)")
    if not (layout.root / "blobs" / "sha256" / parsed.digest.removeprefix("sha256:")).exists():
        try:
            with RegistryClient(parsed.registry, plain_http=request.base_plain_http) as client:
                client.pull_into_layout(parsed.repository, parsed.digest, layout)
        except RegistryError as exc:
            raise BaseImageUnavailable(f"base image {ref!r} could not be pulled: {exc}") from None
    return layout.root, parsed.digest


class BaseLayout:
    """Read-only access to someone else's OCI image layout: nothing is written to it."""

    def __init__(self, root: Path, ref: str):
        self.root = root
        self.ref = ref
        if not (root / "oci-layout").is_file():
            raise BadImageRequest(f"base image {ref!r}: {root} is not an OCI image layout (no oci-layout file)")

    def blob(self, digest: str, size: int | None = None, what: str = "blob") -> bytes:
        if not _is_sha256(digest):
            raise BadImageRequest(f"base image {self.ref!r}: unsupported digest {digest!r}")
        path = self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BadImageRequest(f"base image {self.ref!r}: {what} {digest} is not in the OCI layout "
                                  f"{self.root}; copy the image there (skopeo copy ... oci:{self.root}) or "
                                  "fix the digest") from None
        if sha256_digest(data) != digest or (size is not None and size != len(data)):
            raise BadImageRequest(f"base image {self.ref!r}: {what} {digest} in {self.root} is corrupt "
                                  "(its bytes do not match the digest or size)")
        return data

    def image_manifest(self, digest: str) -> dict[str, Any]:
        """The image manifest at `digest`; for an index, the entry for this machine's platform."""
        manifest = json.loads(self.blob(digest, what="manifest"))
        media_type = manifest.get("mediaType", OCI_MANIFEST)
        if media_type in INDEX_TYPES:
            want_os, want_arch = "linux", _host_arch()
            for entry in manifest.get("manifests", []):
                plat = entry.get("platform", {})
                if plat.get("os") == want_os and plat.get("architecture") == want_arch:
                    return self.image_manifest(entry["digest"])
            raise BadImageRequest(f"base image {self.ref!r} is an index with no {want_os}/{want_arch} image; "
                                  "pin the digest of a single-platform manifest")
        if media_type not in MANIFEST_TYPES:
            raise BadImageRequest(f"base image {self.ref!r}: unsupported manifest media type {media_type!r}")
        return manifest


def _host_arch() -> str:
    machine = _platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def merged_env(base: list[str], extra: dict[str, str]) -> list[str]:
    """Base env with request values replacing same-named entries in place and new ones appended in
    name order. PYTHONPATH gets /app/src in front of any base value unless the request sets it."""
    values: dict[str, str] = {}
    for item in base:
        name, _, value = item.partition("=")
        values[name] = value
    if "PYTHONPATH" not in extra:
        inherited = values.get("PYTHONPATH")
        values["PYTHONPATH"] = f"{APP_DIR}/src" + (f":{inherited}" if inherited else "")
    for name in sorted(extra):
        values[name] = extra[name]
    return [f"{name}={value}" for name, value in values.items()]


def image_config(base: dict[str, Any], request: ImageRequest, diff_id: str) -> dict[str, Any]:
    created = rfc3339(request.source_date_epoch)
    config = json.loads(json.dumps(base))      # a deep copy of plain JSON
    runtime = dict(config.get("config") or {})
    runtime["WorkingDir"] = APP_DIR
    runtime["Env"] = merged_env(list(runtime.get("Env") or []), request.env)
    if request.command:
        # As with a Dockerfile ENTRYPOINT, a new entrypoint drops the base's CMD.
        runtime["Entrypoint"] = list(request.command)
        runtime.pop("Cmd", None)
    config["config"] = runtime
    rootfs = dict(config.get("rootfs") or {})
    config["rootfs"] = {**rootfs, "type": "layers", "diff_ids": [*(rootfs.get("diff_ids") or []), diff_id]}
    config["history"] = [*(config.get("history") or []), {"created": created, "created_by": CREATED_BY}]
    config["created"] = created
    return config


class AssembleBackend:
    name = "assemble"

    def available(self) -> str | None:
        return None

    def build(self, request: ImageRequest, layout: OciLayout) -> ImageResult:
        if not request.base_image:
            raise BadImageRequest(f"{request.label}: no base image to assemble on; set base_image "
                                  "(oci:<dir>@sha256:<digest>)")
        if request.base_image.startswith("oci:"):
            root, digest = parse_base_ref(request.base_image, request.workspace_root)
        else:
            root, digest = pull_base(request, layout)
        base = BaseLayout(root, request.base_image)
        base_manifest = base.image_manifest(digest)
        base_config = json.loads(base.blob(base_manifest["config"]["digest"], base_manifest["config"].get("size"),
                                           what="config"))
        layers = []
        blobs = []
        for layer in base_manifest.get("layers") or []:
            blobs.append(layout.put_blob(base.blob(layer["digest"], layer.get("size"), what="layer")))
            layers.append({**layer, "mediaType": OCI_LAYER_TYPES.get(layer["mediaType"], layer["mediaType"])})

        for rel in request.files:
            checked_relpath(request.label, rel)
        try:
            entries = entries_from_files(request.package_dir, request.files, prefix=APP_DIR.lstrip("/") + "/")
        except FileNotFoundError as exc:
            raise BadImageRequest(f"{request.label}: input file {exc.filename} disappeared; re-run the build") from None
        layer_tar = tar_bytes(entries, mtime=request.source_date_epoch)
        layer_gz = gzip_bytes(layer_tar)
        blobs.append(layout.put_blob(layer_gz))
        layers.append(descriptor(OCI_LAYER_GZIP, layer_gz))

        config_bytes = canonical_bytes(image_config(base_config, request, sha256_digest(layer_tar)))
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config_bytes),
            "layers": layers,
            "annotations": {BASE_DIGEST_ANNOTATION: digest},
        }
        manifest_bytes = canonical_bytes(manifest)
        blobs.insert(0, layout.put_blob(config_bytes))
        blobs.insert(0, layout.put_blob(manifest_bytes))
        return ImageResult(descriptor=descriptor(OCI_MANIFEST, manifest_bytes),
                           blobs=list(dict.fromkeys(blobs)), backend=self.name)

"""Copy an image that a build tool wrote as an OCI image layout (a directory, or a tar of one) into
dkb's OciLayout. The manifest bytes are kept exactly, so its digest holds, and every blob is checked
against the digest and size that reference it before it is stored."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dkbuild.oci.backends import ImageBuildFailed
from dkbuild.oci.jsoncanon import sha256_digest
from dkbuild.oci.layout import OciLayout

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)

Reader = Callable[[str], bytes]   # layout-relative path -> bytes; FileNotFoundError when absent


def import_layout_dir(root: Path, layout: OciLayout, origin: str, ref: str | None = None) -> tuple[dict[str, Any], list[str]]:
    def read(rel: str) -> bytes:
        return (root / rel).read_bytes()
    return import_image(read, layout, origin, ref)


def import_layout_tar(path: Path, layout: OciLayout, origin: str, ref: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """Read members straight from the tar: nothing is extracted, so member names cannot escape."""
    try:
        archive = tarfile.open(path)
    except (OSError, tarfile.TarError) as exc:
        raise ImageBuildFailed(f"{origin}: the OCI tar {path} cannot be read: {exc}") from None
    with archive:
        members = {m.name.removeprefix("./"): m for m in archive.getmembers() if m.isfile()}

        def read(rel: str) -> bytes:
            member = members.get(rel)
            handle = archive.extractfile(member) if member is not None else None
            if handle is None:
                raise FileNotFoundError(rel)
            return handle.read()
        return import_image(read, layout, origin, ref)


def import_image(read: Reader, layout: OciLayout, origin: str, ref: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The (descriptor, blob digests) of the one image in the layout that `read` serves.

    `ref` selects an index.json entry by org.opencontainers.image.ref.name when there are several.
    An image index (several platforms) is imported with all its manifests and its descriptor is
    returned."""
    try:
        index = json.loads(read("index.json"))
    except FileNotFoundError:
        raise ImageBuildFailed(f"{origin}: the build wrote no index.json; it is not an OCI image layout") from None
    except ValueError as exc:
        raise ImageBuildFailed(f"{origin}: index.json is not valid JSON: {exc}") from None
    entries = index.get("manifests") or []
    if ref is not None and len(entries) > 1:
        entries = [e for e in entries
                   if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref]
    if len(entries) != 1:
        raise ImageBuildFailed(f"{origin}: expected one image in the build output, found {len(entries)}")
    stored: list[str] = []
    desc = _import_manifest(read, layout, origin, entries[0], stored)
    return desc, list(dict.fromkeys([desc["digest"], *stored]))


def _blob(read: Reader, origin: str, desc: dict[str, Any]) -> bytes:
    digest = desc.get("digest", "")
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
        raise ImageBuildFailed(f"{origin}: unsupported or malformed digest {digest!r}")
    try:
        data = read(f"blobs/sha256/{hexdigest}")
    except FileNotFoundError:
        raise ImageBuildFailed(f"{origin}: blob {digest} is referenced but missing from the build output") from None
    if sha256_digest(data) != digest:
        raise ImageBuildFailed(f"{origin}: blob {digest} does not match its digest (got {sha256_digest(data)})")
    if "size" in desc and desc["size"] != len(data):
        raise ImageBuildFailed(f"{origin}: blob {digest} is {len(data)} bytes, its descriptor says {desc['size']}")
    return data


def _import_manifest(read: Reader, layout: OciLayout, origin: str, desc: dict[str, Any],
                     stored: list[str]) -> dict[str, Any]:
    raw = _blob(read, origin, desc)
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise ImageBuildFailed(f"{origin}: manifest {desc.get('digest')} is not JSON: {exc}") from None
    media_type = manifest.get("mediaType") or desc.get("mediaType") or OCI_MANIFEST
    if media_type in INDEX_TYPES:
        for child in manifest.get("manifests", []):
            _import_manifest(read, layout, origin, child, stored)
    elif media_type in MANIFEST_TYPES:
        for part in [manifest["config"], *manifest.get("layers", [])]:
            stored.append(layout.put_blob(_blob(read, origin, part)))
    else:
        raise ImageBuildFailed(f"{origin}: unsupported manifest media type {media_type!r}")
    stored.append(layout.put_blob(raw))
    return {"mediaType": media_type, "digest": desc["digest"], "size": len(raw)}

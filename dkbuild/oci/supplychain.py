"""Supply-chain metadata attached to a published package (OCI 1.1 referrers): a CycloneDX SBOM of
the package's files (and, for generic-python, its pinned requirements) and an in-toto statement
with a SLSA v1 provenance predicate. Both are derived from the artifact's own bytes, so they
describe exactly what was published; neither carries a timestamp, so they are reproducible."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import uuid
from typing import Any

from dkbuild import __version__
from dkbuild.oci.jsoncanon import canonical_bytes, descriptor
from dkbuild.oci.layout import OciLayout

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
SBOM_TYPE = "application/vnd.cyclonedx+json"
PROVENANCE_TYPE = "application/vnd.in-toto+json"
BUILDER_ID = f"pkg:pypi/dkbuild@{__version__}"
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:==\s*([^\s;#]+))?")


def content_files(layout: OciLayout, package: dict[str, Any]) -> dict[str, bytes]:
    """The files of the package's content layer, read back from the stored artifact."""
    manifest = json.loads(layout.get_blob(package["digest"]))
    layer = next(l for l in manifest["layers"] if l.get("annotations", {}).get("io.infoblox.dk.layer.type") == "content")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layout.get_blob(layer["digest"])))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def sbom(name: str, version: str, runtime: str, files: dict[str, bytes], subject_digest: str) -> dict[str, Any]:
    components: list[dict[str, Any]] = [
        {"type": "file", "name": path, "hashes": [{"alg": "SHA-256", "content": hashlib.sha256(data).hexdigest()}]}
        for path, data in sorted(files.items())]
    if runtime == "generic-python" and "requirements.txt" in files:
        for line in files["requirements.txt"].decode("utf-8", "replace").splitlines():
            m = _REQUIREMENT.match(line)
            if m and not line.lstrip().startswith(("#", "-")):
                package, pinned = m.group(1).lower(), m.group(2)
                purl = f"pkg:pypi/{package}" + (f"@{pinned}" if pinned else "")
                components.append({"type": "library", "name": package, **({"version": pinned} if pinned else {}),
                                   "purl": purl})
    return {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, subject_digest)}",
        "metadata": {"tools": {"components": [{"type": "application", "name": "dkb", "version": __version__}]},
                     "component": {"type": "application", "name": name, "version": version,
                                   "bom-ref": subject_digest}},
        "components": components,
    }


def provenance(reference: str, subject_digest: str, label: str, action_key: str, content_key: str,
               revision: dict[str, str] | None) -> dict[str, Any]:
    dependencies = [{"uri": f"dkb:content-key/{content_key}", "digest": {"sha256": content_key}}]
    if revision:
        dependencies.insert(0, {"uri": revision["uri"], "digest": {"gitCommit": revision["commit"]}})
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": reference, "digest": {"sha256": subject_digest.removeprefix("sha256:")}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://github.com/dkbuild/dkbuild/build/v1",
                "externalParameters": {"target": label},
                "internalParameters": {"actionKey": action_key, "contentKey": content_key},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {"builder": {"id": BUILDER_ID, "version": {"dkb": __version__}}},
        },
    }


def referrer(layout: OciLayout, subject: dict[str, Any], artifact_type: str, document: dict[str, Any]) -> dict[str, Any]:
    """Store one referrer artifact (empty config, one layer, `subject`) and return its descriptor."""
    body = canonical_bytes(document)
    layout.put_blob(EMPTY_CONFIG)
    layout.put_blob(body)
    manifest = canonical_bytes({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": artifact_type,
        "config": descriptor(EMPTY_TYPE, EMPTY_CONFIG), "layers": [descriptor(artifact_type, body)],
        "subject": {k: subject[k] for k in ("mediaType", "digest", "size")},
    })
    layout.put_blob(manifest)
    return descriptor(MANIFEST_TYPE, manifest, artifact_type=artifact_type)

"""Canonical JSON bytes for OCI manifests and configs: the bytes we hash are the bytes we push."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_bytes(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, annotations: dict[str, str] | None = None,
               artifact_type: str | None = None) -> dict[str, Any]:
    desc: dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if artifact_type:
        desc["artifactType"] = artifact_type
    if annotations:
        desc["annotations"] = dict(sorted(annotations.items()))
    return desc

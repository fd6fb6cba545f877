"""CAS digests. dkb's blob digests are `sha256:<hex>` OCI digests, which are REAPI SHA-256 digests
with the algorithm spelled out: nothing is re-hashed to move a blob between the two."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, order=True)
class Digest:
    hash: str           # lowercase hex SHA-256
    size_bytes: int

    def __post_init__(self) -> None:
        if not _HEX.fullmatch(self.hash) or self.size_bytes < 0:
            raise ValueError(f"not a SHA-256 CAS digest: {self.hash!r}/{self.size_bytes}")

    @classmethod
    def of(cls, data: bytes) -> "Digest":
        return cls(hashlib.sha256(data).hexdigest(), len(data))

    @classmethod
    def of_file(cls, path: Path) -> "Digest":
        h, size = hashlib.sha256(), 0
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
                size += len(chunk)
        return cls(h.hexdigest(), size)

    @classmethod
    def from_oci(cls, digest: str, size: int) -> "Digest":
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256":
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return cls(hexdigest, size)

    @classmethod
    def from_proto(cls, message: Any) -> "Digest":
        return cls(message.hash, message.size_bytes)

    @property
    def oci(self) -> str:
        return "sha256:" + self.hash

    def proto(self) -> Any:
        from dkbuild.remote.reapi.stubs import stubs

        return stubs().re.Digest(hash=self.hash, size_bytes=self.size_bytes)

    def __str__(self) -> str:
        return f"{self.hash}/{self.size_bytes}"

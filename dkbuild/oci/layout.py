"""The local OCI image layout (`.dkb/oci`): the content-addressed store behind every artifact.

Every write is a temp file plus an atomic rename, so a crash never leaves a half-written blob or
index; index.json updates are serialized across processes with an exclusive file lock. Blobs are
verified against their digest whenever they are read.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

from dkbuild.fsutil import atomic_file, atomic_write  # noqa: F401 - re-exported: the layout's writer
from dkbuild.oci.jsoncanon import sha256_digest

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


class CorruptBlob(Exception):
    """A stored blob whose bytes do not match its digest."""

    def __init__(self, digest: str, path: Path):
        self.digest = digest
        self.path = path
        super().__init__(f"blob {digest} is corrupt ({path}); it was removed and will be rebuilt")


class MissingBlob(Exception):
    def __init__(self, digest: str):
        self.digest = digest
        super().__init__(f"blob {digest} is not in the local store")


class OciLayout:
    def __init__(self, root: Path):
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self._blobs_dir = str(self.blobs)
        self.blobs.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if not (root / "oci-layout").exists():
                atomic_write(root / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            if not (root / "index.json").exists():
                self._write_index({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": []})

    # --- blobs ---------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return Path(self.blob_file(digest))

    def blob_file(self, digest: str) -> str:
        """The blob's path as a string: cache hits check thousands of blobs, and pathlib is slow."""
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or not _SHA256_HEX.fullmatch(hexdigest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return os.path.join(self._blobs_dir, hexdigest)

    def put_blob(self, data: bytes) -> str:
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        if not (path.exists() and path.stat().st_size == len(data) and self._matches(path, digest)):
            atomic_write(path, data)
        return digest

    def get_blob(self, digest: str) -> bytes:
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MissingBlob(digest) from None
        if sha256_digest(data) != digest:
            self.discard(digest)
            raise CorruptBlob(digest, path)
        return data

    def verify_blob(self, digest: str) -> bool:
        """True when the blob exists and its bytes match; a corrupt blob is removed."""
        path = self.blob_path(digest)
        if not path.exists():
            return False
        if self._matches(path, digest):
            return True
        self.discard(digest)
        return False

    def discard(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.blob_path(digest).unlink()

    def blob_digests(self) -> Iterator[str]:
        for path in self.blobs.iterdir():
            if not path.name.startswith("."):
                yield "sha256:" + path.name

    @staticmethod
    def _matches(path: Path, digest: str) -> bool:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return "sha256:" + h.hexdigest() == digest

    # --- index.json ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".index.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_index(self) -> dict[str, Any]:
        return json.loads((self.root / "index.json").read_text())

    def _write_index(self, index: dict[str, Any]) -> None:
        atomic_write(self.root / "index.json", json.dumps(index, indent=2, sort_keys=True).encode() + b"\n")

    def tag(self, ref: str, desc: dict[str, Any]) -> None:
        """Point `ref` (an org.opencontainers.image.ref.name) at a manifest descriptor."""
        entry = {**desc, "annotations": {**desc.get("annotations", {}), REF_NAME: ref}}
        with self._locked():
            index = self._read_index()
            index["manifests"] = [m for m in index["manifests"]
                                  if m.get("annotations", {}).get(REF_NAME) != ref] + [entry]
            index["manifests"].sort(key=lambda m: m.get("annotations", {}).get(REF_NAME, ""))
            self._write_index(index)

    def tag_many(self, wanted: dict[str, dict[str, Any]]) -> None:
        """Point several refs at once; one index rewrite, and none when nothing changes."""
        with self._locked():
            index = self._read_index()
            current = {m.get("annotations", {}).get(REF_NAME): m for m in index["manifests"]}
            changed = False
            for ref, desc in wanted.items():
                entry = {**desc, "annotations": {**desc.get("annotations", {}), REF_NAME: ref}}
                if current.get(ref) != entry:
                    current[ref] = entry
                    changed = True
            if changed:
                index["manifests"] = [current[r] for r in sorted(current, key=lambda r: r or "")]
                self._write_index(index)

    def untag(self, refs: set[str]) -> None:
        with self._locked():
            index = self._read_index()
            index["manifests"] = [m for m in index["manifests"]
                                  if m.get("annotations", {}).get(REF_NAME) not in refs]
            self._write_index(index)

    def refs(self) -> dict[str, dict[str, Any]]:
        return {m["annotations"][REF_NAME]: m for m in self._read_index()["manifests"]
                if REF_NAME in m.get("annotations", {})}

    def resolve(self, ref: str) -> dict[str, Any] | None:
        return self.refs().get(ref)

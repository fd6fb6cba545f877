"""The REAPI client: capabilities, CAS (batch and ByteStream, digests verified) and action cache.

Blobs no larger than the batch budget (the server's max_batch_total_size_bytes, less framing) go
in BatchUpdateBlobs / BatchReadBlobs calls packed up to that budget; larger ones are streamed with
ByteStream in 1 MiB chunks, to and from files, so a large image never sits in memory whole.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dkbuild.fsutil import atomic_file, atomic_write
from dkbuild.remote.reapi.digest import Digest
from dkbuild.remote.reapi.endpoint import Endpoint, parse_endpoint
from dkbuild.remote.reapi.errors import DigestMismatch, ReapiError, ReapiRefused, classify, from_rpc_error
from dkbuild.remote.reapi.gate import Gate
from dkbuild.remote.reapi.stubs import stubs

CHUNK = 1 << 20
# Per-blob framing in a batch request (digest, status, field tags), counted against the budget.
BATCH_OVERHEAD = 256
DEFAULT_BATCH_LIMIT = 4 << 20       # when the server sets none (0 means "no limit" in REAPI)
FIND_MISSING_CHUNK = 4096           # digests per FindMissingBlobs request
Blob = bytes | Path


@dataclass(frozen=True)
class ServerCapabilities:
    digest_functions: tuple[str, ...]
    max_batch_total_size_bytes: int
    action_cache_update_enabled: bool
    execution_enabled: bool

    @property
    def batch_limit(self) -> int:
        limit = self.max_batch_total_size_bytes or DEFAULT_BATCH_LIMIT
        return min(limit, DEFAULT_BATCH_LIMIT)


class ReapiClient:
    """One channel to one server instance. Thread-safe; every RPC passes the shared gate."""

    def __init__(self, endpoint: Endpoint):
        s = stubs()
        self.endpoint = endpoint
        self.instance = endpoint.instance
        self.gate = Gate(endpoint.max_in_flight)
        self.channel = endpoint.open_channel()
        self._re = s.re
        self._bs = s.bytestream
        self._rpc_error = s.grpc.RpcError
        self._capabilities_stub = s.re_grpc.CapabilitiesStub(self.channel)
        self._cas = s.re_grpc.ContentAddressableStorageStub(self.channel)
        self._ac = s.re_grpc.ActionCacheStub(self.channel)
        self._bytestream = s.bytestream_grpc.ByteStreamStub(self.channel)
        self._capabilities: ServerCapabilities | None = None

    @classmethod
    def open(cls, url: str, env: dict[str, str] | None = None) -> "ReapiClient":
        return cls(parse_endpoint(url, env))

    def close(self) -> None:
        self.channel.close()

    # --- calls -----------------------------------------------------------------------------------

    def call(self, what: str, method: Callable[..., Any], request: Any, timeout: float | None = None) -> Any:
        """One unary RPC through the gate, with the credentials' metadata and our error types."""
        with self.gate.slot():
            try:
                return method(request, timeout=timeout or self.endpoint.timeout, metadata=self.endpoint.metadata())
            except self._rpc_error as exc:
                raise from_rpc_error(exc, what) from None

    def capabilities(self) -> ServerCapabilities:
        """The server's capabilities (asked once); refuses a server that cannot do SHA-256."""
        if self._capabilities is None:
            answer = self.call("GetCapabilities", self._capabilities_stub.GetCapabilities,
                               self._re.GetCapabilitiesRequest(instance_name=self.instance))
            sha256 = self._re.DigestFunction.SHA256
            cache = answer.cache_capabilities
            functions = tuple(self._re.DigestFunction.Value.Name(f) for f in cache.digest_function)
            if cache.digest_function and sha256 not in cache.digest_function:
                raise ReapiRefused(f"{self.endpoint.url} does not offer SHA-256 digests (only {', '.join(functions)})")
            self._capabilities = ServerCapabilities(
                functions or ("SHA256",), cache.max_batch_total_size_bytes,
                cache.action_cache_update_capabilities.update_enabled,
                answer.execution_capabilities.exec_enabled)
        return self._capabilities

    # --- CAS: presence ---------------------------------------------------------------------------

    def find_missing(self, digests: Iterable[Digest]) -> set[Digest]:
        wanted = sorted(set(digests))
        missing: set[Digest] = set()
        for start in range(0, len(wanted), FIND_MISSING_CHUNK):
            request = self._re.FindMissingBlobsRequest(
                instance_name=self.instance, blob_digests=[d.proto() for d in wanted[start:start + FIND_MISSING_CHUNK]])
            answer = self.call("FindMissingBlobs", self._cas.FindMissingBlobs, request)
            missing.update(Digest.from_proto(d) for d in answer.missing_blob_digests)
        return missing

    # --- CAS: write ------------------------------------------------------------------------------

    def upload_missing(self, blobs: Mapping[Digest, Blob]) -> int:
        """Upload what the CAS lacks of `blobs` (bytes, or a file to stream); the count uploaded."""
        missing = self.find_missing(blobs)
        self.upload({d: blobs[d] for d in sorted(missing)})
        return len(missing)

    def upload(self, blobs: Mapping[Digest, Blob]) -> None:
        limit = self.capabilities().batch_limit
        small = {d: b for d, b in blobs.items() if d.size_bytes + BATCH_OVERHEAD <= limit}
        for digest, blob in blobs.items():
            if digest not in small:
                self._write_stream(digest, blob)
        for batch in _batches(sorted(small), limit):
            requests = [self._re.BatchUpdateBlobsRequest.Request(digest=d.proto(), data=_bytes(small[d]))
                        for d in batch]
            answer = self.call("BatchUpdateBlobs", self._cas.BatchUpdateBlobs,
                               self._re.BatchUpdateBlobsRequest(instance_name=self.instance, requests=requests))
            for response in answer.responses:
                _check_status(response.status, f"BatchUpdateBlobs {Digest.from_proto(response.digest)}")

    def _write_stream(self, digest: Digest, blob: Blob) -> None:
        resource = self._resource(f"uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size_bytes}")

        def chunks() -> Iterator[Any]:
            offset = 0
            for data in _read_chunks(blob):
                offset += len(data)
                yield self._bs.WriteRequest(resource_name=resource if offset == len(data) else "",
                                            write_offset=offset - len(data), data=data,
                                            finish_write=offset == digest.size_bytes)
            if offset == 0:
                yield self._bs.WriteRequest(resource_name=resource, write_offset=0, finish_write=True)

        answer = self.call(f"ByteStream.Write {digest}", self._bytestream.Write, chunks(),
                           timeout=self._stream_timeout(digest))
        if answer.committed_size not in (digest.size_bytes, -1):
            raise ReapiError(f"ByteStream.Write {digest}: server committed {answer.committed_size} bytes")

    # --- CAS: read -------------------------------------------------------------------------------

    def read_blobs(self, digests: Iterable[Digest]) -> dict[Digest, bytes]:
        """The blobs' bytes, each verified against its digest (BlobMissing, DigestMismatch)."""
        found: dict[Digest, bytes] = {}
        self._read(set(digests), found.__setitem__, lambda d: found.__setitem__(d, self._read_stream_bytes(d)))
        return found

    def read_blobs_to(self, digests: Iterable[Digest], path_of: Callable[[Digest], Path]) -> None:
        """Write each blob to `path_of(digest)` atomically, verified first; large ones are streamed
        to disk, never held in memory."""
        self._read(set(digests), lambda d, data: atomic_write(path_of(d), data),
                   lambda d: self._read_stream_to(d, path_of(d)))

    def _read(self, digests: set[Digest], put: Callable[[Digest, bytes], None],
              stream: Callable[[Digest], None]) -> None:
        limit = self.capabilities().batch_limit
        small = sorted(d for d in digests if d.size_bytes + BATCH_OVERHEAD <= limit)
        for digest in sorted(digests - set(small)):
            stream(digest)
        for batch in _batches(small, limit):
            answer = self.call("BatchReadBlobs", self._cas.BatchReadBlobs,
                               self._re.BatchReadBlobsRequest(instance_name=self.instance,
                                                              digests=[d.proto() for d in batch]))
            for response in answer.responses:
                digest = Digest.from_proto(response.digest)
                _check_status(response.status, f"BatchReadBlobs {digest}")
                if Digest.of(response.data) != digest:
                    raise DigestMismatch(f"the server sent other bytes for blob {digest}")
                put(digest, response.data)
            if len(answer.responses) != len(batch):
                raise ReapiError(f"BatchReadBlobs answered {len(answer.responses)} of {len(batch)} blobs")

    def _read_stream(self, digest: Digest) -> Iterator[bytes]:
        request = self._bs.ReadRequest(resource_name=self._resource(f"blobs/{digest.hash}/{digest.size_bytes}"))
        what = f"ByteStream.Read {digest}"
        with self.gate.slot():
            try:
                for response in self._bytestream.Read(request, timeout=self._stream_timeout(digest),
                                                       metadata=self.endpoint.metadata()):
                    yield response.data
            except self._rpc_error as exc:
                raise from_rpc_error(exc, what) from None

    def _read_stream_to(self, digest: Digest, path: Path) -> None:
        with atomic_file(path) as fh:     # an unverified blob never appears at `path`
            _verified(digest, self._read_stream(digest), fh.write)

    def _read_stream_bytes(self, digest: Digest) -> bytes:
        parts: list[bytes] = []
        _verified(digest, self._read_stream(digest), parts.append)
        return b"".join(parts)

    # --- messages --------------------------------------------------------------------------------

    def store_message(self, message: Any) -> Digest:
        """Put a proto message in the CAS (if missing) and return its digest."""
        data = message.SerializeToString(deterministic=True)
        digest = Digest.of(data)
        self.upload_missing({digest: data})
        return digest

    # --- action cache ----------------------------------------------------------------------------

    def get_action_result(self, action: Digest) -> Any | None:
        """The ActionResult cached for `action`, or None."""
        request = self._re.GetActionResultRequest(instance_name=self.instance, action_digest=action.proto(),
                                                  inline_stdout=False, inline_stderr=False)
        with self.gate.slot():
            try:
                return self._ac.GetActionResult(request, timeout=self.endpoint.timeout,
                                                metadata=self.endpoint.metadata())
            except self._rpc_error as exc:
                if exc.code().name == "NOT_FOUND":
                    return None
                raise from_rpc_error(exc, "GetActionResult") from None

    def update_action_result(self, action: Digest, result: Any) -> None:
        self.call("UpdateActionResult", self._ac.UpdateActionResult,
                  self._re.UpdateActionResultRequest(instance_name=self.instance, action_digest=action.proto(),
                                                     action_result=result))

    # --- helpers ---------------------------------------------------------------------------------

    def _resource(self, tail: str) -> str:
        return f"{self.instance}/{tail}" if self.instance else tail

    def _stream_timeout(self, digest: Digest) -> float:
        return self.endpoint.timeout + digest.size_bytes / (4 << 20)    # at worst 4 MiB/s


def _batches(digests: list[Digest], limit: int) -> Iterator[list[Digest]]:
    batch: list[Digest] = []
    total = 0
    for digest in digests:
        cost = digest.size_bytes + BATCH_OVERHEAD
        if batch and total + cost > limit:
            yield batch
            batch, total = [], 0
        batch.append(digest)
        total += cost
    if batch:
        yield batch


def _bytes(blob: Blob) -> bytes:
    return blob.read_bytes() if isinstance(blob, Path) else blob


def _read_chunks(blob: Blob) -> Iterator[bytes]:
    if isinstance(blob, Path):
        with blob.open("rb") as fh:
            yield from iter(lambda: fh.read(CHUNK), b"")
    else:
        for start in range(0, len(blob), CHUNK):
            yield blob[start:start + CHUNK]


def _verified(digest: Digest, chunks: Iterable[bytes], sink: Callable[[bytes], Any]) -> None:
    h, size = hashlib.sha256(), 0
    for data in chunks:
        h.update(data)
        size += len(data)
        if size > digest.size_bytes:
            break
        sink(data)
    if size != digest.size_bytes or h.hexdigest() != digest.hash:
        raise DigestMismatch(f"the server sent other bytes for blob {digest}")


def _check_status(status: Any, what: str) -> None:
    """A per-blob google.rpc.Status in a batch answer, as our errors."""
    if status.code == 0:
        return
    code = stubs().code.Code.Name(status.code)
    raise classify(code, f"{what}: {code}: {status.message or 'no details'}")

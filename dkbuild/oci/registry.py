"""A small OCI distribution client that pushes and pulls the exact bytes dkb hashed.

Why the standard library and not oras-py or requests: a digest is a promise about bytes. oras-py's
`upload_manifest` re-serializes the manifest JSON, so the registry stores (and names) different bytes
than the ones we hashed and tagged locally. We also need to own every timeout, which errors are
retried and how often, how bodies are streamed (a 1 GiB layer must not sit in memory) and bounded (a
manifest is at most 4 MiB), and where an Authorization header may go. `http.client` gives all of
that, with nothing to install and nothing heavy to import.

Contract:
- every network call has a timeout; connection errors, timeouts, 429 and 5xx are retried a bounded
  number of times with exponential backoff, 4xx are not; a circuit breaker bounds them per run, so
  a registry that stopped answering fails every later call at once (oci/breaker.py);
- every byte read is verified: blobs and manifests against their digest, the registry's
  Docker-Content-Digest against ours;
- a manifest is pushed only after everything it references, so a tag never points at an incomplete
  artifact, even if the push dies half way;
- credentials are resolved lazily (on the first 401), sent only to the registry's own origin or its
  token realm, and never appear in an exception, a repr or a log line.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

from dkbuild.oci.breaker import Breaker, RegistryLimits
from dkbuild.oci.reference import DIGEST_RE, REPOSITORY_RE, TAG_RE
from dkbuild.oci.registry_errors import (AuthError, BlobsNotVisible, CircuitOpen, DigestMismatch, NotFound,
                                         RegistryError, RegistryUnavailable, TlsError, TransientError,
                                         parse_challenges)

if TYPE_CHECKING:
    import http.client

    from dkbuild.oci.auth import Credentials
    from dkbuild.oci.layout import OciLayout

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})

MAX_MANIFEST_BYTES = 4 << 20      # what registries accept, and what we are willing to buffer
MAX_SMALL_BODY = 4 << 20          # tag lists, token answers
MAX_ERROR_BODY = 64 << 10
MANIFEST_ROUNDS = 4               # PUTs of one manifest whose blobs the registry briefly cannot see
CHUNK = 1 << 20
USER_AGENT = "dkb/0.1 (+python http.client)"

T = TypeVar("T")
Progress = Callable[[str, int, int], None]     # (digest, bytes sent so far, total bytes)


# --- the client ------------------------------------------------------------------------------------

@dataclass
class _Reply:
    status: int
    headers: Any          # http.client.HTTPMessage
    body: bytes
    url: str


class _ProgressReader:
    """A file object for http.client that reports how much of the body has been sent."""

    def __init__(self, fh: IO[bytes], digest: str, total: int, progress: Progress | None):
        self.fh, self.digest, self.total, self.progress, self.sent = fh, digest, total, progress, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.fh.read(size)
        self.sent += len(chunk)
        if self.progress is not None and chunk:
            self.progress(self.digest, self.sent, self.total)
        return chunk

    def close(self) -> None:
        self.fh.close()


_UNSET: Any = object()


class RegistryClient:
    """One registry (host[:port]); thread-safe (one keep-alive connection per thread and origin)."""

    def __init__(self, registry: str, *, plain_http: bool = False, insecure: bool = False,
                 credentials: Credentials | None | Literal["auto"] = "auto",
                 limits: RegistryLimits | None = None, timeout: float | None = None, retries: int | None = None,
                 backoff: float = 0.2, progress: Progress | None = None):
        if not registry or "/" in registry:
            raise ValueError(f"registry must be host[:port], got {registry!r}")
        limits = limits or RegistryLimits()
        limits = replace(limits, timeout=limits.timeout if timeout is None else timeout,
                         retries=max(0, limits.retries if retries is None else retries))
        self.registry = registry
        self.plain_http = plain_http
        self.insecure = insecure
        self.timeout = limits.timeout
        self.retries = limits.retries
        self.backoff = backoff
        self.breaker = Breaker(limits)
        self.progress = progress
        self.base = f"{'http' if plain_http else 'https'}://{registry}"
        self.requests: Counter[str] = Counter()      # "POST", "PUT", ... and "blob-upload"
        self._credentials_arg = credentials
        self._creds: Credentials | None = _UNSET
        self._auth_lock = threading.Lock()
        self._scheme: str | None = None               # "basic" or "bearer", learnt from challenges
        self._tokens: dict[str, tuple[str, float]] = {}
        self._local = threading.local()
        self._ssl_context: Any = None
        self._has_referrers_api: bool | None = None   # learnt from the first referrer pushed

    def __repr__(self) -> str:
        return f"RegistryClient({self.base!r})"

    # --- public API --------------------------------------------------------------------------------

    def ping(self) -> None:
        reply = self._call("GET", "/v2/", op="ping", repo="", scope="")
        if reply.status != 200:
            raise self._error(RegistryError, "ping", "", f"GET /v2/ answered {reply.status}; is this an "
                              "OCI registry?", reply.status)

    def blob_exists(self, repo: str, digest: str) -> bool:
        self._check(repo, digest=digest)
        reply = self._call("HEAD", f"/v2/{repo}/blobs/{digest}", op=f"check blob {digest}", repo=repo,
                           scope=_scope(repo, "pull"))
        if reply.status == 200:
            return True
        if reply.status == 404:
            return False
        raise self._unexpected(f"check blob {digest}", repo, reply)

    def manifest_digest(self, repo: str, ref: str) -> str | None:
        """What `ref` names, by a HEAD: its Docker-Content-Digest ("" if the registry does not say),
        or None when there is no such manifest."""
        self._check(repo, ref=ref)
        reply = self._call("HEAD", f"/v2/{repo}/manifests/{ref}", op=f"check manifest {ref}", repo=repo,
                           scope=_scope(repo, "pull"), headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)})
        if reply.status == 200:
            return reply.headers.get("Docker-Content-Digest") or ""
        if reply.status == 404:
            return None
        raise self._unexpected(f"check manifest {ref}", repo, reply)

    def push_blob(self, repo: str, digest: str, data: bytes | Path) -> bool:
        """Upload a blob (monolithic POST + PUT ?digest=), streaming from a Path. False if already there."""
        self._check(repo, digest=digest)
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data)
            if _digest(data, digest) != digest:
                raise self._error(DigestMismatch, f"push blob {digest}", repo,
                                  f"the bytes given hash to {_digest(data, digest)}")
        else:
            data = Path(data)
            data.stat()                         # a missing local file is a local problem: OSError
        if self.blob_exists(repo, digest):
            return False
        self._upload_blob(repo, digest, data)
        return True

    def _upload_blob(self, repo: str, digest: str, data: bytes | Path) -> None:
        op = f"push blob {digest}"
        size = len(data) if isinstance(data, bytes) else data.stat().st_size

        def body() -> bytes | _ProgressReader:
            if isinstance(data, bytes):
                return data if self.progress is None else _ProgressReader(io.BytesIO(data), digest, size,
                                                                           self.progress)
            return _ProgressReader(data.open("rb"), digest, size, self.progress)

        def attempt() -> None:
            self._count("blob-upload")
            start = self._attempt("POST", f"{self.base}/v2/{repo}/blobs/uploads/", op=op, repo=repo,
                                  scope=_scope(repo, "pull,push"), headers={"Content-Length": "0"}, body=b"")
            if start.status == 201:        # some registries accept a cross-repo mount or dedupe at once
                return
            if start.status != 202 or not start.headers.get("Location"):
                raise self._unexpected(op, repo, start)
            url = _with_query(_urljoin(start.url, start.headers["Location"]), "digest", digest)
            done = self._attempt("PUT", url, op=op, repo=repo, scope=_scope(repo, "pull,push"), body=body,
                                 headers={"Content-Type": "application/octet-stream",
                                          "Content-Length": str(size)})
            if done.status == 404 and b"BLOB_UPLOAD_" in done.body:
                # The session is gone: an earlier attempt whose answer was lost may have committed it.
                if self.blob_exists(repo, digest):
                    return
                raise TransientError(f"the registry lost the upload session ({_error_detail(done.body)})")
            if done.status != 201:
                raise self._unexpected(op, repo, done)
            announced = done.headers.get("Docker-Content-Digest")
            location = done.headers.get("Location") or ""
            if (announced and announced != digest) or (location and digest not in location):
                raise self._error(DigestMismatch, op, repo, f"the registry stored it as {announced or location}")

        self._retrying(op, repo, attempt)

    def pull_blob(self, repo: str, digest: str) -> bytes:
        """The blob's bytes, verified against the digest (DigestMismatch otherwise)."""
        self._check(repo, digest=digest)
        chunks: list[bytes] = []

        def sink() -> Callable[[bytes], None]:
            chunks.clear()
            return chunks.append

        self._download(repo, digest, None, sink)
        return b"".join(chunks)

    def pull_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str] | None:
        """(bytes, media type, digest), verified; None when the registry has no such manifest."""
        self._check(repo, ref=ref)
        op = f"pull manifest {ref}"
        reply = self._call("GET", f"/v2/{repo}/manifests/{ref}", op=op, repo=repo, scope=_scope(repo, "pull"),
                           headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}, limit=MAX_MANIFEST_BYTES)
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise self._unexpected(op, repo, reply)
        data = reply.body
        digest = _sha256(data)
        if DIGEST_RE.fullmatch(ref):
            if _digest(data, ref) != ref:
                raise self._error(DigestMismatch, op, repo, f"the bytes served hash to {_digest(data, ref)}")
            digest = ref
        announced = reply.headers.get("Docker-Content-Digest") or ""
        if announced.startswith("sha256:") and announced != digest:
            raise self._error(DigestMismatch, op, repo, f"the registry announced {announced} but the bytes "
                              f"hash to {digest}")
        media_type = (reply.headers.get("Content-Type") or "").split(";")[0].strip()
        if media_type not in MANIFEST_MEDIA_TYPES:
            media_type = _json_object(data).get("mediaType") or media_type or OCI_MANIFEST
        return data, media_type, digest

    def push_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """PUT these exact bytes; returns their digest. DigestMismatch if the registry names them differently."""
        self._check(repo, ref=ref)
        op = f"push manifest {ref}"
        digest = _digest(data, ref) if DIGEST_RE.fullmatch(ref) else _sha256(data)
        if DIGEST_RE.fullmatch(ref) and ref != digest:
            raise self._error(DigestMismatch, op, repo, f"the manifest bytes hash to {digest}")
        if len(data) > MAX_MANIFEST_BYTES:
            raise self._error(RegistryError, op, repo, f"manifest is {len(data)} bytes; registries accept "
                              f"at most {MAX_MANIFEST_BYTES}")
        reply = self._call("PUT", f"/v2/{repo}/manifests/{ref}", op=op, repo=repo, scope=_scope(repo, "pull,push"),
                           headers={"Content-Type": media_type}, body=data)
        if reply.status == 400 and b"MANIFEST_BLOB_UNKNOWN" in reply.body:
            raise self._error(BlobsNotVisible, op, repo, f"the registry does not see every blob it references: "
                              f"{_error_detail(reply.body)}", 400)
        if reply.status not in (200, 201):
            raise self._unexpected(op, repo, reply)
        announced = reply.headers.get("Docker-Content-Digest") or ""
        if announced and announced != digest:
            raise self._error(DigestMismatch, op, repo, f"the registry stored it as {announced}, "
                              f"but the bytes sent hash to {digest}")
        subject = _json_object(data).get("subject")
        if isinstance(subject, dict) and subject.get("digest"):
            self._has_referrers_api = bool(reply.headers.get("OCI-Subject"))
            if not self._has_referrers_api:
                self._add_to_referrers_tag(repo, subject["digest"], data, media_type)
        return digest

    def tags(self, repo: str, *, page_size: int | None = None) -> list[str]:
        """Every tag of the repository (following Link pagination); [] for an unknown repository."""
        self._check(repo)
        op = "list tags"
        path: str | None = f"/v2/{repo}/tags/list" + (f"?n={int(page_size)}" if page_size else "")
        found: list[str] = []
        for _ in range(10_000):
            if path is None:
                break
            reply = self._call("GET", path, op=op, repo=repo, scope=_scope(repo, "pull"), limit=MAX_SMALL_BODY)
            if reply.status == 404:
                return []
            if reply.status != 200:
                raise self._unexpected(op, repo, reply)
            found.extend(_json_object(reply.body).get("tags") or [])
            path = _next_link(reply.headers.get("Link"))
        return found

    def referrers(self, repo: str, digest: str, artifact_type: str | None = None) -> list[dict[str, Any]]:
        """Descriptors of the manifests whose `subject` is `digest`: the referrers API, or the
        `sha256-<hex>` tag-schema fallback on registries without it."""
        self._check(repo, digest=digest)
        op = f"list referrers of {digest}"
        reply = self._call("GET", f"/v2/{repo}/referrers/{digest}", op=op, repo=repo, scope=_scope(repo, "pull"),
                           headers={"Accept": OCI_INDEX}, limit=MAX_MANIFEST_BYTES)
        content_type = (reply.headers.get("Content-Type") or "").split(";")[0].strip()
        if reply.status == 200 and content_type == OCI_INDEX:
            manifests = _json_object(reply.body).get("manifests") or []
        elif reply.status in (200, 404):
            fallback = self.pull_manifest(repo, _referrers_tag(digest))
            manifests = _json_object(fallback[0]).get("manifests") or [] if fallback else []
        else:
            raise self._unexpected(op, repo, reply)
        return [m for m in manifests if artifact_type is None or m.get("artifactType") == artifact_type]

    def push_from_layout(self, layout: OciLayout, descriptor: dict[str, Any], repo: str, tag: str | None) -> str:
        """Push everything reachable from `descriptor` in the layout (children before parents, present
        blobs skipped), then the top manifest under `tag` (or by digest). Returns its digest."""
        self._check(repo, ref=tag)
        return self._push_tree(layout, descriptor, repo, tag, set(), top=True)

    def pull_into_layout(self, repo: str, ref: str, layout: OciLayout) -> dict[str, Any]:
        """Fetch the manifest at `ref`, nested manifests and all blobs into the layout, every digest
        verified. Each manifest lands in the layout only after everything it references. Returns
        its descriptor (mediaType, digest, size, artifactType when the manifest has one)."""
        self._check(repo, ref=ref)
        found = self.pull_manifest(repo, ref)
        if found is None:
            raise self._error(NotFound, f"pull {ref}", repo, "no such manifest", 404)
        data, media_type, digest = found
        self._store_tree(repo, data, media_type, layout, set())
        desc: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(data)}
        artifact_type = _json_object(data).get("artifactType")
        if artifact_type:
            desc["artifactType"] = artifact_type
        return desc

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close this thread's connections."""
        for conn in getattr(self._local, "conns", {}).values():
            conn.close()
        self._local.conns = {}

    # --- trees of manifests ------------------------------------------------------------------------

    def _push_tree(self, layout: OciLayout, desc: dict[str, Any], repo: str, tag: str | None,
                   seen: set[str], top: bool = False) -> str:
        digest = desc["digest"]
        data = layout.get_blob(digest)
        if "size" in desc and desc["size"] != len(data):
            raise ValueError(f"descriptor of {digest} says {desc['size']} bytes, the blob has {len(data)}")
        manifest = _json_object(data)
        media_type = desc.get("mediaType") or manifest.get("mediaType") or OCI_MANIFEST
        if not top and digest in seen:
            return digest
        seen.add(digest)
        # A registry holds a manifest only with everything it references: one that already names
        # this digest (under this tag) needs no PUT, so an unchanged re-publish writes nothing.
        if self.manifest_digest(repo, tag or digest) in ({digest, ""} if tag is None else {digest}):
            if isinstance(manifest.get("subject"), dict) and not self._referrers_api(repo, digest):
                # a run that died between this manifest and its referrers index entry left it unlisted
                self._add_to_referrers_tag(repo, manifest["subject"]["digest"], data, media_type)
            return digest
        for round_ in range(MANIFEST_ROUNDS):
            self._push_children(layout, manifest, media_type, repo, seen if round_ == 0 else set())
            try:
                return self.push_manifest(repo, tag or digest, data, media_type)
            except BlobsNotVisible:
                # Another publisher of the same blobs is rewriting their links right now (a
                # filesystem-backed registry writes them in place): check them again and retry.
                if round_ == MANIFEST_ROUNDS - 1:
                    raise
                time.sleep(self.backoff * 2 ** round_)
        raise AssertionError("unreachable")

    def _push_children(self, layout: OciLayout, manifest: dict[str, Any], media_type: str, repo: str,
                       seen: set[str]) -> None:
        if media_type in INDEX_MEDIA_TYPES or "manifests" in manifest:
            for child in manifest.get("manifests") or []:
                self._push_tree(layout, child, repo, None, seen)
            return
        for blob in [manifest.get("config"), *(manifest.get("layers") or [])]:
            if not blob or blob["digest"] in seen:
                continue
            seen.add(blob["digest"])
            path = layout.blob_path(blob["digest"])
            if blob.get("urls") and not path.exists():
                continue     # a non-distributable layer that lives elsewhere
            if not path.exists():
                from dkbuild.oci.layout import MissingBlob
                raise MissingBlob(blob["digest"])
            if self.blob_exists(repo, blob["digest"]):
                continue
            # Hash it before sending: a blob corrupted in place (same size and mtime, so its cache
            # entry still trusts it) is removed from the layout and never uploaded.
            if not layout.verify_blob(blob["digest"]):
                from dkbuild.oci.layout import CorruptBlob
                raise CorruptBlob(blob["digest"], path)
            self._upload_blob(repo, blob["digest"], path)

    def _store_tree(self, repo: str, data: bytes, media_type: str, layout: OciLayout, seen: set[str]) -> None:
        manifest = _json_object(data)
        if media_type in INDEX_MEDIA_TYPES or "manifests" in manifest:
            for child in manifest.get("manifests") or []:
                if child["digest"] in seen:
                    continue
                seen.add(child["digest"])
                found = self.pull_manifest(repo, child["digest"])
                if found is None:
                    raise self._error(NotFound, f"pull manifest {child['digest']}", repo,
                                      "an index references a manifest the registry does not have", 404)
                if "size" in child and child["size"] != len(found[0]):
                    raise self._error(DigestMismatch, f"pull manifest {child['digest']}", repo,
                                      f"{len(found[0])} bytes, the index says {child['size']}")
                self._store_tree(repo, found[0], child.get("mediaType") or found[1], layout, seen)
        else:
            for blob in [manifest.get("config"), *(manifest.get("layers") or [])]:
                if not blob or blob["digest"] in seen:
                    continue
                seen.add(blob["digest"])
                if blob.get("urls") and not self.blob_exists(repo, blob["digest"]):
                    continue
                if not layout.verify_blob(blob["digest"]):
                    self._download_into(layout, repo, blob["digest"], blob.get("size"))
        layout.put_blob(data)

    def _download_into(self, layout: OciLayout, repo: str, digest: str, size: int | None) -> None:
        """Stream a blob into the layout: temp file, verify, fsync, rename."""
        from dkbuild.oci.layout import atomic_file

        with atomic_file(layout.blob_path(digest)) as fh:
            def sink() -> Callable[[bytes], None]:
                fh.seek(0)
                fh.truncate()
                return fh.write

            self._download(repo, digest, size, sink)

    def _download(self, repo: str, digest: str, size: int | None,
                  sink: Callable[[], Callable[[bytes], Any]]) -> None:
        """GET a blob, streaming it to `sink()` (a fresh writer per attempt), hashing as it goes."""
        op = f"pull blob {digest}"
        algorithm = digest.split(":", 1)[0]

        def consume(resp: http.client.HTTPResponse) -> None:
            write = sink()
            h = hashlib.new(algorithm)
            received = 0
            while chunk := resp.read(CHUNK):
                received += len(chunk)
                if size is not None and received > size:
                    raise self._error(DigestMismatch, op, repo, f"more than the {size} bytes its descriptor says")
                h.update(chunk)
                write(chunk)
            if f"{algorithm}:{h.hexdigest()}" != digest:
                raise self._error(DigestMismatch, op, repo, f"the bytes served hash to {algorithm}:{h.hexdigest()}; "
                                  "the registry's copy is corrupt")

        def attempt() -> None:
            reply = self._attempt("GET", f"{self.base}/v2/{repo}/blobs/{digest}", op=op, repo=repo,
                                  scope=_scope(repo, "pull"), consume=consume)
            if reply is None:
                return
            if reply.status == 404:
                raise self._error(NotFound, op, repo, "the registry has no such blob", 404)
            raise self._unexpected(op, repo, reply)

        self._retrying(op, repo, attempt)

    def _referrers_api(self, repo: str, digest: str) -> bool:
        """Whether the registry keeps referrers itself (OCI 1.1), asked once per client."""
        if self._has_referrers_api is None:
            reply = self._call("GET", f"/v2/{repo}/referrers/{digest}", op=f"list referrers of {digest}", repo=repo,
                               scope=_scope(repo, "pull"), headers={"Accept": OCI_INDEX}, limit=MAX_MANIFEST_BYTES)
            content_type = (reply.headers.get("Content-Type") or "").split(";")[0].strip()
            self._has_referrers_api = reply.status == 200 and content_type == OCI_INDEX
        return self._has_referrers_api

    def _add_to_referrers_tag(self, repo: str, subject: str, data: bytes, media_type: str) -> None:
        """The referrers tag schema: keep an index at `sha256-<hex>` listing the subject's referrers.
        The index is read, extended and written back, so another publisher may overwrite our entry
        in between: it is read again afterwards, and the update redone until the entry is there."""
        manifest = _json_object(data)
        entry: dict[str, Any] = {"mediaType": media_type, "digest": _sha256(data), "size": len(data)}
        artifact_type = manifest.get("artifactType") or (manifest.get("config") or {}).get("mediaType")
        if artifact_type:
            entry["artifactType"] = artifact_type
        if manifest.get("annotations"):
            entry["annotations"] = manifest["annotations"]
        tag = _referrers_tag(subject)
        for round_ in range(MANIFEST_ROUNDS + 1):
            current = self.pull_manifest(repo, tag)
            index = _json_object(current[0]) if current else {"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                               "manifests": []}
            if any(m.get("digest") == entry["digest"] for m in index.get("manifests") or []):
                return
            if round_ == MANIFEST_ROUNDS:
                break
            if round_:
                time.sleep(self.backoff * (1 + random.random()))
            index["manifests"] = [*(index.get("manifests") or []), entry]
            body = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
            with contextlib.suppress(BlobsNotVisible):      # as in _push_tree: look again, then retry
                self.push_manifest(repo, tag, body, OCI_INDEX)
        raise self._error(RegistryError, f"list referrer {entry['digest']}", repo,
                          f"the referrers index {tag} kept being rewritten by another publisher; run again")

    # --- requests, retries, auth -------------------------------------------------------------------

    def _call(self, method: str, path: str, *, op: str, repo: str, scope: str,
              headers: dict[str, str] | None = None, body: bytes | None = None,
              limit: int = MAX_ERROR_BODY) -> _Reply:
        def attempt() -> _Reply:
            reply = self._attempt(method, self.base + path, op=op, repo=repo, scope=scope, headers=headers,
                                  body=body, limit=limit)
            assert reply is not None
            return reply

        return self._retrying(op, repo, attempt)

    def _retrying(self, op: str, repo: str, attempt: Callable[[], T]) -> T:
        delay = self.backoff
        for number in range(self.retries + 1):
            if self.breaker.open:
                raise self._error(CircuitOpen, op, repo, f"not tried: the registry stopped answering earlier in "
                                  f"this run: {self.breaker.reason}", hint=self._down_hint())
            started = time.monotonic()
            try:
                result = attempt()
            except TransientError as exc:
                last = exc
                if self.breaker.failed(started, f"{op} at {repo or '/v2/'}: {exc}") or number == self.retries:
                    break
                wait = delay * (0.75 + random.random() / 2)
                if exc.retry_after is not None:
                    wait = max(wait, min(exc.retry_after, 5.0))
                time.sleep(wait)
                delay *= 2
                continue
            except RegistryError:
                self.breaker.answered()        # an answer, if not the one hoped for: the registry is there
                raise
            self.breaker.answered()
            return result
        attempts = number + 1
        detail = f"{last} (gave up after {attempts} attempt{'s' if attempts > 1 else ''}"
        if self.breaker.open:
            detail += f"; {self.breaker.cause}; no more requests to this registry in this run"
        raise self._error(RegistryUnavailable, op, repo, detail + ")", last.status, hint=self._down_hint())

    def gave_up(self) -> RegistryUnavailable | None:
        """Why this client stopped trying the registry for the rest of the run, or None."""
        if not self.breaker.open:
            return None
        return RegistryUnavailable(self._scrub(f"{self.registry} stopped answering: {self.breaker.reason}"),
                                   hint=self._down_hint(), registry=self.registry)

    def _down_hint(self) -> str:
        return (f"is a registry running and reachable at {self.base}? (limits: [registry] timeout, retries, "
                "give_up_after, max_failures)")

    def _attempt(self, method: str, url: str, *, op: str, repo: str, scope: str,
                 headers: dict[str, str] | None = None, body: Any = None, limit: int = MAX_ERROR_BODY,
                 consume: Callable[[http.client.HTTPResponse], None] | None = None) -> _Reply | None:
        """One exchange, following redirects and answering one auth challenge. 401/403 raise AuthError,
        429/5xx and network trouble raise TransientError; other answers are returned. With `consume`,
        a 2xx body is handed to it (inside the attempt, so a broken stream is retried) and None returned."""
        answered = False
        for _ in range(8):
            sent = {"User-Agent": USER_AGENT, **(headers or {})}
            authorization = self._authorization(url, scope)
            if authorization:
                sent["Authorization"] = authorization
            resp = self._open(method, url, sent, body, op, repo)
            status = resp.status
            if status == 401 and not answered:
                challenge = resp.getheader("WWW-Authenticate") or ""
                self._drain(resp, url)
                self._answer_challenge(challenge, scope, op, repo)
                answered = True
                continue
            if status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD") and resp.getheader("Location"):
                location = resp.getheader("Location") or ""
                self._drain(resp, url)
                url = _urljoin(url, location)
                continue
            if status in (401, 403):
                detail = _error_detail(self._read(resp, url, MAX_ERROR_BODY))
                raise self._auth_failure(op, repo, status, detail)
            if status >= 500 or status == 429:
                detail = _error_detail(self._read(resp, url, MAX_ERROR_BODY))
                retry_after = resp.getheader("Retry-After")
                raise TransientError(f"HTTP {status}{': ' + detail if detail else ''}", status,
                                 float(retry_after) if retry_after and retry_after.isdigit() else None)
            if consume is not None and 200 <= status < 300:
                try:
                    consume(resp)
                except (OSError, _http().HTTPException) as exc:
                    self._drop(url)
                    raise TransientError(_describe(exc)) from None
                except BaseException:
                    self._drop(url)
                    raise
                return None
            if method == "HEAD":
                resp.read()       # no body; its Content-Length is the blob's size
                data = b""
            else:
                data = self._read(resp, url, limit if 200 <= status < 300 else MAX_ERROR_BODY,
                                  must_fit=200 <= status < 300)
            text = data.decode("utf-8", "replace")
            if status == 400 and "DIGEST_INVALID" in text and "MANIFEST_BLOB_UNKNOWN" not in text:
                raise self._error(DigestMismatch, op, repo, f"the registry rejected the content: "
                                  f"{_error_detail(data)}", status)
            return _Reply(status, resp.headers, data, url)
        raise self._error(RegistryError, op, repo, "too many redirects")

    # --- auth --------------------------------------------------------------------------------------

    def _credentials(self, op: str, repo: str) -> Credentials | None:
        with self._auth_lock:
            if self._creds is _UNSET:
                if self._credentials_arg == "auto":
                    from dkbuild.oci.auth import CredentialError, resolve_credentials
                    try:
                        self._creds = resolve_credentials(self.registry)
                    except CredentialError as exc:
                        raise self._error(AuthError, op, repo, str(exc)) from None
                else:
                    self._creds = self._credentials_arg
            return self._creds

    def _authorization(self, url: str, scope: str) -> str | None:
        if not url.startswith(self.base + "/"):
            return None          # never hand our credentials to another origin (e.g. a storage redirect)
        with self._auth_lock:
            scheme, creds = self._scheme, (None if self._creds is _UNSET else self._creds)
            token = self._tokens.get(scope)
            if (token is None or token[1] <= time.monotonic()) and scope.endswith(":pull"):
                token = self._tokens.get(scope + ",push")      # a push token also allows pulls
        if scheme == "basic" and creds and creds.username and creds.password:
            return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        if scheme == "bearer":
            if token and token[1] > time.monotonic():
                return f"Bearer {token[0]}"
            if creds and creds.is_registry_token:
                return f"Bearer {creds.password}"
        return None

    def _answer_challenge(self, header: str, scope: str, op: str, repo: str) -> None:
        challenges = dict(parse_challenges(header))
        creds = self._credentials(op, repo)
        if "bearer" in challenges:
            params = challenges["bearer"]
            with self._auth_lock:
                self._scheme = "bearer"
            if creds and creds.is_registry_token:
                return
            token, lifetime = self._fetch_token(params, params.get("scope", scope), creds, op, repo)
            with self._auth_lock:
                self._tokens[scope] = (token, time.monotonic() + max(lifetime - 10, 1))
            return
        if "basic" in challenges:
            if creds and creds.is_registry_token:
                raise self._auth_failure(op, repo, 401, f"the registry wants a user name and password, but "
                                         f"{creds.source} is a bearer token")
            if not (creds and creds.username and creds.password):
                raise self._auth_failure(op, repo, 401, "authentication required")
            with self._auth_lock:
                self._scheme = "basic"
            return
        raise self._auth_failure(op, repo, 401, f"unsupported authentication challenge {header[:80]!r}")

    def _fetch_token(self, params: dict[str, str], scope: str, creds: Credentials | None, op: str,
                     repo: str) -> tuple[str, float]:
        from urllib.parse import urlencode, urlsplit

        realm = params.get("realm") or ""
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self._auth_failure(op, repo, 401, f"the registry's token realm {realm!r} is not a URL")
        if parts.scheme == "http" and creds and not self.plain_http:
            raise self._auth_failure(op, repo, 401, "the token realm is plain http; refusing to send credentials")
        query = {k: v for k, v in (("service", params.get("service")), ("scope", scope)) if v}
        headers = {"User-Agent": USER_AGENT}
        if creds and creds.identity_token:
            method, url = "POST", realm
            body = urlencode({**query, "grant_type": "refresh_token", "client_id": "dkb",
                              "refresh_token": creds.identity_token}).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            method, body = "GET", None
            url = realm + ("&" if parts.query else "?") + urlencode(query) if query else realm
            if creds and creds.username and creds.password:
                headers["Authorization"] = "Basic " + base64.b64encode(
                    f"{creds.username}:{creds.password}".encode()).decode()
        resp = self._open(method, url, headers, body, op, repo)
        data = self._read(resp, url, MAX_SMALL_BODY)
        if resp.status in (401, 403):
            raise self._auth_failure(op, repo, resp.status, "the token service rejected the credentials")
        if resp.status >= 500 or resp.status == 429:
            raise TransientError(f"token service answered HTTP {resp.status}", resp.status)
        answer = _json_object(data) if resp.status == 200 else {}
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise self._auth_failure(op, repo, resp.status, f"the token service gave no token (HTTP {resp.status})")
        try:
            lifetime = float(answer.get("expires_in") or 60)
        except (TypeError, ValueError):
            lifetime = 60.0
        return token, lifetime

    def _auth_failure(self, op: str, repo: str, status: int, detail: str) -> AuthError:
        creds = None if self._creds is _UNSET else self._creds
        if creds is None:
            hint = (f"{self.registry} wants credentials: set DKB_REGISTRY_USERNAME and DKB_REGISTRY_PASSWORD "
                    f"(or DKB_REGISTRY_TOKEN), or run `docker login {self.registry}`")
        elif status == 403:
            hint = f"the credentials from {creds.source} lack permission for this; check the account's access"
        elif creds.source.startswith("DKB_REGISTRY"):
            hint = f"the credentials from {creds.source} were rejected; check them"
        else:
            hint = (f"the credentials from {creds.source} were rejected; check them, run "
                    f"`docker login {self.registry}`, or set DKB_REGISTRY_USERNAME and DKB_REGISTRY_PASSWORD")
        word = "denied" if status == 403 else "unauthorized"
        return self._error(AuthError, op, repo, f"{word} (HTTP {status}): {detail}", status, hint=hint)

    # --- transport ---------------------------------------------------------------------------------

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        client = _http()
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get((scheme, netloc))
        if conn is None:
            if scheme == "https":
                conn = client.HTTPSConnection(netloc, timeout=self.timeout, context=self._tls(), blocksize=CHUNK)
            else:
                conn = client.HTTPConnection(netloc, timeout=self.timeout, blocksize=CHUNK)
            conns[(scheme, netloc)] = conn
        return conn

    def _tls(self) -> Any:
        if self._ssl_context is None:
            import ssl
            ctx = ssl.create_default_context()
            if self.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl_context = ctx
        return self._ssl_context

    def _drop(self, url: str) -> None:
        from urllib.parse import urlsplit
        parts = urlsplit(url)
        conn = getattr(self._local, "conns", {}).pop((parts.scheme, parts.netloc), None)
        if conn is not None:
            conn.close()

    def _open(self, method: str, url: str, headers: dict[str, str], body: Any, op: str,
              repo: str) -> http.client.HTTPResponse:
        from urllib.parse import urlsplit
        client = _http()
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._count(method)
        for retry_stale in (True, False):
            conn = self._connection(parts.scheme, parts.netloc)
            reused = conn.sock is not None
            payload = body() if callable(body) else body
            try:
                conn.request(method, target, body=payload, headers=headers)
                return conn.getresponse()
            except (client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop(url)
                if reused and retry_stale:
                    continue       # the server closed an idle keep-alive connection: reconnect once
                raise TransientError(_describe(exc)) from None
            except (OSError, client.HTTPException) as exc:
                self._drop(url)
                import ssl
                if isinstance(exc, ssl.SSLError):
                    raise self._error(TlsError, op, repo, f"TLS with {parts.netloc} failed: "
                                      f"{getattr(exc, 'reason', None) or exc.__class__.__name__}",
                                      hint="use plain_http for a registry without TLS, or insecure to skip "
                                           "certificate checks") from None
                raise TransientError(_describe(exc)) from None
            finally:
                if payload is not None and hasattr(payload, "close"):
                    payload.close()
        raise AssertionError("unreachable")

    def _read(self, resp: http.client.HTTPResponse, url: str, limit: int, must_fit: bool = False) -> bytes:
        try:
            length = resp.getheader("Content-Length")
            if must_fit and length and length.isdigit() and int(length) > limit:
                self._drop(url)
                raise RegistryError(f"{url.split('?')[0]}: the answer is {length} bytes, over the {limit} "
                                    "byte limit", registry=self.registry)
            data = resp.read(limit + 1)
            if len(data) > limit:
                self._drop(url)
                if must_fit:
                    raise RegistryError(f"{url.split('?')[0]}: the answer is over the {limit} byte limit",
                                        registry=self.registry)
                return data[:limit]
            if not resp.isclosed():
                resp.read()
            return data
        except (OSError, _http().HTTPException) as exc:
            self._drop(url)
            raise TransientError(_describe(exc)) from None

    def _drain(self, resp: http.client.HTTPResponse, url: str) -> None:
        self._read(resp, url, MAX_ERROR_BODY)

    # --- messages ------------------------------------------------------------------------------------

    def _count(self, what: str) -> None:
        with self._auth_lock:
            self.requests[what] += 1

    def _secrets(self) -> list[str]:
        creds = None if self._creds is _UNSET else self._creds
        secrets = [s for s in (creds.secrets if creds else ()) if s]
        if creds and creds.username and creds.password:
            secrets.append(base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode())
        secrets.extend(token for token, _ in self._tokens.values())
        return sorted(secrets, key=len, reverse=True)

    def _error(self, cls: type[RegistryError], op: str, repo: str, detail: str, status: int | None = None,
               hint: str = "") -> RegistryError:
        where = f"{self.registry}/{repo}" if repo else self.registry
        return cls(self._scrub(f"{op} at {where}: {detail}"), status=status, hint=self._scrub(hint),
                   registry=self.registry, repository=repo, operation=op)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets():
            if len(secret) >= 3:
                text = text.replace(secret, "***")
        return text

    def _unexpected(self, op: str, repo: str, reply: _Reply) -> RegistryError:
        detail = _error_detail(reply.body) or "no detail"
        cls = NotFound if reply.status == 404 else RegistryError
        return self._error(cls, op, repo, f"unexpected HTTP {reply.status}: {detail}", reply.status)

    @staticmethod
    def _check(repo: str, *, digest: str | None = None, ref: str | None = None) -> None:
        if not REPOSITORY_RE.fullmatch(repo):
            raise ValueError(f"invalid repository name {repo!r}")
        if digest is not None and not DIGEST_RE.fullmatch(digest):
            raise ValueError(f"invalid digest {digest!r}")
        if ref is not None and not (TAG_RE.fullmatch(ref) or DIGEST_RE.fullmatch(ref)):
            raise ValueError(f"invalid tag or digest {ref!r}")


# --- small helpers ---------------------------------------------------------------------------------

def _http() -> Any:
    import http.client
    return http.client


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _digest(data: bytes, like: str) -> str:
    """The digest of `data` with the algorithm of the digest `like` (sha256 or sha512)."""
    algorithm = like.split(":", 1)[0]
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _scope(repo: str, actions: str) -> str:
    return f"repository:{repo}:{actions}"


def _referrers_tag(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}"[:128]


def _json_object(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _urljoin(base: str, location: str) -> str:
    from urllib.parse import urljoin
    return urljoin(base, location)


def _with_query(url: str, key: str, value: str) -> str:
    from urllib.parse import quote
    return url + ("&" if "?" in url else "?") + f"{key}={quote(value, safe='')}"


def _next_link(header: str | None) -> str | None:
    """`</v2/x/tags/list?last=b&n=2>; rel="next"` -> the path, or None."""
    if not header:
        return None
    m = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header)
    if not m:
        return None
    from urllib.parse import urlsplit
    parts = urlsplit(m.group(1))
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _error_detail(body: bytes) -> str:
    """The registry's `{"errors": [{"code", "message"}]}`, or the start of whatever it said."""
    text = body.decode("utf-8", "replace")
    try:
        errors = json.loads(text).get("errors") or []
        parts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors if isinstance(e, dict)]
        if parts:
            return "; ".join(parts)[:300]
    except (ValueError, AttributeError):
        pass
    return " ".join(text.split())[:200]


def _describe(exc: BaseException) -> str:
    import socket
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    reason = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {reason}"

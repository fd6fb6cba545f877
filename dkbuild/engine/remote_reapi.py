"""The remote cache on a REAPI server (`grpc://HOST:PORT[/INSTANCE]`, `grpcs://...`): the action
cache holds one ActionResult per dkb action key, the CAS its blobs.

How a dkb action key becomes a REAPI Action digest, the same in every workspace and on every
machine (no path, host or time in it):

    Command { arguments: ["dkb-cache-entry", "v1", <action key>], output_paths: ["dkb/entry.json"] }
    Action  { command_digest: sha256(Command), input_root_digest: sha256(empty Directory) }
    action digest = sha256 of the Action's deterministic protobuf encoding

The ActionResult names, as output files: `dkb/entry.json` (the entry's canonical JSON, the same
document the OCI cache stores as its config), `dkb/entry.json.hmac-sha256` when signed, and every
blob of the entry as `dkb/blobs/sha256/<hex>`; its digests are dkb's own blob digests (an OCI
sha256 digest is a REAPI SHA-256 digest). The Command and Action are stored in the CAS too, so a
server's UI or a `bazel`-style tool can show what an entry is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from dkbuild.engine.cache import CacheEntry
from dkbuild.engine.remote_cache import (
    BackendReadOnly,
    BackendUnavailable,
    EntryUnusable,
    RemoteCacheLocationError,
    StoredEntry,
)

ENTRY_PATH = "dkb/entry.json"
SIGNATURE_PATH = "dkb/entry.json.hmac-sha256"
BLOB_PREFIX = "dkb/blobs/sha256/"
COMMAND_NAME = ["dkb-cache-entry", "v1"]


class ReapiBackend:
    def __init__(self, client: Any):
        self.client = client                      # dkbuild.remote.reapi.ReapiClient

    @staticmethod
    def check_location(location: str) -> None:
        from dkbuild.remote.reapi import EndpointError, ReapiExtraMissing, parse_endpoint
        from dkbuild.remote.reapi.stubs import stubs

        try:
            parse_endpoint(location)
            stubs()
        except (EndpointError, ReapiExtraMissing) as exc:
            raise RemoteCacheLocationError(f"remote cache {location}: {exc}") from None

    @classmethod
    def connect(cls, settings: Any) -> "ReapiBackend":
        from dkbuild.remote.reapi import ReapiClient

        return cls(ReapiClient.open(settings.location))

    # --- the action key as a REAPI Action --------------------------------------------------------

    def messages(self, action_key: str) -> tuple[Any, Any]:
        """The Command and Action that stand for `action_key` (see the module docstring)."""
        from dkbuild.remote.reapi import Digest
        from dkbuild.remote.reapi.stubs import stubs

        re = stubs().re
        command = re.Command(arguments=[*COMMAND_NAME, action_key], output_paths=[ENTRY_PATH])
        action = re.Action(command_digest=Digest.of(command.SerializeToString(deterministic=True)).proto(),
                           input_root_digest=Digest.of(re.Directory().SerializeToString()).proto())
        return command, action

    def action_digest(self, action_key: str) -> Any:
        from dkbuild.remote.reapi import Digest

        return Digest.of(self.messages(action_key)[1].SerializeToString(deterministic=True))

    # --- read ------------------------------------------------------------------------------------

    def read_entry(self, action_key: str) -> StoredEntry | None:
        from dkbuild.remote.reapi import Digest

        with _translated():
            self._check_server()
            result = self.client.get_action_result(self.action_digest(action_key))
            if result is None:
                return None
            files = {f.path: Digest.from_proto(f.digest) for f in result.output_files}
            if ENTRY_PATH not in files:
                raise EntryUnusable(f"the action result names no {ENTRY_PATH}")
            wanted = [files[ENTRY_PATH]] + ([files[SIGNATURE_PATH]] if SIGNATURE_PATH in files else [])
            data = self.client.read_blobs(wanted)
        signature = data[files[SIGNATURE_PATH]].decode("ascii", "replace") if SIGNATURE_PATH in files else ""
        blobs = {"sha256:" + path[len(BLOB_PREFIX):]: d for path, d in files.items() if path.startswith(BLOB_PREFIX)}
        return StoredEntry(data[files[ENTRY_PATH]], signature, blobs)

    def fetch_blobs(self, stored: StoredEntry, digests: list[str], store: Any) -> None:
        unnamed = [d for d in digests if d not in stored.handle or stored.handle[d].oci != d]
        if unnamed:
            raise EntryUnusable(f"the action result lacks blob {unnamed[0][:19]}…")
        with _translated():
            self.client.read_blobs_to([stored.handle[d] for d in digests], lambda d: store.layout.blob_path(d.oci))

    # --- write -----------------------------------------------------------------------------------

    def write_entry(self, entry: CacheEntry, config: bytes, signature: str | None, store: Any) -> None:
        from dkbuild.remote.reapi import Digest
        from dkbuild.remote.reapi.stubs import stubs

        re = stubs().re
        command, action = self.messages(entry.action_key)
        blobs: dict[Digest, Any] = {Digest.from_oci(b["digest"], b["size"]): store.layout.blob_path(b["digest"])
                                    for b in entry.blobs}
        outputs = {BLOB_PREFIX + d.hash: d for d in blobs}
        for path, data in ((ENTRY_PATH, config), (SIGNATURE_PATH, (signature or "").encode())):
            if path == ENTRY_PATH or signature:
                outputs[path] = Digest.of(data)
                blobs[outputs[path]] = data
        for message in (command, action):
            data = message.SerializeToString(deterministic=True)
            blobs[Digest.of(data)] = data
        result = re.ActionResult(
            exit_code=0, output_files=[re.OutputFile(path=p, digest=d.proto()) for p, d in sorted(outputs.items())])
        with _translated(writing=True):
            self._check_server(writing=True)
            self.client.upload_missing(blobs)
            self.client.update_action_result(self.action_digest(entry.action_key), result)

    # --- helpers ---------------------------------------------------------------------------------

    def _check_server(self, writing: bool = False) -> None:
        """The server must speak SHA-256 (asked once); a write needs action cache updates enabled."""
        capabilities = self.client.capabilities()
        if writing and not capabilities.action_cache_update_enabled:
            raise BackendReadOnly("the server's capabilities say action cache updates are disabled")


@contextlib.contextmanager
def _translated(writing: bool = False) -> Iterator[None]:
    """REAPI errors as the remote cache's: a bad blob fails the entry; a refusal while writing
    means a read-only server; anything else, a server to stop using for this run."""
    from dkbuild.remote.reapi import BlobMissing, DigestMismatch, ReapiError, ReapiRefused

    try:
        yield
    except (BlobMissing, DigestMismatch) as exc:
        raise EntryUnusable(str(exc)) from None
    except ReapiRefused as exc:
        raise (BackendReadOnly if writing else BackendUnavailable)(str(exc)) from None
    except ReapiError as exc:
        raise BackendUnavailable(str(exc)) from None

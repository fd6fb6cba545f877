"""What can go wrong talking to a REAPI server, in the three kinds callers act on differently."""

from __future__ import annotations

from typing import Any


class ReapiError(Exception):
    """A REAPI call failed."""


class ReapiUnavailable(ReapiError):
    """The server cannot be reached or is overloaded: callers fall back to working locally."""


class ReapiRefused(ReapiError):
    """The server answered but will not do this: read-only instance, no permission, not implemented."""


class DigestMismatch(ReapiError):
    """The server sent bytes whose digest is not the one asked for."""


class ReapiExtraMissing(ReapiError):
    """The gRPC stubs are not installed."""

    def __init__(self) -> None:
        super().__init__("grpc:// and grpcs:// need the REAPI client: install dkbuild[reapi] "
                         "(pip install 'dkbuild[reapi]')")


# gRPC status code names, by what a caller should do about them.
_UNAVAILABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "CANCELLED", "ABORTED", "INTERNAL",
                "UNKNOWN", "DATA_LOSS"}
_REFUSED = {"PERMISSION_DENIED", "UNAUTHENTICATED", "UNIMPLEMENTED", "FAILED_PRECONDITION"}


def classify(code: str, message: str) -> ReapiError:
    """The error for a gRPC status code name (NOT_FOUND is a missing blob here: callers that read
    it otherwise, like GetActionResult, check for it first)."""
    if code == "NOT_FOUND":
        return BlobMissing(message)
    if code in _REFUSED:
        return ReapiRefused(message)
    if code in _UNAVAILABLE:
        return ReapiUnavailable(message)
    return ReapiError(message)


def from_rpc_error(exc: Any, what: str) -> ReapiError:
    """A grpc.RpcError as one of ours, keeping the server's words."""
    code = exc.code().name if exc.code() is not None else "UNKNOWN"
    return classify(code, f"{what}: {code}: {exc.details() or 'no details'}")

class BlobMissing(ReapiError):
    """The CAS does not have a blob the caller was told it has."""

"""A small REAPI v2 client: endpoint and channel (grpc://, grpcs:// with TLS, bearer token or mTLS
from the environment), GetCapabilities, the CAS (FindMissingBlobs, BatchUpdateBlobs,
BatchReadBlobs, ByteStream) with every digest verified, and the action cache. Every RPC goes
through one bounded gate, so a build with many threads never has more than `max_in_flight` calls
open against the server.

The gRPC stubs come from the optional `dkbuild[reapi]` extra (`buildgrid-common`); importing this
package does not need it, opening a client does (`ReapiExtraMissing` otherwise).
"""

from dkbuild.remote.reapi.client import (
    ReapiClient,
    ServerCapabilities,
)
from dkbuild.remote.reapi.digest import Digest
from dkbuild.remote.reapi.endpoint import Endpoint, EndpointError, parse_endpoint
from dkbuild.remote.reapi.errors import (
    BlobMissing,
    DigestMismatch,
    ReapiError,
    ReapiExtraMissing,
    ReapiRefused,
    ReapiUnavailable,
)

__all__ = ["BlobMissing", "DigestMismatch", "Digest", "Endpoint", "EndpointError", "ReapiClient", "ReapiError",
           "ReapiExtraMissing", "ReapiRefused", "ReapiUnavailable", "ServerCapabilities", "parse_endpoint"]

"""The generated REAPI, ByteStream and google.rpc stubs, from `buildgrid-common` (the optional
`dkbuild[reapi]` extra). Imported only when a client is opened, so dkb runs without the extra."""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

from dkbuild.remote.reapi.errors import ReapiExtraMissing


class Stubs(NamedTuple):
    grpc: ModuleType
    re: ModuleType           # build.bazel.remote.execution.v2 messages
    re_grpc: ModuleType      # ... and service stubs
    bytestream: ModuleType
    bytestream_grpc: ModuleType
    status: ModuleType       # google.rpc.status
    code: ModuleType         # google.rpc.code
    longrunning: ModuleType  # google.longrunning operations (Execute streams them)


_loaded: Stubs | None = None


def stubs() -> Stubs:
    global _loaded
    if _loaded is None:
        try:
            import grpc
            from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
                remote_execution_pb2,
                remote_execution_pb2_grpc,
            )
            from buildgrid.common.protos.google.bytestream import bytestream_pb2, bytestream_pb2_grpc
            from buildgrid.common.protos.google.longrunning import operations_pb2
            from buildgrid.common.protos.google.rpc import code_pb2, status_pb2
        except ImportError:
            raise ReapiExtraMissing() from None
        _loaded = Stubs(grpc, remote_execution_pb2, remote_execution_pb2_grpc, bytestream_pb2,
                        bytestream_pb2_grpc, status_pb2, code_pb2, operations_pb2)
    return _loaded


def available() -> bool:
    try:
        stubs()
    except ReapiExtraMissing:
        return False
    return True

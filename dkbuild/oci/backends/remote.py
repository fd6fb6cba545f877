"""Dockerfile images built on a REAPI server's workers (`--remote-executor grpc://...`).

The image action becomes a REAPI Action: its input root is exactly the build context (the files
the request lists), its Command is buildah's command line writing an OCI archive, and the
`dkb-image-backend` platform property sends it to workers that have buildah. The archive comes
back through the CAS, digest-verified, and is imported into dkb's layout as a local build's output
is; the server's action cache keeps it, so a second build anywhere is answered without running.
The backend's name stays `buildah`, so the image action's key is the same as a local buildah build.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dkbuild.oci.backends import (
    BackendUnavailable,
    ImageBuildFailed,
    ImageRequest,
    ImageResult,
    RemoteExecutorUnavailable,
)
from dkbuild.oci.backends.buildah import REMOTE_OUTPUT, build_failure, remote_command
from dkbuild.oci.backends.ociimport import import_layout_tar
from dkbuild.oci.layout import OciLayout

if TYPE_CHECKING:     # the REAPI client needs the optional extra: imported when a build runs
    from dkbuild.remote.reapi.execution import RemoteExecutor

BACKEND_PROPERTY = "dkb-image-backend"
REMOTE_BACKENDS = ("buildah",)


def platform_of(backend: str) -> dict[str, str]:
    """The platform properties that choose a worker able to run `backend`."""
    return {"OSFamily": "linux", BACKEND_PROPERTY: backend}


class RemoteImageBackend:
    def __init__(self, executor: "RemoteExecutor", backend: str = "buildah"):
        self.executor = executor
        self.name = backend

    def available(self) -> str | None:
        return f"remote executor {self.executor.url} is unreachable: {self.executor.down}" if self.executor.down else None

    def build(self, request: ImageRequest, layout: OciLayout) -> ImageResult:
        from dkbuild.remote.reapi.digest import Digest
        from dkbuild.remote.reapi.errors import ReapiError, ReapiUnavailable
        from dkbuild.remote.reapi.execution import action_blobs
        from dkbuild.remote.reapi.merkle import context_tree

        arguments, env = remote_command(request)
        tree = context_tree(request.label, request.package_dir, request.files)
        action, blobs = action_blobs(arguments, env, platform_of(self.name), tree, [REMOTE_OUTPUT])
        where = f"remote executor {self.executor.url}"
        try:
            done = self.executor.run(action, blobs)
            result = done.result
            if result.exit_code != 0:
                raise build_failure(request, request.dockerfile or "Dockerfile", "build", result.exit_code,
                                    self._stderr(result))
            output = next((f for f in result.output_files if f.path == REMOTE_OUTPUT), None)
            if output is None:
                raise ImageBuildFailed(f"{request.label}: the remote build on {where} wrote no {REMOTE_OUTPUT}")
            with tempfile.TemporaryDirectory(prefix="dkb-remote-image-") as tmp:
                archive = Path(tmp) / REMOTE_OUTPUT
                self.executor.client.read_blobs_to([Digest.from_proto(output.digest)], lambda _d: archive)
                descriptor, image_blobs = import_layout_tar(archive, layout, f"{request.label}: remote {self.name} "
                                                            "output", ref="img")
        except ReapiUnavailable as exc:
            raise RemoteExecutorUnavailable(f"{request.label}: {where} is unreachable: {exc}") from None
        except ReapiError as exc:
            raise ImageBuildFailed(f"{request.label}: the remote build on {where} failed: {exc}") from None
        return ImageResult(descriptor, image_blobs, self.name, remote=done.to_json())

    def _stderr(self, result: Any) -> bytes:
        """The failed build's stderr: inline, or fetched from the CAS."""
        from dkbuild.remote.reapi.digest import Digest

        if result.stderr_raw or not result.stderr_digest.hash:
            return bytes(result.stderr_raw)
        blob = Digest.from_proto(result.stderr_digest)
        return self.executor.client.read_blobs([blob]).get(blob, b"")


def remote_backend(executor: "RemoteExecutor", preference: str) -> RemoteImageBackend:
    """The remote backend for `--image-backend` (auto means buildah, the one workers run)."""
    backend = "buildah" if preference == "auto" else preference
    if backend not in REMOTE_BACKENDS:
        raise BackendUnavailable(f"image backend {backend} cannot run remotely: remote workers build with "
                                 f"{', '.join(REMOTE_BACKENDS)} (use --image-backend auto or buildah)")
    return RemoteImageBackend(executor, backend)

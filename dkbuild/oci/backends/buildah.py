"""Dockerfile builds with buildah, no daemon (DESIGN §5, §6).

Each build gets its own storage (`--root`/`--runroot`, vfs driver) in a temp directory that is
removed afterwards, so builds share no state and need no configured container storage. The image is
pushed to a temp OCI layout and its blobs copied, verified, into dkb's layout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from dkbuild.oci.backends import (
    BackendUnavailable,
    BaseImageUnavailable,
    ImageBuildFailed,
    ImageRequest,
    ImageResult,
)
from dkbuild.oci.backends.context import dockerfile_in_context, tail, write_build_context
from dkbuild.oci.backends.ociimport import import_layout_dir
from dkbuild.oci.layout import OciLayout

INSTALL_HINT = "install buildah (Debian/Ubuntu: apt-get install buildah; Fedora: dnf install buildah)"


class BuildahBackend:
    name = "buildah"

    def __init__(self, executable: str = "buildah"):
        self.executable = executable

    def available(self) -> str | None:
        if shutil.which(self.executable) is None:
            return f"{self.executable} not found on PATH; {INSTALL_HINT}"
        return None

    def build(self, request: ImageRequest, layout: OciLayout) -> ImageResult:
        dockerfile = dockerfile_in_context(request)
        binary = shutil.which(self.executable)
        if binary is None:
            raise BackendUnavailable(f"{request.label}: cannot build {dockerfile}: {self.available()}")
        with tempfile.TemporaryDirectory(prefix="dkb-buildah-", ignore_cleanup_errors=True) as tmp_name:
            tmp = Path(tmp_name)
            storage = [binary, "--root", str(tmp / "root"), "--runroot", str(tmp / "runroot"),
                       "--storage-driver", "vfs"]
            try:
                context = tmp / "context"
                write_build_context(request, context)
                (tmp / "tmp").mkdir()
                env = {**os.environ, "BUILDAH_ISOLATION": "chroot", "TMPDIR": str(tmp / "tmp"),
                       "SOURCE_DATE_EPOCH": str(request.source_date_epoch)}
                image = f"localhost/dkb-build-{uuid.uuid4().hex[:12]}:latest"
                self._run(storage + build_arguments(request, context, image), env, request, dockerfile, "build")
                self._run(storage + ["push", "--format", "oci", image, f"oci:{tmp / 'out'}:img"],
                          env, request, dockerfile, "push")
                descriptor, blobs = import_layout_dir(tmp / "out", layout,
                                                      f"{request.label}: buildah output", ref="img")
            finally:
                _remove_rootless_storage(binary, tmp)
        return ImageResult(descriptor=descriptor, blobs=blobs, backend=self.name)

    @staticmethod
    def _run(argv: list[str], env: dict[str, str], request: ImageRequest, dockerfile: str, step: str) -> None:
        try:
            done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        except OSError as exc:
            raise ImageBuildFailed(f"{request.label}: buildah {step} of {dockerfile} could not start: {exc}") from None
        if done.returncode != 0:
            from dkbuild.oci.backends.failure import base_pull_failed

            output = tail(done.stderr or done.stdout)
            if step == "build" and base_pull_failed(output):
                raise BaseImageUnavailable(f"{request.label}: buildah could not get a base image of {dockerfile}",
                                           output)
            raise ImageBuildFailed(f"{request.label}: buildah {step} of {dockerfile} failed "
                                   f"(exit {done.returncode})", output)


def build_arguments(request: ImageRequest, context: Path, image: str) -> list[str]:
    """`buildah build` arguments (after the storage options). --identity-label=false keeps the
    buildah version out of the image config, so digests agree across buildah versions."""
    args = ["build", "--isolation", "chroot", "--format", "oci", "--identity-label=false",
            "--timestamp", str(request.source_date_epoch),
            "-f", str(context / (request.dockerfile or "Dockerfile"))]
    build_args = {**request.build_args, "SOURCE_DATE_EPOCH": str(request.source_date_epoch)}
    for key in sorted(build_args):
        args += ["--build-arg", f"{key}={build_args[key]}"]
    return args + ["-t", image, str(context)]


def _remove_rootless_storage(binary: str, tmp: Path) -> None:
    """Rootless vfs storage holds files owned by mapped ids that the user cannot delete directly;
    inside buildah's user namespace they can be. As root the temp dir's own removal suffices."""
    if os.geteuid() != 0 and (tmp / "root").exists():
        subprocess.run([binary, "unshare", "rm", "-rf", str(tmp / "root"), str(tmp / "runroot")],
                       stdin=subprocess.DEVNULL, capture_output=True, check=False)

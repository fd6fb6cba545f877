"""Dockerfile builds with buildah, no daemon (DESIGN §5, §6).

Each build gets its own storage (`--root`/`--runroot`, vfs driver) in a temp directory that is
removed afterwards, so builds share no state and need no configured container storage. The image is
pushed to a temp OCI layout and its blobs copied, verified, into dkb's layout.
"""

from __future__ import annotations

import os
import shlex
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
# A remote build (dkbuild.oci.backends.remote): its output file, its fixed image name and PATH.
REMOTE_OUTPUT = "dkb-image.oci.tar"
REMOTE_IMAGE = "localhost/dkb-remote-build:latest"
REMOTE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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
            raise build_failure(request, dockerfile, step, done.returncode, done.stderr or done.stdout)


def build_failure(request: ImageRequest, dockerfile: str, step: str, exit_code: int,
                  output: bytes | str) -> ImageBuildFailed:
    """What a failed buildah run means: a base image it could not get, or a failed build."""
    from dkbuild.oci.backends.failure import base_pull_failed

    text = tail(output)
    if step == "build" and base_pull_failed(text):
        return BaseImageUnavailable(f"{request.label}: buildah could not get a base image of {dockerfile}", text)
    return ImageBuildFailed(f"{request.label}: buildah {step} of {dockerfile} failed (exit {exit_code})", text)


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


def remote_command(request: ImageRequest) -> tuple[list[str], dict[str, str]]:
    """The command line (and environment) a remote worker runs in the input root, which is exactly
    the build context. It first normalises the staged files as write_build_context does (workers
    stage them read-only, with their own mtimes), then builds with private vfs storage and writes
    the image to REMOTE_OUTPUT as an OCI archive. Nothing in it varies between runs, so the Action
    digest is the same for the same context."""
    dockerfile_in_context(request)       # the Dockerfile must be an input, as for a local build
    if REMOTE_OUTPUT in request.files:
        from dkbuild.oci.backends import BadImageRequest

        raise BadImageRequest(f"{request.label}: {REMOTE_OUTPUT} is in the build context; remote builds write "
                              "their image under that name, so rename the file")
    epoch = request.source_date_epoch
    buildah = 'buildah --root "$S/root" --runroot "$S/runroot" --storage-driver vfs'
    script = "\n".join([
        "set -eu",
        'S="$(mktemp -d)"',
        "trap 'rm -rf \"$S\"' EXIT",
        "find . -type d -exec chmod 0755 {} +",
        "find . -type f -perm /111 -exec chmod 0755 {} +",
        "find . -type f ! -perm /111 -exec chmod 0644 {} +",
        f"find . -exec touch -h -d @{epoch} {{}} +",
        f"{buildah} {shlex.join(build_arguments(request, Path('.'), REMOTE_IMAGE))}",
        f"{buildah} push --format oci {REMOTE_IMAGE} oci-archive:{REMOTE_OUTPUT}:img",
    ])
    env = {"BUILDAH_ISOLATION": "chroot", "PATH": REMOTE_PATH, "SOURCE_DATE_EPOCH": str(epoch)}
    return ["/bin/sh", "-c", script], env


def _remove_rootless_storage(binary: str, tmp: Path) -> None:
    """Rootless vfs storage holds files owned by mapped ids that the user cannot delete directly;
    inside buildah's user namespace they can be. As root the temp dir's own removal suffices."""
    if os.geteuid() != 0 and (tmp / "root").exists():
        subprocess.run([binary, "unshare", "rm", "-rf", str(tmp / "root"), str(tmp / "runroot")],
                       stdin=subprocess.DEVNULL, capture_output=True, check=False)

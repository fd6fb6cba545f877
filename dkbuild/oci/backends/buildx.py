"""Dockerfile builds with BuildKit through python-on-whales `docker buildx` (DESIGN §5).

The image is exported as an OCI tar with `rewrite-timestamp=true` and SOURCE_DATE_EPOCH as a build
argument, then imported, verified, into dkb's layout. A named `builder` reaches remote BuildKit
builders (`docker buildx create --driver remote ...`), which need no local Docker daemon.
python-on-whales is imported inside the methods: dkb start-up must not pay for it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dkbuild.oci.backends import (
    BackendUnavailable,
    BaseImageUnavailable,
    ImageBuildFailed,
    ImageRequest,
    ImageResult,
)
from dkbuild.oci.backends.context import (
    dockerfile_in_context,
    tail,
    write_build_context,
)
from dkbuild.oci.backends.ociimport import import_layout_tar
from dkbuild.oci.layout import OciLayout

DOCKER_HINT = "install Docker with the buildx plugin (https://docs.docker.com/build/) or use the buildah backend"
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "armv7l": "arm/v7", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_platform() -> str:
    machine = platform.machine().lower()
    return "linux/" + _ARCHES.get(machine, machine)


def _first_line(exc: BaseException) -> str:
    stderr = getattr(exc, "stderr", None)
    text = (stderr or str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class BuildxBackend:
    name = "buildx"

    def __init__(self, builder: str | None = None, platforms: Sequence[str] | None = None,
                 client_call: Sequence[str] | None = None):
        self.builder = builder
        self.platforms = list(platforms) if platforms else [host_platform()]
        self.client_call = list(client_call) if client_call else ["docker"]

    def _no_local_daemon(self) -> str | None:
        """A cheap answer before importing python-on-whales and running `docker info` (~0.15 s on
        every build): the default docker CLI, no DOCKER_HOST, no other context, no named builder,
        and no daemon socket means there is no Docker to talk to."""
        if self.builder is not None or self.client_call != ["docker"]:
            return None
        if shutil.which("docker") is None:
            return f"docker CLI 'docker' not found on PATH; {DOCKER_HINT}"
        if os.environ.get("DOCKER_HOST") or os.environ.get("DOCKER_CONTEXT"):
            return None
        config = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
        try:
            if json.loads(config.read_text()).get("currentContext", "default") != "default":
                return None
        except (OSError, ValueError, AttributeError):
            pass
        sockets = [Path("/var/run/docker.sock")]
        if os.environ.get("XDG_RUNTIME_DIR"):
            sockets.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "docker.sock")
        if any(s.exists() for s in sockets):
            return None
        return f"docker daemon not reachable (no DOCKER_HOST and no docker.sock); {DOCKER_HINT}"

    def _client(self) -> Any:
        from python_on_whales import DockerClient
        return DockerClient(client_call=self.client_call)

    def available(self) -> str | None:
        unreachable = self._no_local_daemon()
        if unreachable:
            return unreachable
        from python_on_whales import ClientNotFoundError, DockerException

        docker = self._client()
        try:
            if self.builder is None:
                try:
                    info = docker.system.info()
                except DockerException as exc:
                    return f"docker daemon not reachable ({_first_line(exc)}); start Docker or {DOCKER_HINT}"
                except ValueError:
                    info = None     # the daemon answered; only python-on-whales' model did not fit
                if info is not None and not getattr(info, "server_version", None):
                    return f"docker daemon not reachable (docker info reports no server); {DOCKER_HINT}"
            try:
                docker.buildx.version()
            except DockerException as exc:
                return f"docker buildx is not available ({_first_line(exc)}); {DOCKER_HINT}"
            if self.builder is not None:
                try:
                    docker.buildx.inspect(self.builder)
                except (DockerException, ValueError, IndexError) as exc:
                    return (f"BuildKit builder {self.builder!r} is not usable ({_first_line(exc)}); create it "
                            "with `docker buildx create --name ... --driver remote <endpoint>`")
        except ClientNotFoundError:
            return f"docker CLI {self.client_call[0]!r} not found on PATH; {DOCKER_HINT}"
        except OSError as exc:
            return f"docker CLI {self.client_call[0]!r} cannot run ({exc}); {DOCKER_HINT}"
        return None

    def build_options(self, request: ImageRequest, context: Path, dest: Path) -> dict[str, Any]:
        """Keyword arguments for python-on-whales `buildx.build`. Provenance attestations are off:
        they would wrap the image in an index and record the build's time and host."""
        build_args = {**request.build_args, "SOURCE_DATE_EPOCH": str(request.source_date_epoch)}
        return {
            "context_path": context,
            "file": context / dockerfile_in_context(request),
            "build_args": dict(sorted(build_args.items())),
            "builder": self.builder,
            "platforms": self.platforms,
            "output": {"type": "oci", "dest": str(dest), "rewrite-timestamp": "true"},
            "provenance": False,
            "progress": False,      # no --progress flag; stderr is captured for error reports
        }

    def build(self, request: ImageRequest, layout: OciLayout) -> ImageResult:
        from python_on_whales import ClientNotFoundError, DockerException

        dockerfile = dockerfile_in_context(request)
        with tempfile.TemporaryDirectory(prefix="dkb-buildx-") as tmp_name:
            tmp = Path(tmp_name)
            context, dest = tmp / "context", tmp / "image.tar"
            write_build_context(request, context)
            try:
                self._client().buildx.build(**self.build_options(request, context, dest))
            except ClientNotFoundError:
                raise BackendUnavailable(f"{request.label}: cannot build {dockerfile}: docker CLI "
                                         f"{self.client_call[0]!r} not found on PATH; {DOCKER_HINT}") from None
            except DockerException as exc:
                from dkbuild.oci.backends.failure import base_pull_failed

                output = tail(exc.stderr or exc.stdout)
                if base_pull_failed(output):
                    raise BaseImageUnavailable(f"{request.label}: docker buildx could not get a base image of "
                                               f"{dockerfile}", output) from None
                raise ImageBuildFailed(f"{request.label}: docker buildx build of {dockerfile} failed "
                                       f"(exit {exc.return_code})", output) from None
            if not dest.is_file():
                raise ImageBuildFailed(f"{request.label}: docker buildx build of {dockerfile} wrote no OCI tar "
                                       f"at {dest}")
            descriptor, blobs = import_layout_tar(dest, layout, f"{request.label}: buildx output")
        return ImageResult(descriptor=descriptor, blobs=blobs, backend=self.name)

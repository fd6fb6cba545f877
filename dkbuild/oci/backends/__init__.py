"""Container-image backends (DESIGN §5): BuildKit through python-on-whales `buildx`, daemonless
`buildah`, and a pure-Python assembler for packages without a Dockerfile.

Every backend takes an `ImageRequest`, builds from exactly the files it lists (nothing the
workspace ignores can reach a build context), and stores the image's manifest, config and layers
in the caller's `OciLayout` with their digests verified. The caller tags the result.

Backend modules are imported only when a backend is chosen, and python-on-whales only when buildx
is actually asked about, so importing this package costs nothing at dkb start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dkbuild.oci.layout import OciLayout

PREFERENCES = ("auto", "buildx", "buildah")


@dataclass(frozen=True)
class ImageRequest:
    label: str                      # e.g. //pipelines/audience-export (for messages)
    package_dir: Path               # absolute package directory
    files: dict[str, str]           # package-relative path -> content id: the whole build context
    dockerfile: str | None          # package-relative Dockerfile path, or None (assembly)
    build_args: dict[str, str]
    command: list[str]              # spec.command: the entrypoint of assembled images
    env: dict[str, str]             # literal spec.env values
    base_image: str | None          # assembly base: "oci:<dir>@sha256:<digest>" or "host/repo@sha256:<digest>"
    workspace_root: Path
    source_date_epoch: int
    base_plain_http: bool = False   # reach a registry base over HTTP (local test registries)


@dataclass(frozen=True)
class ImageResult:
    descriptor: dict                # the image manifest descriptor (untagged)
    blobs: list[str]                # manifest, config and layer digests, all in the layout
    backend: str
    remote: dict | None = None      # how a remote executor answered (dkbuild.oci.backends.remote)


class ImageBackend(Protocol):
    name: str

    def available(self) -> str | None:
        """None when the backend can build here, else why it cannot."""

    def build(self, request: ImageRequest, layout: OciLayout) -> ImageResult: ...


class BackendUnavailable(Exception):
    """The backend's tool is missing or unreachable; the message says what to install or start."""


class RemoteExecutorUnavailable(BackendUnavailable):
    """The remote executor (--remote-executor) cannot be reached: the image is not built locally
    instead, because it was asked for remotely (the host may have no builder, or the wrong one)."""


class ImageBuildFailed(Exception):
    """The build tool ran and failed, or produced an image that does not verify."""

    def __init__(self, message: str, stderr_tail: str = ""):
        self.message = message
        self.stderr_tail = stderr_tail
        text = message
        if stderr_tail:
            text += "\n" + "\n".join("  | " + line for line in stderr_tail.splitlines())
        super().__init__(text)


class BaseImageUnavailable(ImageBuildFailed):
    """The builder ran but could not obtain a base image (unqualified name, registry unreachable,
    not found, access denied): the Dockerfile's own steps never ran."""


class BadImageRequest(ValueError):
    """The request itself is wrong (unpinned or missing base, Dockerfile outside the context,
    unsafe path): bad input, not a failed build."""


def choose_backend(request: ImageRequest, preference: str = "auto", *, builder: str | None = None,
                   platforms: Sequence[str] | None = None,
                   docker_client_call: Sequence[str] | None = None) -> ImageBackend:
    """The backend that builds `request`.

    Without a Dockerfile it is always the pure-Python assembler (which needs `base_image`).
    With one, "auto" picks buildx when Docker with buildx (or the named BuildKit `builder`) is
    reachable, else buildah; "buildx" or "buildah" forces that backend, and a forced backend that
    cannot run raises BackendUnavailable rather than silently building with the other one.
    """
    if preference not in PREFERENCES:
        raise BadImageRequest(f"unknown image backend {preference!r}; use one of {', '.join(PREFERENCES)}")
    if request.dockerfile is None:
        from dkbuild.oci.backends.assemble import AssembleBackend
        if not request.base_image:
            raise BadImageRequest(
                f"{request.label}: no Dockerfile and no base image to assemble on; add a Dockerfile "
                "or set base_image (oci:<dir>@sha256:<digest>) in [rules.generic-python]")
        return AssembleBackend()

    from dkbuild.oci.backends.buildah import BuildahBackend
    from dkbuild.oci.backends.buildx import BuildxBackend

    buildx = BuildxBackend(builder=builder, platforms=platforms, client_call=docker_client_call)
    buildah = BuildahBackend()
    if preference != "auto":
        chosen: ImageBackend = buildx if preference == "buildx" else buildah
        reason = chosen.available()
        if reason is not None:
            raise BackendUnavailable(f"{request.label}: image backend {chosen.name} was requested but "
                                     f"cannot run: {reason}")
        return chosen
    reasons = []
    for candidate in (buildx, buildah):
        reason = candidate.available()
        if reason is None:
            return candidate
        reasons.append(f"{candidate.name}: {reason}")
    raise BackendUnavailable(f"{request.label}: no image backend can build {request.dockerfile}: "
                             + "; ".join(reasons))


__all__ = [
    "PREFERENCES",
    "BackendUnavailable",
    "BadImageRequest",
    "RemoteExecutorUnavailable",
    "BaseImageUnavailable",
    "ImageBackend",
    "ImageBuildFailed",
    "ImageRequest",
    "ImageResult",
    "choose_backend",
]

"""Why an image step failed, what fixes it, and whether that fails the run (`[build] image_failure`).

A failed image never costs the package artifact: the engine builds and caches the package first.
The policy only decides the exit status: `auto` fails the run when a builder exists and the build
itself failed; a missing builder or an unobtainable base image is reported and the run succeeds
(the package is usable, the image can be built where the builder or the network is). `fail` fails
the run on any image failure, `warn` on none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dkbuild.oci.backends import (
    BackendUnavailable,
    BadImageRequest,
    BaseImageUnavailable,
    ImageBuildFailed,
    RemoteExecutorUnavailable,
)

POLICIES = ("auto", "fail", "warn")
NO_BUILDER = "no-builder"
BASE_UNAVAILABLE = "base-unavailable"
BUILD_FAILED = "build-failed"
BAD_REQUEST = "bad-request"
NO_EXECUTOR = "no-remote-executor"

# How buildah ("creating build container") and BuildKit report a FROM image they could not get.
_BASE_PULL = re.compile(r"creating build container|failed to resolve source metadata|pull access denied"
                        r"|failed to authorize|short-name .* did not resolve")

_FIX = {
    NO_BUILDER: "install buildah (apt-get install buildah) or Docker with buildx, then build again; "
                "the package artifact is built and cached without the image",
    BASE_UNAVAILABLE: "make the base image reachable: name it fully qualified (registry/repository:tag), "
                      "configure a registry mirror (/etc/containers/registries.conf for buildah), or "
                      "build where its registry is reachable; the package artifact is built and cached "
                      "without the image",
    BUILD_FAILED: "fix the Dockerfile step that failed (see the builder's output) and build again",
    BAD_REQUEST: "fix the image settings named in the reason and build again",
    NO_EXECUTOR: "start the remote executor or fix --remote-executor, or build without --remote-executor to "
                 "build images locally; the package artifact is built and cached without the image",
}


def base_pull_failed(output: str) -> bool:
    """Whether a builder's error output says a base image could not be obtained."""
    return bool(_BASE_PULL.search(output))


@dataclass(frozen=True)
class ImageFailure:
    kind: str          # NO_BUILDER | NO_EXECUTOR | BASE_UNAVAILABLE | BUILD_FAILED | BAD_REQUEST
    reason: str
    fix: str

    def blocks(self, policy: str) -> bool:
        if policy == "fail":
            return True
        if policy == "warn":
            return False
        return self.kind in (BUILD_FAILED, BAD_REQUEST)

    def to_json(self, policy: str) -> dict[str, Any]:
        return {"status": "failed", "failure": self.kind, "reason": self.reason, "fix": self.fix,
                "blocking": self.blocks(policy)}


def classify(exc: Exception) -> ImageFailure | None:
    """The failure an image backend raised, or None for anything that is not an image failure."""
    if isinstance(exc, RemoteExecutorUnavailable):
        kind = NO_EXECUTOR
    elif isinstance(exc, BackendUnavailable):
        kind = NO_BUILDER
    elif isinstance(exc, BaseImageUnavailable):
        kind = BASE_UNAVAILABLE
    elif isinstance(exc, ImageBuildFailed):
        kind = BUILD_FAILED
    elif isinstance(exc, BadImageRequest):
        kind = BAD_REQUEST
    else:
        return None
    return ImageFailure(kind, str(exc), _FIX[kind])

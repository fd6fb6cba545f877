"""An action: one unit of work on one target, identified by its action key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from dkbuild.engine.target import BuildTarget

# Bump when the way actions turn inputs into artifacts changes (it is part of every action key).
ACTION_FORMAT = "dkb-build-v1"


@dataclass(frozen=True)
class Action:
    target: BuildTarget
    action_key: str
    steps: tuple[str, ...]            # what would run, e.g. ("package artifact", "image (buildah)")
    # Whether planning it asked the host which image builder it has (a Dockerfile image): its key
    # then depends on more than the workspace's files.
    probes_host: bool = False
    # The key of the package artifact alone, for actions that also build an image: the package is
    # cached under it even when the image fails, and reused while the image is retried.
    package_key: str = ""

    @property
    def label(self) -> str:
        return self.target.label


def action_key(content_key: str, action: str, extra: dict[str, Any] | None = None) -> str:
    material = {"format": ACTION_FORMAT, "action": action, "key": content_key, **(extra or {})}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


@dataclass
class ActionResult:
    label: str
    action_key: str
    key: str
    status: str                       # built | cached | failed | skipped | hit | miss (dry run)
    duration: float = 0.0
    artifacts: dict[str, str] = field(default_factory=dict)    # name -> manifest digest
    errors: list[str] = field(default_factory=list)
    steps: tuple[str, ...] = ()
    note: str = ""                    # e.g. why a present cache entry was not trusted
    descriptors: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    blobs: list[str] = field(default_factory=list, repr=False)   # every blob its cache entry names
    image: dict[str, Any] | None = None   # the image step: {"status", ...}; None when there is none
    refs: tuple[str, ...] = ()        # its package's refs in the local OCI layout (label's, dk's name:tag)

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "status": self.status, "action_key": self.action_key, "key": self.key,
                "duration_s": round(self.duration, 4), "artifacts": self.artifacts, "errors": self.errors,
                "steps": list(self.steps), "note": self.note, "image": self.image,
                "refs": list(self.refs)}

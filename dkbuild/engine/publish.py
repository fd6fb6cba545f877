"""Publish built package artifacts (and their images) to a registry, with supply-chain referrers.

The registry, as dk chooses it: `--registry`, then `DK_REGISTRY` (dkb's `DKB_REGISTRY` as an
alias), then `[registry] url`; with none of them, the embedded registry under `.dkb/registry`
(publish_target.py) instead of dk's `ghcr.io/<metadata.namespace>`. The reference is dk's
`<registry>/<namespace>/<name>:<version>`; an empty namespace adds no empty path segment.
Tags are immutable: an existing tag with another digest is a conflict, the same digest again is a
no-op success, so CI re-runs are idempotent. The bytes pushed are the bytes stored and hashed
locally, so the registry's digest equals the local one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from dkbuild.gitinfo import git_output
from dkbuild.graph.model import Graph
from dkbuild.oci import supplychain
from dkbuild.oci.layout import OciLayout
from dkbuild.oci.reference import REPOSITORY_RE

IMAGE_REPOSITORY_SUFFIX = "image"


@dataclass
class Published:
    label: str
    reference: str
    status: str                      # pushed | unchanged | would-push | conflict | failed | skipped
    digest: str = ""
    size: int = 0
    image: dict[str, Any] | None = None
    referrers: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duration: float = 0.0

    @property
    def note(self) -> str:           # what a progress line shows after the label
        return self.reference

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "reference": self.reference, "status": self.status, "digest": self.digest,
                "size": self.size, "image": self.image, "referrers": self.referrers, "errors": self.errors,
                "duration_s": round(self.duration, 4)}


@dataclass
class PublishRun:
    """Every target's outcome, in order; a run that stopped early says why and what it left."""
    published: list[Published]
    not_attempted: list[str] = field(default_factory=list)     # labels
    stopped: Exception | None = None     # the registry's error (breaker open), or KeyboardInterrupt

    @property
    def failed(self) -> list[Published]:
        return [p for p in self.published if p.status in ("failed", "conflict", "skipped")]


REGISTRY_ENV = ("DK_REGISTRY", "DKB_REGISTRY")      # dk's name first; dkb's stays as an alias


def configured_registry(flag: str | None, config_url: str | None, env: dict[str, str] | None = None) -> str | None:
    """--registry > DK_REGISTRY > DKB_REGISTRY > workspace.toml [registry] url, or None."""
    env = dict(os.environ) if env is None else env
    return flag or next((env[name] for name in REGISTRY_ENV if env.get(name)), None) or config_url


def repository_for(prefix: str, namespace: str | None, name: str) -> str:
    """dk's repository `<prefix>/<namespace>/<name>`, without empty segments."""
    return "/".join(part.strip("/") for part in (prefix or "", namespace or "", name) if part and part.strip("/"))


def connect(host: str, *, plain_http: bool, insecure: bool, limits: Any = None) -> Any:
    """A registry client that has answered /v2/. `insecure` is dk's `--insecure`: TLS without
    certificate checks, and plain HTTP when the registry has no TLS at all. `limits` is a
    RegistryLimits (timeouts, retries, the run's circuit breaker)."""
    from dkbuild.oci.registry import RegistryClient
    from dkbuild.oci.registry_errors import TlsError

    client = RegistryClient(host, plain_http=plain_http, insecure=insecure, limits=limits)
    try:
        client.ping()
    except TlsError:
        if not insecure or plain_http:
            raise
        client = RegistryClient(host, plain_http=True, insecure=True, limits=limits)
        client.ping()
    return client


def source_revision(root: Any) -> dict[str, str] | None:
    commit = git_output(root, "rev-parse", "HEAD")
    if not commit:
        return None
    dirty = git_output(root, "status", "--porcelain") is not None
    remote = git_output(root, "config", "--get", "remote.origin.url") or "git+file://local"
    return {"commit": commit + ("-dirty" if dirty else ""), "uri": f"{remote}@{commit}"}


@dataclass
class Publisher:
    client: Any                      # RegistryClient, or EmbeddedRegistry (same calls)
    host: str
    prefix: str                      # "" for none
    layout: OciLayout
    graph: Graph
    tag: str | None = None
    dry_run: bool = False
    revision: dict[str, str] | None = None

    def publish_all(self, results: list[Any], progress: Any) -> PublishRun:
        """Publish target by target, reporting each to `progress`. Stops at once when the registry
        stops answering (the client's circuit breaker opened) or on Ctrl-C: what was published is
        complete (a manifest goes up only after everything it references), the rest is listed as
        not attempted, and running publish again finishes the job."""
        import time

        run = PublishRun([])
        try:
            for number, result in enumerate(results):
                progress.started(result)
                start = time.monotonic()
                out = self.publish(result)
                out.duration = time.monotonic() - start
                run.published.append(out)
                stopped = self.client.gave_up() if self.client is not None else None
                if stopped is not None and out.status == "failed":
                    out.errors = ["not finished: the run stopped here (its error says why)"]
                progress.finished(out)
                if stopped is not None:
                    run.stopped = stopped
                    run.not_attempted = [r.label for r in results[number + 1:]]
                    break
        except KeyboardInterrupt as exc:
            run.stopped = exc
            run.not_attempted = [r.label for r in results[len(run.published):]]
        finally:
            progress.close()
        return run

    def publish(self, result: Any) -> Published:
        from dkbuild.governance.values import is_semver
        from dkbuild.oci.layout import CorruptBlob, MissingBlob
        from dkbuild.oci.registry import RegistryError

        if result.status == "failed" and "package" not in result.descriptors:
            # Blocked by its own problem (or a dependency's): nothing to push, the rest goes on.
            return Published(result.label, "", "failed", errors=[f"not built: {e}" for e in result.errors[:1]])
        node = self.graph.nodes[result.label]
        model = node.manifest.model
        version = self.tag or model.metadata.version or ""
        repo = repository_for(self.prefix, model.metadata.namespace, node.name)
        reference = f"{self.host}/{repo}:{version}"
        out = Published(result.label, reference, "failed")
        if not version:
            out.errors.append("no version: set metadata.version in dk.yaml or pass --tag")
            return out
        if not is_semver(version):
            out.errors.append(f"version '{version}' is not SemVer (e.g. 1.2.0, without a leading v)")
            return out
        if not REPOSITORY_RE.fullmatch(repo):
            out.errors.append(f"'{repo}' is not an OCI repository name: metadata.name and metadata.namespace "
                              f"must be lowercase [a-z0-9] joined by '.', '_' or '-' ({node.manifest.file})")
            return out
        package = result.descriptors.get("package")
        if package is None:
            out.status = "skipped"
            out.errors.append(f"not built ({result.status})")
            return out
        out.digest, out.size = package["digest"], package["size"]
        try:
            out.status, problem = self._push(repo, version, package)
            if problem:
                out.errors.append(problem)
                return out
            image = result.descriptors.get("image")
            image_repo = f"{repo}/{IMAGE_REPOSITORY_SUFFIX}"
            if image is None and (result.image or {}).get("status") == "failed":
                out.image = {"reference": f"{self.host}/{image_repo}:{version}", "digest": "", "status": "not-built",
                             "reason": result.image["reason"]}
            if image is not None:
                status, problem = self._push(image_repo, version, image)
                out.image = {"reference": f"{self.host}/{image_repo}:{version}", "digest": image["digest"],
                             "status": status}
                if problem:
                    out.status = status
                    out.errors.append(problem)
                    return out
            out.referrers = self._attach(repo, reference, package, result, node)
        except RegistryError as exc:
            out.status = "failed"
            out.errors.append(str(exc))
        except (CorruptBlob, MissingBlob) as exc:
            out.status = "failed"
            out.errors.append(f"{exc}; nothing of it was uploaded: run `dkb publish` again to rebuild and push it")
        return out

    def _push(self, repo: str, tag: str, desc: dict[str, Any]) -> tuple[str, str]:
        """(status, problem): an existing tag is fine only if it already holds this digest."""
        existing = self.client.pull_manifest(repo, tag)
        if existing is not None:
            if existing[2] == desc["digest"]:
                return "unchanged", ""
            return "conflict", (f"{self.host}/{repo}:{tag} already exists with digest {existing[2]}, not "
                                f"{desc['digest']}: tags are immutable; bump metadata.version")
        if self.dry_run:
            return "would-push", ""
        self.client.push_from_layout(self.layout, desc, repo, tag)
        return "pushed", ""

    def _attach(self, repo: str, reference: str, package: dict[str, Any], result: Any, node: Any) -> list[dict[str, str]]:
        model = node.manifest.model
        files = supplychain.content_files(self.layout, package)
        documents = [
            (supplychain.SBOM_TYPE, supplychain.sbom(node.name, model.metadata.version or "", model.spec.runtime,
                                                     files, package["digest"])),
            (supplychain.PROVENANCE_TYPE, supplychain.provenance(reference, package["digest"], result.label,
                                                                 result.action_key, result.key, self.revision)),
        ]
        referrers = [supplychain.referrer(self.layout, package, kind, doc) for kind, doc in documents]
        if not self.dry_run:
            # The client keeps the `sha256-<hex>` fallback index for registries without referrers API.
            for desc in referrers:
                self.client.push_from_layout(self.layout, desc, repo, None)
        return [{"artifactType": r["artifactType"], "digest": r["digest"]} for r in referrers]

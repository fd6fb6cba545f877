"""The embedded registry: what `dkb publish` pushes to when no registry is configured.

It is a directory of standard OCI image layouts, one per repository, under `.dkb/registry/`:
`.dkb/registry/<namespace>/<name>/` holds `oci-layout`, `index.json` and `blobs/sha256/`, so
`skopeo inspect --raw oci:.dkb/registry/<namespace>/<name>:<version>` reads what was published.
Tags are `org.opencontainers.image.ref.name` annotations in index.json. Referrers (SBOM,
provenance) are manifests with a `subject`, listed in index.json without a ref name, which is how
OCI 1.1 layouts (and oras `--oci-layout`) find a manifest's referrers.

It answers the calls `Publisher` and promotion make on a `RegistryClient` (pull_manifest,
push_from_layout, tags, referrers), with the same rules: a manifest lands only after everything it
references, every read is verified against its digest, and a tag is immutable. Unlike a real
registry, setting a tag is a compare-and-set under the layout's lock, so two publishers racing for
one tag cannot both win. Blobs are copied, not hard-linked, from the build store: a registry must
not share the fate of a cache that gc and corruption repair rewrite.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from dkbuild.fsutil import atomic_file
from dkbuild.oci.layout import REF_NAME, CorruptBlob, MissingBlob, OciLayout
from dkbuild.oci.reference import DIGEST_RE, REPOSITORY_RE, TAG_RE
from dkbuild.oci.registry_errors import RegistryError

DIRECTORY = ".dkb/registry"
HOST = f"oci:{DIRECTORY}"            # references read `oci:.dkb/registry/<repo>:<tag>`, as skopeo spells them
# A repository component with one of these names would land inside its parent repository's layout.
_LAYOUT_NAMES = frozenset({"blobs", "index.json", "oci-layout"})
_INDEX_TYPES = frozenset({"application/vnd.oci.image.index.v1+json",
                          "application/vnd.docker.distribution.manifest.list.v2+json"})


class TagConflict(RegistryError):
    """Another publisher set the tag to another digest first."""


class _Repository(OciLayout):
    """One repository's layout, with the two index updates a registry makes."""

    def set_tag(self, tag: str, desc: dict[str, Any]) -> str | None:
        """Point `tag` at `desc` unless it points elsewhere already; returns that other digest."""
        with self._locked():
            index = self._read_index()
            for m in index["manifests"]:
                if m.get("annotations", {}).get(REF_NAME) == tag:
                    return None if m["digest"] == desc["digest"] else str(m["digest"])
            entry = {**desc, "annotations": {**desc.get("annotations", {}), REF_NAME: tag}}
            index["manifests"] = sorted([*index["manifests"], entry], key=_entry_order)
            self._write_index(index)
        return None

    def add_untagged(self, desc: dict[str, Any]) -> None:
        """List a manifest without a ref name (a referrer), once."""
        with self._locked():
            index = self._read_index()
            if any(m["digest"] == desc["digest"] and REF_NAME not in m.get("annotations", {})
                   for m in index["manifests"]):
                return
            index["manifests"] = sorted([*index["manifests"], desc], key=_entry_order)
            self._write_index(index)

    def entries(self) -> list[dict[str, Any]]:
        return list(self._read_index()["manifests"])


def _entry_order(entry: dict[str, Any]) -> tuple[str, str]:
    return entry.get("annotations", {}).get(REF_NAME, ""), entry["digest"]


class EmbeddedRegistry:
    """The registry under `<workspace>/.dkb/registry`; safe for concurrent processes."""

    def __init__(self, workspace_root: Path):
        self.root = workspace_root / DIRECTORY

    def __repr__(self) -> str:
        return f"EmbeddedRegistry({str(self.root)!r})"

    def gave_up(self) -> None:
        """Local files: never stops answering (RegistryClient's circuit breaker has nothing to do here)."""
        return None

    # --- reads -----------------------------------------------------------------------------------

    def pull_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str] | None:
        """(bytes, media type, digest), verified; None when the repository has no such manifest."""
        layout = self._existing(repo, ref)
        if layout is None:
            return None
        if DIGEST_RE.fullmatch(ref):
            digest, media_type = ref, ""
        else:
            entry = layout.resolve(ref)
            if entry is None:
                return None
            digest, media_type = entry["digest"], entry.get("mediaType", "")
        try:
            data = layout.get_blob(digest)
        except MissingBlob:
            return None
        except CorruptBlob:
            raise RegistryError(f"{HOST}/{repo}:{ref}: the stored manifest {digest} was corrupt and has been "
                                "removed", hint="publish again to restore it", registry=HOST, repository=repo,
                                operation=f"pull manifest {ref}") from None
        manifest = _manifest(data)
        if manifest is None:
            return None          # a layer or config blob is no manifest
        return data, media_type or manifest.get("mediaType") or "application/vnd.oci.image.manifest.v1+json", digest

    def tags(self, repo: str) -> list[str]:
        layout = self._existing(repo)
        return sorted(layout.refs()) if layout else []

    def referrers(self, repo: str, digest: str, artifact_type: str | None = None) -> list[dict[str, Any]]:
        """Descriptors of the listed manifests whose `subject` is `digest`."""
        layout = self._existing(repo, digest)
        if layout is None:
            return []
        found = []
        for entry in layout.entries():
            manifest = _manifest(layout.get_blob(entry["digest"]))
            if not manifest or (manifest.get("subject") or {}).get("digest") != digest:
                continue
            kind = manifest.get("artifactType") or (manifest.get("config") or {}).get("mediaType")
            if artifact_type is None or kind == artifact_type:
                desc = {k: entry[k] for k in ("mediaType", "digest", "size") if k in entry}
                found.append({**desc, **({"artifactType": kind} if kind else {}),
                              **({"annotations": manifest["annotations"]} if manifest.get("annotations") else {})})
        return found

    # --- writes ----------------------------------------------------------------------------------

    def push_from_layout(self, layout: OciLayout, descriptor: dict[str, Any], repo: str, tag: str | None) -> str:
        """Copy everything reachable from `descriptor` (children first, present blobs skipped), then
        list the manifest under `tag`, or untagged when it has none. Returns its digest."""
        target = _Repository(self._path(repo, tag))
        self._copy_tree(layout, target, descriptor, set())
        entry = {k: descriptor[k] for k in ("mediaType", "digest", "size", "artifactType") if k in descriptor}
        if tag is None:
            target.add_untagged(entry)
            return str(descriptor["digest"])
        other = target.set_tag(tag, entry)
        if other:
            raise TagConflict(f"{HOST}/{repo}:{tag} already exists with digest {other}, not {descriptor['digest']}: "
                              "tags are immutable; bump metadata.version", registry=HOST, repository=repo,
                              operation=f"push manifest {tag}")
        return str(descriptor["digest"])

    def _copy_tree(self, source: OciLayout, target: _Repository, desc: dict[str, Any], seen: set[str]) -> None:
        digest = desc["digest"]
        if digest in seen:
            return
        seen.add(digest)
        if target.verify_blob(digest):
            return                  # a manifest is stored only after all it references, so this is complete
        data = source.get_blob(digest)
        manifest = _manifest(data) or {}
        if desc.get("mediaType") in _INDEX_TYPES or "manifests" in manifest:
            for child in manifest.get("manifests") or []:
                self._copy_tree(source, target, child, seen)
        else:
            for blob in [manifest.get("config"), *(manifest.get("layers") or [])]:
                if blob and blob["digest"] not in seen:
                    seen.add(blob["digest"])
                    _copy_blob(source, target, blob)
        target.put_blob(data)

    # --- where repositories live -----------------------------------------------------------------

    def _path(self, repo: str, ref: str | None = None) -> Path:
        if not REPOSITORY_RE.fullmatch(repo):
            raise ValueError(f"invalid repository name {repo!r}")
        if ref is not None and not (TAG_RE.fullmatch(ref) or DIGEST_RE.fullmatch(ref)):
            raise ValueError(f"invalid tag or digest {ref!r}")
        clash = next((part for part in repo.split("/")[1:] if part in _LAYOUT_NAMES), None)
        if clash:
            raise RegistryError(f"the embedded registry cannot hold repository {repo!r}: a path component named "
                                f"{clash!r} would land inside a layout's own files; rename the package or "
                                "namespace, or publish to a real registry with --registry",
                                registry=HOST, repository=repo, operation="push")
        return self.root / repo

    def _existing(self, repo: str, ref: str | None = None) -> _Repository | None:
        """The repository's layout when it exists; reads never create one."""
        path = self._path(repo, ref)
        return _Repository(path) if (path / "index.json").is_file() else None


def _manifest(data: bytes) -> dict[str, Any] | None:
    """The JSON object when `data` is a manifest or index, else None."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(value, dict) and value.get("schemaVersion") == 2 and ("config" in value or "manifests" in value):
        return value
    return None


def _copy_blob(source: OciLayout, target: OciLayout, blob: dict[str, Any]) -> None:
    """Stream one verified blob across (temp file + rename); a non-distributable layer that lives
    elsewhere (`urls`) may be absent, as for a registry push."""
    digest = blob["digest"]
    if target.verify_blob(digest):
        return
    if not source.verify_blob(digest):
        if blob.get("urls"):
            return
        raise MissingBlob(digest)
    with source.blob_path(digest).open("rb") as src, atomic_file(target.blob_path(digest)) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)

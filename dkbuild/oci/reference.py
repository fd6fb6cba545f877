"""Registry references: `oci://host[:port]/repo[:tag][@digest]` and the docker-style `host/repo:tag`.

A reference must name its registry. Without an `oci://` prefix the first path component counts as a
host only when it looks like one (has a `.` or a `:`, or is `localhost`), as docker decides; `acme/x`
alone is rejected instead of being silently sent to Docker Hub. Repository, tag and digest follow the
grammar of the OCI distribution spec, so anything accepted here is accepted by a conforming registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dkbuild.redaction import MARK, redact_text

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
_HOST_RE = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]"                                                    # [IPv6]
    r"|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)"
    r"(?::[0-9]{1,5})?")

SCHEME = "oci://"


@dataclass(frozen=True)
class Reference:
    registry: str               # host[:port]
    repository: str             # e.g. acme/enrich
    tag: str | None = None
    digest: str | None = None

    def with_tag(self, tag: str) -> Reference:
        if not TAG_RE.fullmatch(tag):
            raise ValueError(f"invalid tag {tag!r}: at most 128 of [A-Za-z0-9_.-], not starting with . or -")
        return replace(self, tag=tag)

    def with_digest(self, digest: str) -> Reference:
        if not DIGEST_RE.fullmatch(digest):
            raise ValueError(f"invalid digest {digest!r}: expected sha256:<64 lowercase hex>")
        return replace(self, digest=digest)

    @property
    def ref(self) -> str | None:
        """What to put after /manifests/: the digest when known (it pins the content), else the tag."""
        return self.digest or self.tag

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _looks_like_host(component: str) -> bool:
    return ("." in component or ":" in component or component == "localhost") and bool(
        _HOST_RE.fullmatch(component))


def _refuse_credentials(text: str) -> None:
    """A password in a registry URL would be echoed by every message that names the registry:
    refuse it, naming the URL without it."""
    probe = text if "://" in text else SCHEME + text      # `user:pw@host/x` is a URL's authority too
    shown = redact_text(probe)
    if shown == probe:
        return
    host = shown.split(f"{MARK}@", 1)[-1].split("/", 1)[0]
    shown = shown if probe is text else shown[len(SCHEME):]
    raise ValueError(f"invalid registry reference {shown!r}: credentials do not belong in a registry URL "
                     f"(remove the user:password@ part and log in with `docker login {host}`; dkb reads "
                     "Docker's credential store)")


def _split_host(text: str, original: str) -> tuple[str, str]:
    """Split `host/rest`; the host is mandatory."""
    _refuse_credentials(text)
    explicit = text.startswith(SCHEME)
    body = text[len(SCHEME):] if explicit else text
    host, slash, rest = body.partition("/")
    if not host:
        raise ValueError(f"invalid registry reference {original!r}: no registry host "
                         "(expected oci://host[:port]/repository[:tag])")
    if explicit:
        if not _HOST_RE.fullmatch(host):
            raise ValueError(f"invalid registry reference {original!r}: {host!r} is not a host[:port]")
    elif not _looks_like_host(host):
        raise ValueError(f"invalid registry reference {original!r}: it names no registry host "
                         f"(write oci://<registry>/{body} or <registry>/{body})")
    if ":" in host and not host.endswith("]"):
        port = host.rsplit(":", 1)[1]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"invalid registry reference {original!r}: bad port in {host!r}")
    return host, rest if slash else ""


def _check_repository(repository: str, original: str) -> None:
    if not REPOSITORY_RE.fullmatch(repository):
        raise ValueError(f"invalid repository {repository!r} in {original!r}: lowercase path components of "
                         "[a-z0-9] joined by '.', '_', '__' or '-', separated by '/'")


def parse_reference(text: str) -> Reference:
    """`oci://host:port/repo[:tag][@sha256:...]`, `host/repo:tag`, or `host/repo` (no tag, no digest)."""
    original = text
    text = text.strip()
    host, rest = _split_host(text, original)
    if not rest:
        raise ValueError(f"invalid registry reference {original!r}: no repository after the host")
    digest = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST_RE.fullmatch(digest):
            raise ValueError(f"invalid digest {digest!r} in {original!r}: expected sha256:<64 lowercase hex>")
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not TAG_RE.fullmatch(tag):
            raise ValueError(f"invalid tag {tag!r} in {original!r}: at most 128 of [A-Za-z0-9_.-], "
                             "not starting with . or -")
    _check_repository(rest, original)
    return Reference(host, rest, tag, digest)


def parse_location(text: str) -> tuple[str, str]:
    """A registry root or repository prefix with no tag: `oci://host:5000/acme/cache` -> (host:5000, acme/cache).

    `oci://host:5000` alone gives an empty prefix.
    """
    original = text
    text = text.strip().rstrip("/")
    host, rest = _split_host(text, original)
    if "@" in rest or ":" in rest:
        raise ValueError(f"invalid registry location {original!r}: a location names a repository "
                         "(or prefix), not a tag or digest")
    if rest:
        _check_repository(rest, original)
    return host, rest


def short_digest(digest: str) -> str:
    """`sha256:` and the first 12 hex digits: enough to tell digests apart in a table or a PR body."""
    algorithm, _, hexdigits = digest.partition(":")
    return f"{algorithm}:{hexdigits[:12]}" if hexdigits else digest

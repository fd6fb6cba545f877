"""What can go wrong talking to a registry (exceptions that never carry secrets), and the parser
for the WWW-Authenticate challenges that tell a client how to authenticate."""

from __future__ import annotations

import re

# --- errors ----------------------------------------------------------------------------------------

class RegistryError(Exception):
    """A registry operation failed. The message names registry, repository and operation, never a secret."""

    def __init__(self, message: str, *, status: int | None = None, hint: str = "", registry: str = "",
                 repository: str = "", operation: str = ""):
        self.message = message
        self.status = status
        self.hint = hint
        self.registry = registry
        self.repository = repository
        self.operation = operation
        super().__init__(f"{message} (hint: {hint})" if hint else message)


class RegistryUnavailable(RegistryError):
    """Refused, timed out, or 5xx after the bounded retries."""


class CircuitOpen(RegistryUnavailable):
    """Not even tried: the registry stopped answering earlier in the run (see oci/breaker.py)."""


class TlsError(RegistryError):
    """The TLS handshake failed (e.g. the registry speaks plain HTTP, or its certificate is not trusted)."""


class AuthError(RegistryError):
    """401/403 after trying the credentials we have (or having none)."""


class NotFound(RegistryError):
    pass


class BlobsNotVisible(RegistryError):
    """A manifest PUT answered MANIFEST_BLOB_UNKNOWN: a blob it references is not (yet) visible."""


class DigestMismatch(RegistryError):
    """Bytes that do not match the digest they were asked for (or announced with)."""


class TransientError(Exception):
    """A failure worth retrying: connection trouble, timeout, 429 or 5xx."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


# --- WWW-Authenticate ----------------------------------------------------------------------------

_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def parse_challenges(header: str) -> list[tuple[str, dict[str, str]]]:
    """`Bearer realm="r",service="s",scope="repository:a:pull,push", Basic realm="x"` -> [(scheme, params)]."""
    challenges: list[tuple[str, dict[str, str]]] = []
    i, n = 0, len(header)
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        m = _TOKEN.match(header, i)
        if not m:
            break
        word, i = m.group(0), m.end()
        j = i
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=" and challenges:
            j += 1
            while j < n and header[j] in " \t":
                j += 1
            q = _QUOTED.match(header, j)
            if q:
                value, i = re.sub(r"\\(.)", r"\1", q.group(1)), q.end()
            else:
                v = _TOKEN.match(header, j)
                value, i = (v.group(0), v.end()) if v else ("", j)
            challenges[-1][1][word.lower()] = value
        else:
            challenges.append((word.lower(), {}))
    return challenges

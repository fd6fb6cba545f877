"""The one place that decides what a secret looks like, and removes it (issue 18).

Two shapes of secret are recognised, whatever the field is called:

* credentials inside a string: the userinfo of any URL (`scheme://user:pw@host`), and the value of
  a secret-looking parameter in a query string or connection string (`?password=...`,
  `sslpassword=...;`, `token: ...` inside a block of text);
* the value of a mapping key that looks secret (`password`, `adminPassword`, `api-key`, ...), and
  the `value` of a `{name: DB_PASSWORD, value: ...}` pair.

A `${VAR}` reference is not a secret and is kept, as are keys that name where a secret lives
(`secret_ref`, `secretKeyRef`, `password_env`, `token_url`, ...).

Manifests are redacted as they are loaded (manifests.loader), so everything dkb derives from them
(keys, snapshots, artifacts, reports, events, SARIF, error messages) never holds the values; raw
text that leaves dkb as written (a package's dk.yaml, comments) goes through `redact_text`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from dkbuild.manifests.manifest import FieldPath, value_at

MARK = "<redacted>"
_MASKS = frozenset({MARK, "***"})       # already hidden (by dkb, or by a tool that masks with ***)
VAR_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")

# --- which keys name a secret ------------------------------------------------------------------

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# A word that is, or ends in, one of these names a secret (`sslpassword`, `authToken`).
_SECRET_ENDINGS = ("password", "passwords", "passwd", "passphrase", "secret", "secrets", "token", "tokens",
                   "credential", "credentials", "apikey", "privatekey", "secretkey", "accesskey")
_SECRET_WORDS = frozenset({"pass", "pwd", "pw", "psk", "jwt", "bearer", "authorization"})
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"),
                           ("signing", "key"), ("encryption", "key"), ("master", "key"), ("account", "key"),
                           ("auth", "key"), ("client", "key"), ("sas", "key")})
# A last word that makes the key name *where* a secret is, or something about it, not the secret.
_NOT_THE_SECRET = frozenset({"ref", "refs", "env", "var", "variable", "name", "names", "file", "path", "url",
                             "uri", "endpoint", "host", "type", "mode", "ttl", "expiry", "expires", "enabled",
                             "length", "format", "policy", "rotation", "kind", "source", "from", "field",
                             "fields", "provider", "helper", "command", "cmd", "store", "id_env", "header"})


@functools.lru_cache(maxsize=4096)     # the same few hundred keys, in every manifest
def looks_like_secret_key(key: str) -> bool:
    """Whether a key (mapping key or parameter name) names a secret value.

    `password`, `db_pass`, `adminPassword`, `sslpassword`, `X-API-Key`, `client_secret`, `authToken`
    do; `secret_ref`, `secretKeyRef`, `password_env`, `token_url`, `tokenizer`, `bypass` do not."""
    words = [w.lower() for w in _WORD.findall(str(key))]
    if not words or words[-1] in _NOT_THE_SECRET:
        return False
    if any(w in _SECRET_WORDS or w.endswith(_SECRET_ENDINGS) for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:]))


def is_reference(text: str) -> bool:
    """A value that takes its secret from the environment (`${VAR}`, `user:${PW}`): not a secret."""
    return VAR_REF.search(text) is not None


# --- credentials inside strings ----------------------------------------------------------------

# scheme://userinfo@ : the userinfo runs to the last `@` before the path, query or fragment; a
# `user:password` may hold an unescaped `/` or `@` (a generated key often does), so with a colon it
# runs to the last `@` before a query, unless what follows the colon is a port and a path.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)("
                       r"[^\s/?#@:\"'<>`]*:(?!\d*(?:[/?#\"'<>`]|\s|$))[^\s?#\"'<>`]*"
                       r"|[^\s/?#@\"'<>`]*(?:@[^\s/?#@\"'<>`]*)*)@")
# name=value or name: value, at the start of a string or after a separator of a query or DSN.
_PARAM = re.compile(r"(?P<lead>^|[?&;,\s(\"'{\-])(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<sep>[ \t]*=[ \t]*|:[ \t]+)"
                    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|(?:(?:Bearer|Basic|Token|Digest)[ \t]+)?(?:\$\{[^}\s]*\}|[^\s&;,#)\"'}])+)")
# Under a secret-looking key everything is secret but what describes the field (a Connector's
# connectionSchema: `password: {field: password, description: ...}`).
_DESCRIPTIVE = frozenset({"field", "description", "type", "name", "kind", "format", "optional", "secret"})
_FLAG = re.compile(r"--?[A-Za-z][A-Za-z0-9_.\-]*")
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"})


def _userinfo(match: re.Match[str]) -> str:
    userinfo = match.group(2)
    secret = userinfo.split(":", 1)[1] if ":" in userinfo else userinfo
    if not userinfo or is_reference(secret) or userinfo in _MASKS or secret in _MASKS:
        return match.group(0)
    return f"{match.group(1)}{MARK}@"


def _param(match: re.Match[str]) -> str:
    value = match.group("value")
    head = match.group(0)[:match.start("value") - match.start()]
    if not looks_like_secret_key(match.group("name")):
        return head + _PARAM.sub(_param, value)      # `dsn: x://h/?password=...`: look inside
    bare = value[1:-1] if value[:1] in "\"'" and len(value) > 1 else value
    if not bare.strip() or is_reference(bare) or bare in _MASKS or bare.lower() in _YAML_WORDS:
        return match.group(0)
    return head + MARK


def _plain(text: str) -> bool:
    """No `@`, `=` or `: ` in it: no credentials can be (most strings; checked before any regex)."""
    return "@" not in text and "=" not in text and ": " not in text and ":\t" not in text


def redact_text(text: str) -> str:
    """`text` with URL userinfo and secret-looking parameters' values replaced by MARK."""
    if _plain(text):
        return text
    if "@" in text:
        text = _USERINFO.sub(_userinfo, text)
    return _PARAM.sub(_param, text)


# --- documents ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """One redacted value: where it was and what it was (never the value)."""
    path: FieldPath
    kind: str          # "credentials": inside a string; "key": the value of a secret-looking key;
    #                    "echo": the text of a "key" secret, repeated elsewhere


def is_redactable(value: Any) -> bool:
    """A value that would be a secret under a secret-looking key (not empty, not a reference)."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) \
        and str(value).strip() != "" and not is_reference(str(value)) and value not in _MASKS


def redact_document(data: Any) -> tuple[Any, list[Finding]]:
    """`data` with every secret replaced (new containers only along the paths to them; `data`
    itself is never changed), and where they were. A secret found under a secret-looking key is
    also taken out wherever else the same text appears (a YAML anchor's other uses, a note)."""
    findings: list[Finding] = []
    out = _walk(data, (), False, findings)
    if not findings:
        return data, findings
    known = echoed_secrets(data, findings)
    return (_echoes(out, (), known, findings) if known else out), findings


def echoed_secrets(data: Any, findings: list[Finding]) -> list[str]:
    """The values found under secret-looking keys that are long enough to look for elsewhere,
    longest first."""
    known = {str(value_at(data, f.path)) for f in findings if f.kind == "key"}
    return sorted((v for v in known if len(v) >= _MIN_ECHOED), key=len, reverse=True)


# A secret this long found once is looked for everywhere else in the document; shorter ones
# (`pin: 42`) would match unrelated text.
_MIN_ECHOED = 6


def _echoes(value: Any, path: FieldPath, known: list[str], findings: list[Finding]) -> Any:
    if isinstance(value, dict):
        out = {k: _echoes(v, path + (k,), known, findings) for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out
    if isinstance(value, list):
        items = [_echoes(v, path + (i,), known, findings) for i, v in enumerate(value)]
        return value if all(a is b for a, b in zip(items, value)) else items
    if isinstance(value, (str, int, float)) and not isinstance(value, bool) and value != MARK:
        text = str(value)
        clean = text
        for secret in known:
            clean = clean.replace(secret, MARK)
        if clean != text:
            findings.append(Finding(path, "echo"))
            return clean
    return value


def redacted(data: Any) -> Any:
    return redact_document(data)[0]


def secret_values(data: Any) -> set[str]:
    """The values redact_document takes out of `data` (to check that a text no longer holds them)."""
    clean, findings = redact_document(data)
    out: set[str] = set()
    for finding in findings:
        before, after = value_at(data, finding.path), value_at(clean, finding.path)
        if finding.kind != "credentials":      # an echo's text is a "key" finding's value
            if finding.kind == "key":
                out.add(str(before))
            continue
        for pattern in (_USERINFO, _PARAM):
            for match in pattern.finditer(str(before)):
                if redact_text(match.group(0)) != match.group(0):
                    out.add(match.group(2) if pattern is _USERINFO else match.group("value").strip("\"'"))
        out.discard(str(after))
    return out


def _walk(value: Any, path: FieldPath, secret: bool, findings: list[Finding]) -> Any:
    """`value` redacted; the very same object when nothing in it is. The cold load walks every
    manifest with this, so clean data is never copied and a plain string costs a few `in` tests."""
    if isinstance(value, dict):
        name = value.get("name")
        pair = name.__class__ is str and looks_like_secret_key(name)      # {name: DB_PASSWORD, value: x}
        out = None
        for k, v in value.items():
            hidden = looks_like_secret_key(k) or (secret and k not in _DESCRIPTIVE) or (pair and k == "value")
            if v.__class__ is str and not hidden and _plain(v):
                continue
            child = _walk(v, path + (k,), hidden, findings)
            if child is not v:
                out = dict(value) if out is None else out
                out[k] = child
        return value if out is None else out
    if isinstance(value, list):
        items = None
        flag = False            # the item after `--password` in an argument list is its value
        for i, v in enumerate(value):
            after_flag, flag = flag, v.__class__ is str and _FLAG.fullmatch(v) is not None \
                and looks_like_secret_key(v.lstrip("-"))
            if v.__class__ is str and not (secret or after_flag) and _plain(v):
                continue
            child = _walk(v, path + (i,), secret or after_flag, findings)
            if child is not v:
                items = list(value) if items is None else items
                items[i] = child
        return value if items is None else items
    if secret and is_redactable(value):
        findings.append(Finding(path, "key"))
        return MARK
    if isinstance(value, str):
        clean = redact_text(value)
        if clean != value:
            findings.append(Finding(path, "credentials"))
            return clean
    return value

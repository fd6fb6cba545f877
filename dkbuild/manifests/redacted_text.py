"""A YAML file with its secrets taken out as text, every other byte kept (dk's manifest layer
carries a package's dk.yaml as written, comments and all).

A value under a secret-looking key is replaced where the parser placed it, and wherever else its
text is written; then the whole text goes through dkbuild.redaction's string rules (URL userinfo,
`password=...`, `token: ...`), which also cover comments. The result is accepted only if it parses
to exactly the redacted documents and holds none of the removed values; otherwise the caller gets
None and packs a normalized copy instead (a value written over several lines, say)."""

from __future__ import annotations

import codecs
import re

from dkbuild.manifests.yamlsource import Document, parse_documents
from dkbuild.redaction import MARK, Finding, echoed_secrets, redact_document, redact_text, secret_values

# Shorter values are too common to look for in the text (a `pin: 1` is still redacted).
_MIN_CHECKED = 4
# After a key's start: the key (plain or quoted) and its colon; then a one-line scalar.
_KEY = re.compile(r"(?:\"[^\"\n]*\"|'[^'\n]*'|[^:#\n]+?)[ \t]*:[ \t]+")
_SCALAR = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\n]|'')*'|[^\s#\[\]{},&*!|>%@`\"'][^\n#]*?(?=[ \t]+#|[ \t]*$|[ \t]*[,}\]])")


def redacted_yaml(raw: bytes, file: str) -> bytes | None:
    """`raw` without its secrets (itself when it has none), or None when text edits cannot do it."""
    bom = codecs.BOM_UTF8 if raw.startswith(codecs.BOM_UTF8) else b""
    try:
        text = raw[len(bom):].decode("utf-8")
    except UnicodeDecodeError:
        return None
    documents, problems = parse_documents(text, file)
    if problems:
        return None
    results = [redact_document(d.data) for d in documents]
    wanted = [data for data, _ in results]
    clean = redact_text(_replace_echoes(_replace_keyed_values(text, documents, results), documents, results))
    if clean == text and all(w is d.data for w, d in zip(wanted, documents)):
        return raw
    again, problems = parse_documents(clean, file)
    if problems or [d.data for d in again] != wanted:
        return None
    removed = set().union(*(secret_values(d.data) for d in documents)) if documents else set()
    if any(len(value) >= _MIN_CHECKED and value in clean for value in removed):
        return None
    return bom + clean.encode("utf-8")


Redacted = list[tuple[object, list[Finding]]]     # redact_document of each document


def _replace_keyed_values(text: str, documents: list[Document], results: Redacted) -> str:
    """The text with each value under a secret-looking key replaced in place (where it is a
    one-line scalar; anything else is left for the check to refuse)."""
    lines = text.split("\n")
    places = sorted({doc.positions[f.path] + (isinstance(f.path[-1], str),)
                     for doc, (_, found) in zip(documents, results) for f in found
                     if f.kind == "key" and f.path in doc.positions}, reverse=True)
    for line, column, keyed in places:
        if line > len(lines):
            continue
        row, start = lines[line - 1], column - 1
        if keyed:
            key = _KEY.match(row, start)
            if key is None:
                continue
            start = key.end()
        value = _SCALAR.match(row, start)
        if value is not None and value.end() > start:
            lines[line - 1] = row[:start] + MARK + row[value.end():]
    return "\n".join(lines)


def _replace_echoes(text: str, documents: list[Document], results: Redacted) -> str:
    """The other places a secret-keyed value is written (an anchor whose alias is the secret's value)."""
    for doc, (_, found) in zip(documents, results):
        for secret in echoed_secrets(doc.data, found):
            text = text.replace(secret, MARK)
    return text

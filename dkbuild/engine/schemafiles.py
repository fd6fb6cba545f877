"""dk's check of a package's `schemas/` files (sdk/validate/aggregate.go, validateSchemas): an Avro
schema names a "type", a JSON Schema has an object, a protobuf file declares `syntax` or a
`message`. dk rejects a package that fails it (E042), so dkb does too. Like dk, only the files
directly in `schemas/` are looked at, by their extension."""

from __future__ import annotations

import posixpath

from dkbuild.diagnostics import Diagnostic, error
from dkbuild.engine.target import BuildTarget

_NEEDS = {".avsc": ((b'"type"',), "an Avro schema must have a \"type\" field"),
          ".json": ((b"{",), "a JSON Schema must be a JSON object"),
          ".proto": ((b"syntax", b"message"), "a Protobuf schema must declare `syntax` or a `message`")}


def check_schema_files(target: BuildTarget) -> list[Diagnostic]:
    found = []
    for rel in sorted(target.files):
        directory, base = posixpath.split(rel)
        need = _NEEDS.get(posixpath.splitext(base)[1])
        if directory != "schemas" or need is None:
            continue
        markers, problem = need
        if not any(marker in target.read(rel) for marker in markers):
            path = posixpath.join(target.node.package, rel) if target.node.package else rel
            found.append(error("E042", path, f"{problem} (dk's lint rejects this file)", line=1, column=1,
                               hint="fix the schema, or move files that are not schemas out of schemas/"))
    return found

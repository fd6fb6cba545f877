"""Labels and target patterns (Bazel style).

  //a/b:name   one target          //a/b      the target defined by a/b/dk.yaml
  //a/b:all    every target of a/b //a/...    everything at or below a/b      //...  everything
  :name        relative to the current package; `a/b:name` and `a/...` are relative too
  -PATTERN     subtracts (in a list of patterns)
  . ./a ../b a/   a directory, as dk takes one (`dk lint ./pkg`): everything at or below it
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from enum import Enum

_SEGMENT = re.compile(r"^[A-Za-z0-9_.+@=,~-]+$")
_NAME = re.compile(r"^[A-Za-z0-9_.+@=,~-]+$")
ALL_TARGETS = ("all", "*", "all-targets")


class PatternError(ValueError):
    def __init__(self, message: str, text: str, column: int = 1, hint: str = ""):
        self.text = text
        self.column = column
        self.hint = hint
        super().__init__(message)


class Scope(str, Enum):
    TARGET = "target"           # //a:b
    DEFAULT = "default"         # //a  (the package's dk.yaml target)
    PACKAGE = "package"         # //a:all
    RECURSIVE = "recursive"     # //a/...


@dataclass(frozen=True)
class Pattern:
    package: str
    scope: Scope
    name: str = ""
    negative: bool = False

    def __str__(self) -> str:
        sign = "-" if self.negative else ""
        if self.scope is Scope.RECURSIVE:
            return f"{sign}//{self.package + '/' if self.package else ''}..."
        if self.scope is Scope.PACKAGE:
            return f"{sign}//{self.package}:all"
        if self.scope is Scope.DEFAULT:
            return f"{sign}//{self.package}"
        return f"{sign}//{self.package}:{self.name}"

    def covers_package(self, package: str) -> bool:
        """For recursive patterns: is `package` at or below this pattern's directory?"""
        return not self.package or package == self.package or package.startswith(self.package + "/")


def label(package: str, name: str) -> str:
    return f"//{package}:{name}"


def label_problem(package: str, name: str) -> str:
    """Why `//package:name` could not be parsed back (a '/' or ':' in the name, a space in a
    directory, ...), or "" when it can: what dkb prints as a label it must be able to read."""
    allowed = "only letters, digits and - _ . + @ = , ~ can be part of a label"
    if name and not _NAME.match(name):
        return f"name '{name}' has characters no label can hold ({allowed})"
    bad = [s for s in package.split("/") if s in (".", "..") or not _SEGMENT.match(s)] if package else []
    if bad:
        return f"directory '{bad[0]}' cannot be part of a label ({allowed})"
    return ""


def _clean_package(path: str, text: str, offset: int) -> str:
    if not path:
        return ""
    if path.startswith("/") or path.endswith("/"):
        raise PatternError("package path must not start or end with '/'", text, offset + 1,
                           "write //a/b, not //a/b/")
    for segment in path.split("/"):
        if segment in (".", ".."):
            raise PatternError(f"'{segment}' is not allowed in a package path", text,
                               offset + 1 + path.index(segment), "use a path from the workspace root")
        if not _SEGMENT.match(segment):
            raise PatternError(f"invalid package path segment '{segment}'", text,
                               offset + 1 + path.index(segment) if segment else offset + 1,
                               "package paths use letters, digits and - _ . + @ = , ~")
    return path


def parse_pattern(text: str, current_package: str = "") -> Pattern:
    """Parse one pattern. `current_package` resolves relative forms (the cwd's package)."""
    raw = text
    negative = text.startswith("-")
    body = text[1:] if negative else text
    offset = 1 if negative else 0
    if not body:
        raise PatternError("empty pattern", raw, 1, "write //pkg:name, //pkg, //pkg:all or //pkg/...")
    if _is_directory(body):
        return Pattern(_clean_package(_directory(body, current_package, raw), raw, offset),
                       Scope.RECURSIVE, negative=negative)
    if body.startswith("//"):
        absolute, offset = body[2:], offset + 2
    elif body.startswith(":"):
        absolute = (f"{current_package}" if current_package else "") + body
    else:
        absolute = "/".join(p for p in (current_package, body) if p)
    path, sep, name = absolute.partition(":")
    if sep and ":" in name:
        raise PatternError("a label has at most one ':'", raw, len(raw), "write //pkg:name")
    if path == "..." or path.endswith("/..."):
        if sep:
            raise PatternError("'...' cannot be combined with ':name'", raw, raw.index(":") + 1,
                               "use //pkg/... or //pkg:all")
        return Pattern(_clean_package(path[:-4].rstrip("/") if path != "..." else "", raw, offset),
                       Scope.RECURSIVE, negative=negative)
    package = _clean_package(path, raw, offset)
    if not sep:
        return Pattern(package, Scope.DEFAULT, negative=negative)
    if not name:
        raise PatternError("missing target name after ':'", raw, len(raw) + 1, "write //pkg:name")
    if name in ALL_TARGETS:
        return Pattern(package, Scope.PACKAGE, negative=negative)
    if not _NAME.match(name):
        raise PatternError(f"invalid target name '{name}'", raw, raw.rindex(":") + 2,
                           "target names use letters, digits and - _ . + @ = , ~")
    return Pattern(package, Scope.TARGET, name, negative=negative)


def _is_directory(body: str) -> bool:
    """A path written as a directory (dk's argument form) rather than a label."""
    return body in (".", "..") or body.startswith(("./", "../")) or (body.endswith("/") and not body.startswith("//"))


def _directory(body: str, current_package: str, raw: str) -> str:
    path = posixpath.normpath(posixpath.join(current_package, body))
    if path == ".":
        return ""
    if path == ".." or path.startswith("../"):
        raise PatternError(f"directory '{body}' is outside the workspace", raw, 1,
                           "run dkb inside the workspace, or pass -C DIR")
    return path

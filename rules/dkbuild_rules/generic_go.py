"""generic-go: a Go module run as a container."""

from __future__ import annotations

import re

from dkbuild.diagnostics import Diagnostic, error
from dkbuild.engine.rules import Rule
from dkbuild.engine.target import BuildTarget

_MODULE = re.compile(rb"^\s*module\s+\S+", re.M)


class GenericGo(Rule):
    name = "generic-go"
    version = "1"
    config_sections = ("registry",)
    ignored = ("bin/**", "vendor/**")

    def check(self, target: BuildTarget) -> list[Diagnostic]:
        path = f"{target.node.package}/go.mod"
        if "go.mod" not in target.files:
            return [error("E710", target.node.manifest.file, "generic-go package has no go.mod",
                          line=target.node.manifest.line, hint=f"run `go mod init <module path>` in {target.node.package}")]
        if not _MODULE.search(target.read("go.mod")):
            return [error("E711", path, "go.mod declares no module path", line=1, hint="add `module <path>` as the first line")]
        return []


RULE = GenericGo()

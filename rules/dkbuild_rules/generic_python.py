"""generic-python: a Python package run as a container."""

from __future__ import annotations

from typing import Any

from dkbuild.diagnostics import Diagnostic, error
from dkbuild.engine.rules import Rule
from dkbuild.engine.target import BuildTarget


class GenericPython(Rule):
    name = "generic-python"
    version = "1"
    config_sections = ("registry",)
    ignored = ("**/*.pyc", "**/__pycache__/**", ".venv/**", "build/**", "dist/**", "*.egg-info/**")

    def check(self, target: BuildTarget) -> list[Diagnostic]:
        found = []
        for rel in sorted(p for p in target.files if p.endswith(".py")):
            path = f"{target.node.package}/{rel}"
            try:
                compile(target.read(rel), path, "exec", dont_inherit=True)
            except SyntaxError as exc:
                found.append(error("E700", path, f"Python syntax error: {exc.msg}", line=exc.lineno or 0,
                                   column=exc.offset or 0, hint="fix the syntax; the package would fail at run time"))
        return found

    def image_request(self, target: BuildTarget) -> Any:
        """A Dockerfile builds the image; without one, a configured `base_image` gets the package
        assembled onto it in pure Python (no daemon, no Dockerfile)."""
        if "Dockerfile" in target.files:
            return super().image_request(target)
        if self.settings(target.workspace).get("base_image"):
            return self._image_request(target, None)
        return None


RULE = GenericPython()

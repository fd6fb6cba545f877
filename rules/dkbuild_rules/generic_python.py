"""generic-python: a Python package run as a container."""

from __future__ import annotations

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


RULE = GenericPython()

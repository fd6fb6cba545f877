"""dbt: a dbt project run in a dbt image."""

from __future__ import annotations

from dkbuild.diagnostics import Diagnostic, error
from dkbuild.engine.rules import Rule
from dkbuild.engine.target import BuildTarget


class Dbt(Rule):
    name = "dbt"
    version = "1"
    config_sections = ("registry",)
    # dbt's own build products and downloaded packages are outputs, never inputs.
    ignored = ("target/**", "dbt_packages/**", "logs/**")

    def check(self, target: BuildTarget) -> list[Diagnostic]:
        path = f"{target.node.package}/dbt_project.yml"
        if "dbt_project.yml" not in target.files:
            return [error("E720", target.node.manifest.file, "dbt package has no dbt_project.yml",
                          line=target.node.manifest.line, hint=f"run `dbt init` or add {path}")]
        import yaml  # rules load on every command; YAML only when a dbt package is checked

        try:
            project = yaml.safe_load(target.read("dbt_project.yml"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            return [error("E721", path, f"dbt_project.yml is not valid YAML: {getattr(exc, 'problem', exc)}",
                          line=mark.line + 1 if mark else 0, hint="fix the YAML syntax")]
        if not isinstance(project, dict) or not project.get("name"):
            return [error("E721", path, "dbt_project.yml has no 'name'", line=1, hint="add `name: <project>`")]
        return []


RULE = Dbt()

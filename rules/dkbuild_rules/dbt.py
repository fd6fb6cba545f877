"""dbt: a dbt project run in a dbt image."""

from dkbuild.engine.rules import Rule


class Dbt(Rule):
    name = "dbt"
    version = "1"
    config_sections = ("registry",)
    # dbt's own build products and downloaded packages are outputs, never inputs.
    ignored = ("target/**", "dbt_packages/**", "logs/**")


RULE = Dbt()

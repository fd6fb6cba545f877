"""cloudquery: a CloudQuery sync rendered from the package's stores and connectors."""

from dkbuild.engine.rules import Rule


class CloudQuery(Rule):
    name = "cloudquery"
    version = "1"
    config_sections = ("registry",)


RULE = CloudQuery()

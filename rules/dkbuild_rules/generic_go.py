"""generic-go: a Go module run as a container."""

from dkbuild.engine.rules import Rule


class GenericGo(Rule):
    name = "generic-go"
    version = "1"
    config_sections = ("registry",)
    ignored = ("bin/**", "vendor/**")


RULE = GenericGo()

"""generic-python: a Python package run as a container."""

from dkbuild.engine.rules import Rule


class GenericPython(Rule):
    name = "generic-python"
    version = "1"
    config_sections = ("registry",)
    ignored = ("**/*.pyc", "**/__pycache__/**", ".venv/**", "build/**", "dist/**", "*.egg-info/**")


RULE = GenericPython()

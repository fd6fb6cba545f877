"""The rule API: everything a build rule imports, built-in or a workspace's own `rules/*.py`.

    from dkbuild.rule import Rule, Target, error

    class Spark(Rule):
        name = "spark"          # the spec.runtime it builds
        version = "1"           # bump when what it produces changes (its source is keyed anyway)

        def check(self, target: Target) -> list[Diagnostic]: ...

    RULE = Spark()

A rule's key covers its name, version, its `[rules.<name>]` settings, the workspace.toml sections
it names in `config_sections`, and the digest of its own source. docs/rules.md has the whole API.
These names are stable; the modules behind them may move.
"""

from dkbuild.diagnostics import Diagnostic, error, warning
from dkbuild.engine.rules import Rule
from dkbuild.engine.target import BuildTarget as Target
from dkbuild.engine.target import ColumnView, DatasetView, SourceChanged
from dkbuild.oci.backends import ImageRequest

__all__ = ["ColumnView", "DatasetView", "Diagnostic", "ImageRequest", "Rule", "SourceChanged", "Target", "error",
           "warning"]

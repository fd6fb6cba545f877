"""Build rules: one per runtime, found through the `dkbuild.rules` entry-point group and in the
workspace's own rule directories ([rules] paths), which override built-ins of the same name."""

from __future__ import annotations

import hashlib
import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from dkbuild.diagnostics import Diagnostic, DkbError, error
from dkbuild.graph.keys import RuleIdentity
from dkbuild.graph.model import Node
from dkbuild.workspace import Workspace

if TYPE_CHECKING:
    from dkbuild.engine.target import BuildTarget
    from dkbuild.oci.backends import ImageRequest


class Rule:
    """Base class of a runtime rule. Subclasses set the class attributes; later hooks add checks and
    artifacts. Bump `version` whenever what the rule produces changes: it is part of every key."""

    name: ClassVar[str]
    version: ClassVar[str]
    # workspace.toml sections whose content changes what this rule produces.
    config_sections: ClassVar[tuple[str, ...]] = ()
    # Package files (globs, relative to the package) that are never inputs, e.g. dbt's target/.
    ignored: ClassVar[tuple[str, ...]] = ()

    def identity(self, workspace: Workspace) -> RuleIdentity:
        return RuleIdentity(self.name, self.version, self.config_sections, self.settings(workspace), self.ignored,
                            self.code_digest())

    def code_digest(self) -> str:
        """The sha256 of the code that makes this rule what it is: the source of every module that
        defines a class of its MRO (the rule's own module, the base Rule's, a built-in rule it
        extends). A workspace rule's own module is its source as loaded (from disk, or from a git
        revision for `affected`), not whatever the file holds now."""
        digests = set()
        for cls in type(self).__mro__:
            if cls is object:
                continue
            if cls.__module__.startswith(_WORKSPACE_MODULE):
                digests.add(("workspace", getattr(self, "_workspace_source_digest", cls.__module__)))
            else:
                digests.add((cls.__module__, _module_digest(cls.__module__)))
        return hashlib.sha256(repr(sorted(digests)).encode()).hexdigest()

    def settings(self, workspace: Workspace) -> dict[str, Any]:
        """This rule's own table in workspace.toml ([rules.<name>]); part of its keys."""
        table = workspace.settings.full["rules"].get(self.name) if self.name != "paths" else None
        return dict(table or {})

    # --- hooks the engine calls; override what the runtime needs --------------------------------

    def check(self, target: "BuildTarget") -> list[Diagnostic]:
        """Runtime-specific lint (e.g. Python sources compile). Pure: read only target files."""
        return []

    def extra_manifest_files(self, target: "BuildTarget") -> dict[str, bytes]:
        """Files added to the artifact's manifests layer (e.g. rendered CloudQuery specs)."""
        return {}

    def image_request(self, target: "BuildTarget") -> "ImageRequest | None":
        """A container image to build with the package, or None. Default: a Dockerfile at the
        package root is built with it."""
        return self._image_request(target, "Dockerfile") if "Dockerfile" in target.files else None

    def _image_request(self, target: "BuildTarget", dockerfile: str | None) -> "ImageRequest":
        from dkbuild.oci.backends import ImageRequest
        from dkbuild.oci.tarball import source_date_epoch

        spec = target.node.manifest.model.spec
        return ImageRequest(
            label=target.label, package_dir=target.package_dir, files=dict(target.files),
            dockerfile=dockerfile, build_args=dict(self.settings(target.workspace).get("build_args", {})),
            command=list(spec.command), env={e.name: str(e.value) for e in spec.env if e.value is not None},
            base_image=self.settings(target.workspace).get("base_image"),
            workspace_root=target.workspace.root, source_date_epoch=source_date_epoch(),
            base_plain_http=bool(self.settings(target.workspace).get("base_plain_http", False)))


@dataclass(frozen=True)
class RuleSet:
    rules: dict[str, Rule]

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The spec.runtime values these rules build: dk's four in dk's order, then the rest."""
        from dkbuild.manifests.models import RUNTIMES

        return tuple(r for r in RUNTIMES if r in self.rules) + tuple(sorted(set(self.rules) - set(RUNTIMES)))

    def rule_of(self, node: Node) -> Rule | None:
        return self.rules.get(node.manifest.runtime or "") if node.kind == "Transform" else None

    def fingerprint(self, workspace: Workspace) -> str:
        """What of the rules keys and lint results depend on: identities, and which code each runs."""
        parts = sorted((name, repr(rule.identity(workspace)), type(rule).__module__, type(rule).__qualname__)
                       for name, rule in self.rules.items())
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]

    def for_node(self, workspace: Workspace):  # type: ignore[no-untyped-def]
        """A function node -> RuleIdentity (Transforms only), as content keys need it."""
        identities = {name: rule.identity(workspace) for name, rule in self.rules.items()}

        def rule_for(node: Node) -> RuleIdentity | None:
            if node.kind != "Transform":
                return None
            return identities.get(node.manifest.runtime or "")
        return rule_for


_WORKSPACE_MODULE = "dkb_workspace_rule_"
_module_digests: dict[str, str] = {}


def _module_digest(name: str) -> str:
    """sha256 of an installed module's source file, once per process."""
    digest = _module_digests.get(name)
    if digest is None:
        path = getattr(sys.modules.get(name), "__file__", None)
        try:
            data = Path(path).read_bytes() if path else name.encode()
        except OSError:                     # no source on disk (a frozen install): its name and dkb's version
            from dkbuild import __version__
            data = f"{name} {__version__}".encode()
        digest = _module_digests[name] = hashlib.sha256(data).hexdigest()
    return digest


def load_rules(workspace: Workspace, rule_files: Iterable[tuple[str, bytes]] | None = None) -> RuleSet:
    """Built-in rules, then the workspace's own. `rule_files` gives the workspace's rule modules as
    (workspace-relative path, source) pairs, e.g. read from a git revision; default: from disk."""
    rules: dict[str, Rule] = {}
    for ep in entry_points(group="dkbuild.rules"):
        rule = ep.load()
        rules[rule.name] = rule
    for rel, source in workspace_rule_files(workspace) if rule_files is None else rule_files:
        rule = workspace_rule(rel, source, str(workspace.root / rel))
        if rule is not None:
            rules[rule.name] = rule
    return RuleSet(rules)


def workspace_rule_files(workspace: Workspace) -> Iterator[tuple[str, bytes]]:
    for directory in workspace.settings.get("rules", "paths"):
        for path in sorted((workspace.root / directory).glob("*.py")):
            rel = path.relative_to(workspace.root).as_posix()
            try:
                yield rel, path.read_bytes()
            except OSError as exc:
                raise DkbError(error("E130", rel, f"workspace rule cannot be read: {exc}",
                                     hint="fix the rule module or remove it from [rules] paths")) from None


def workspace_rule(rel: str, source: bytes, filename: str | None = None) -> Rule | None:
    """Run one workspace rule module's source in a fresh module namespace; its RULE, if any.
    `filename` (default `rel`) is the module's __file__ and names it in tracebacks."""
    module = types.ModuleType(f"{_WORKSPACE_MODULE}{PurePosixPath(rel).stem}")
    module.__file__ = filename or rel
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - the rule is workspace code
    except Exception as exc:  # a broken user rule must name itself, not crash dkb
        raise DkbError(error("E130", rel, f"workspace rule failed to import: {exc}",
                             hint="fix the rule module or remove it from [rules] paths")) from None
    rule = getattr(module, "RULE", None)
    if rule is None:
        return None
    if not isinstance(rule, Rule):
        raise DkbError(error("E130", rel, "RULE must be an instance of dkbuild.engine.rules.Rule",
                             hint="subclass dkbuild.engine.rules.Rule and set name and version"))
    rule._workspace_source_digest = hashlib.sha256(source).hexdigest()   # type: ignore[attr-defined]
    return rule

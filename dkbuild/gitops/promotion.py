"""Plan a promotion (or rollback): pre-flight checks, the new values.yaml files, and the change
(branch, commit message, pull request title/body, labels, reviewers) handed to a forge.

Pre-flight, each failure naming the package: it lints; its version is published and the tag's
digest resolves (the digest is what gets deployed, and must equal dk's --digest when given); the
previous environment already runs that version (a warning, as dk never checks it; refused unless
forced with `[environments] enforce_order`); and a version+digest already
deployed is a no-op. What dk's chart would render badly from the new values is a warning.

The change follows dk (sdk/promotion/pr.go): values.yaml at
`gitops/envs/<env>/cells/<cell>/apps/<package>/values.yaml`, branch
`promote/<package>/<env>/<cell>/<version>/<YYYYMMDD-HHMMSS>` (a rollback is a promotion of an older
version there too), the same title, commit message and labels."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dkbuild.gitops.chart import render_problems
from dkbuild.gitops.config import GitopsConfig
from dkbuild.gitops.forge import ChangeRequest
from dkbuild.gitops.history import deployments, find, previous
from dkbuild.gitops.values import deployed, read_values, update_values
from dkbuild.oci.reference import short_digest

BRANCH_TIME = "%Y%m%d-%H%M%S"            # dk's time.Now().Format("20060102-150405")


class PromotionError(Exception):
    def __init__(self, message: str, hint: str = ""):
        self.hint = hint
        super().__init__(message)


@dataclass
class Target:
    label: str
    name: str
    version: str
    registry: str                    # the chart's `registry`: host/prefix/namespace, the repository minus name
    digest: str
    path: str                        # values.yaml in the GitOps repository
    old_text: str | None
    previous_version: str
    previous_digest: str
    pii: bool
    new_text: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "package": self.name, "version": self.version, "registry": self.registry,
                "reference": self.reference, "digest": self.digest, "file": self.path,
                "previous_version": self.previous_version, "previous_digest": self.previous_digest, "pii": self.pii}

    @property
    def unchanged(self) -> bool:
        """Deployed already: same version, digest and registry (an old or hand-edited registry is rewritten)."""
        return (self.previous_version, self.previous_digest) == (self.version, self.digest) and \
            read_values(self.old_text).get("registry") == self.registry

    @property
    def reference(self) -> str:
        """What the chart makes the controller pull: `<registry>/<name>:<version>` (pinned by `digest`)."""
        return f"{self.registry}/{self.name}:{self.version}"


@dataclass
class Plan:
    kind: str                        # promote | rollback
    env: str
    cell: str
    targets: list[Target] = field(default_factory=list)
    already: list[Target] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lint_line: str = ""
    auto_merge: bool = False         # dk's --auto-merge, on top of [environments.<env>] auto_merge


# --- selection and facts about packages -------------------------------------------------------------

def deployable(loaded: Any, ids: set[str]) -> list[Any]:
    """The Transform nodes among `ids` (what dkb publishes and GitOps deploys), sorted by label."""
    return [loaded.graph.nodes[i] for i in sorted(ids) if loaded.graph.nodes[i].kind == "Transform"]


def handles_pii(graph: Any, node_id: str) -> bool:
    """Whether a transform reads or writes a dataset with PII columns (declared or derived)."""
    from dkbuild.lineage.pii import pii_columns

    pii_datasets = {dataset for dataset, _ in pii_columns(graph)}
    return any(e.dst in pii_datasets for e in graph.out_edges.get(node_id, []))


def lint_gate(loaded: Any, nodes: list[Any]) -> str:
    """Lint the packages; errors stop the promotion naming the package(s). Returns the summary line."""
    from dkbuild.api import lint_workspace
    from dkbuild.governance.render import summary_line

    report = lint_workspace(loaded, [n.id for n in nodes])
    if report.errors:
        errors = [d for d in report.diagnostics if d.is_error]
        bad = sorted({n.id for n in nodes for d in errors
                      if d.file == n.manifest.file or d.file.startswith(n.package.rstrip("/") + "/")}) \
            or [n.id for n in nodes]
        first = errors[0]
        raise PromotionError(f"{', '.join(bad)} does not lint: {len(errors)} error(s), e.g. "
                             f"{first.location()}: {first.code} {first.message}",
                             hint=f"run `dkb lint {' '.join(bad)}` and fix the errors before promoting")
    return summary_line(report.diagnostics, len(report.targets))


@dataclass
class Registry:
    """Resolves published versions to digests: `<host>/<prefix>/<namespace>/<name>:<version>`."""
    client: Any                      # RegistryClient, or EmbeddedRegistry (same calls)
    host: str
    prefix: str
    embedded: bool = False           # .dkb/registry: verifiable here, pullable by no cluster

    def repository(self, node: Any) -> str:
        from dkbuild.engine.publish import repository_for

        return repository_for(self.prefix, node.manifest.model.metadata.namespace, node.name)

    def chart_registry(self, node: Any) -> str:
        """The registry prefix the chart joins with the package name: `<host>/<prefix>/<namespace>`."""
        parent = self.repository(node).rpartition("/")[0]
        return f"{self.host}/{parent}" if parent else self.host

    def digest(self, node: Any, version: str) -> str:
        from dkbuild.oci.registry import RegistryError

        repo = self.repository(node)
        try:
            found = self.client.pull_manifest(repo, version)
        except RegistryError as exc:
            raise PromotionError(f"{node.id}: cannot resolve {self.host}/{repo}:{version}: {exc}",
                                 hint=getattr(exc, "hint", "") or "check --registry and that the registry is up"
                                 ) from None
        if found is None:
            raise PromotionError(f"{node.id}: version {version} is not published ({self.host}/{repo}:{version} "
                                 "does not exist)",
                                 hint=f"publish it first: dkb publish {node.id}")
        return found[2]

    def latest(self, node: Any) -> str | None:
        from dkbuild.governance.values import is_semver

        tags = [t for t in self.client.tags(self.repository(node)) if is_semver(t)]
        return max(tags, key=semver_key) if tags else None


def semver_key(version: str) -> tuple[Any, ...]:
    core, _, pre = version.split("+", 1)[0].partition("-")
    nums = tuple(int(p) for p in core.split("."))
    pre_key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if pre else ()
    return nums, (0 if pre else 1), pre_key


# --- planning ---------------------------------------------------------------------------------------

def _target(node: Any, version: str, digest: str, registry: Registry, config: GitopsConfig, checkout: Any,
            env: str, cell: str, graph: Any) -> Target:
    path = config.values_path(env, cell, node.name)
    old = checkout.show(path)
    cur_version, cur_digest = deployed(old)
    return Target(node.id, node.name, version, registry.chart_registry(node), digest, path, old,
                  cur_version, cur_digest, handles_pii(graph, node.id))


def _write(plan: Plan, target: Target, embedded_registry: bool = False) -> None:
    """Set the new values on the target, warn about what the chart would render badly, add it."""
    clash = next((t for t in plan.targets if t.path == target.path), None)
    if clash:
        raise PromotionError(f"{clash.label} and {target.label} would both write {target.path}",
                             hint="dk's GitOps layout has one apps/<name> directory per cell: promote them "
                                  "separately to different cells, or rename one package")
    target.new_text = update_values(target.old_text, target.version, target.registry, target.digest)
    values = read_values(target.new_text)
    if embedded_registry:
        values.pop("registry", None)    # `oci:.dkb/registry/...` names a directory, not a host: no image reference
    plan.warnings += [f"{target.label}: {p}" for p in render_problems(values, target.name)]
    plan.targets.append(target)


def _embedded_registry_warning(config: GitopsConfig, registry: Registry) -> list[str]:
    """Digests from the embedded registry deployed by a real GitOps repository: no cluster can pull them."""
    if not registry.embedded or config.embedded:
        return []
    return [f"the versions come from the embedded registry {registry.host}, which no cluster can pull from; "
            f"publish with --registry oci://HOST/PREFIX (or DK_REGISTRY, [registry] url) and promote from there"]


def _runs_in(checkout: Any, config: GitopsConfig, env: str, package: str, version: str) -> bool:
    prefix = f"{config.path.strip('/')}/envs/{env}/cells/"
    for file in checkout.ls(prefix):
        if file.endswith(f"/apps/{package}/values.yaml") and deployed(checkout.show(file))[0] == version:
            return True
    return False


def plan_promotion(loaded: Any, nodes: list[Any], config: GitopsConfig, checkout: Any, registry: Registry,
                   env: str, cell: str, version: str | None = None, force: bool = False,
                   expected_digest: str | None = None) -> Plan:
    plan = Plan("promote", env, cell, warnings=_embedded_registry_warning(config, registry))
    plan.lint_line = lint_gate(loaded, nodes)
    before = config.previous_env(env)
    for node in nodes:
        wanted = version or node.manifest.model.metadata.version or ""
        if not wanted:
            raise PromotionError(f"{node.id}: no version to promote",
                                 hint="set metadata.version in its dk.yaml or pass --version")
        digest = registry.digest(node, wanted)
        if expected_digest and expected_digest != digest:
            raise PromotionError(f"{node.id} {wanted}: the registry resolves {registry.host}/"
                                 f"{registry.repository(node)}:{wanted} to {digest}, not --digest {expected_digest}",
                                 hint="the tag was published with other content than you verified; check the "
                                      "digest, or promote the version the registry holds")
        target = _target(node, wanted, digest, registry, config, checkout, env, cell, loaded.graph)
        if target.unchanged:
            plan.already.append(target)
            continue
        if before and not _runs_in(checkout, config, before, node.name, wanted):
            message = f"{node.id} {wanted} is not running in {before} yet (promotions go {' → '.join(config.order)})"
            if config.enforce_order and not force:
                raise PromotionError(message, hint=f"promote to {before} first, or pass --force to skip it")
            plan.warnings.append(message + ("; promoted anyway with --force" if config.enforce_order else
                                            "; set [environments] enforce_order = true to refuse this"))
        _write(plan, target, registry.embedded)
    return plan


def plan_rollback(loaded: Any, node: Any, config: GitopsConfig, checkout: Any, registry: Registry,
                  env: str, cell: str, to: str | None = None) -> Plan:
    plan = Plan("rollback", env, cell, warnings=_embedded_registry_warning(config, registry))
    path = config.values_path(env, cell, node.name)
    current, _ = deployed(checkout.show(path))
    if not current and not to:
        raise PromotionError(f"{node.id} is not deployed in {env}/{cell}: nothing to roll back",
                             hint=f"check `dkb status {node.id}`")
    history = deployments(checkout, path)
    chosen = find(history, to) if to else previous(history, current)
    if chosen is None and not to:
        raise PromotionError(f"{node.id}: no earlier version in the history of {path} on {config.branch}",
                             hint="name the version with --to-version VERSION")
    version = to or chosen.version                                        # type: ignore[union-attr]
    digest = registry.digest(node, version)
    if chosen and chosen.digest and chosen.digest != digest:
        plan.warnings.append(f"{node.id} {version}: the registry now resolves to {digest}, "
                             f"not {chosen.digest} as deployed before; rolling back to the registry's digest")
    target = _target(node, version, digest, registry, config, checkout, env, cell, loaded.graph)
    if target.unchanged:
        plan.already.append(target)
        return plan
    _write(plan, target, registry.embedded)
    return plan


# --- the change -------------------------------------------------------------------------------------

def batch_hash(targets: list[Target]) -> str:
    text = "\n".join(f"{t.label}@{t.version}@{t.digest}" for t in sorted(targets, key=lambda t: t.label))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def branch_prefix(plan: Plan) -> str:
    """dk's branch without its timestamp: `promote/<package>/<env>/<cell>/<version>/`. A batch (dkb
    only) puts `batch` and a hash of its contents where dk has the package and version."""
    if len(plan.targets) == 1:
        t = plan.targets[0]
        return f"promote/{t.name}/{plan.env}/{plan.cell}/{t.version}/"
    return f"promote/batch/{plan.env}/{plan.cell}/{batch_hash(plan.targets)}/"


def new_branch(plan: Plan, now: datetime | None = None) -> str:
    return branch_prefix(plan) + (now or datetime.now()).strftime(BRANCH_TIME)


def change_for(plan: Plan, config: GitopsConfig, branch: str) -> ChangeRequest:
    env, cell, targets = plan.env, plan.cell, plan.targets
    if len(targets) == 1:
        t = targets[0]
        if plan.kind == "promote":
            title = f"Promote {t.name} to {env}/{cell}: {t.version}"
            commit = f"Promote {t.name} to {env}/{cell} at version {t.version}"
        else:
            title = f"Roll back {t.name} in {env}/{cell} to {t.version}"
            commit = f"Roll back {t.name} in {env}/{cell} to version {t.version}"
    else:
        listing = ", ".join(f"{t.name} {t.version}" for t in targets)
        if plan.kind == "promote":
            title = f"Promote {len(targets)} packages to {env}/{cell}: {listing}"
        else:
            title = f"Roll back {len(targets)} packages in {env}/{cell}: {listing}"
        commit = title + "\n\n" + "\n".join(f"- {t.name}: {t.previous_version or '(none)'} -> {t.version}"
                                            for t in targets)
    pii = any(t.pii for t in targets)
    reviewers = tuple(config.pii_reviewers) if pii else ()
    labels = ["promotion" if plan.kind == "promote" else "rollback", f"env:{env}", f"cell:{cell}",
              *(f"package:{t.name}" for t in targets)]
    settings = config.env(env)
    return ChangeRequest(branch=branch, base=config.branch, title=title, body=body_for(plan, config, reviewers),
                         commit_message=commit, files={t.path: t.new_text for t in targets},
                         labels=tuple(labels), reviewers=reviewers, auto_merge=plan.auto_merge or settings.auto_merge)


def body_for(plan: Plan, config: GitopsConfig, reviewers: tuple[str, ...]) -> str:
    heading = "Package Promotion" if plan.kind == "promote" else "Package Rollback"
    lines = [f"## {heading}", ""]
    for t in plan.targets:
        if len(plan.targets) > 1:
            lines += [f"### {t.name}", ""]
        lines += [f"**Package:** {t.name} (`{t.label}`)  ", f"**Version:** {t.version}  ",
                  f"**Environment:** {plan.env}  ", f"**Cell:** {plan.cell}  ",
                  f"**Previous Version:** {t.previous_version or '(none)'}  ",
                  f"**Digest:** `{t.digest}`  ", f"**Registry:** `{t.registry}`  ",
                  f"**Image:** `{t.reference}@{t.digest}`", "",
                  "Changes:", "", f"- `{t.path}`" + (" (new file)" if t.old_text is None else "")]
        if t.previous_version != t.version:
            lines.append(f"  - appVersion: {t.previous_version or '(none)'} → {t.version}")
        if t.previous_digest != t.digest:
            lines.append(f"  - digest: {short_digest(t.previous_digest) or '(none)'} → {short_digest(t.digest)}")
        lines += ["", f"**Handles PII:** {'yes' if t.pii else 'no'}", ""]
    if reviewers:
        lines += [(f"PII: this change touches a package that handles PII, so {', '.join(reviewers)} "
                   "were requested as reviewers ([policy] pii_reviewers)."), ""]
    settings = config.env(plan.env)
    approvals = f"{settings.approvals} approval(s) required in {plan.env}"
    auto = settings.auto_merge or plan.auto_merge
    lines += [f"**Approvals:** {approvals}" + ("; auto-merge when checks pass" if auto else ""), ""]
    if plan.lint_line:
        lines += [f"**Lint:** {plan.lint_line}", ""]
    if plan.warnings:
        lines += ["### ⚠ Warnings", "", *(f"- {w}" for w in plan.warnings), ""]
    lines += ["### Checklist", "", "- [x] Version verified in registry (digest resolved)",
              "- [ ] Tests passed in CI", "- [ ] Ready for deployment", "", "_Generated by dkb_", ""]
    return "\n".join(lines)

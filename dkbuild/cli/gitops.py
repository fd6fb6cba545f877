"""`dkb promote`, `dkb rollback`, `dkb status`: move published digests through environments as
changes (branches / pull requests) to the GitOps repository."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from dkbuild.cli.common import (
    PatternCommand,
    complete_labels,
    emit_json,
    fail_pattern,
    load_workspace_graph,
    service_workspace_or_fail,
)
from dkbuild.graph.labels import PatternError
from dkbuild.oci.reference import short_digest


def _die(message: str, hint: str = "", output: str = "text") -> NoReturn:
    if output == "json":
        emit_json({"status": "error", "error": message, "hint": hint})
    click.echo(f"dkb: error: {message}" + (f"\n  hint: {hint}" if hint else ""), err=True)
    sys.exit(1)


def _setup(ctx: click.Context, output: str):  # type: ignore[no-untyped-def]
    from dkbuild.gitops.config import ensure_embedded, gitops_config
    from dkbuild.gitops.forge import ForgeError

    loaded = load_workspace_graph(ctx, output)
    config = gitops_config(loaded.workspace)
    try:
        ensure_embedded(config)
    except ForgeError as exc:
        _die(str(exc), exc.hint, output)
    return loaded, config


def _registry(loaded: Any, flag: str | None, plain_http: bool, output: str):  # type: ignore[no-untyped-def]
    """The configured registry, else the embedded one (.dkb/registry) that `dkb publish` fills."""
    from dkbuild.engine.publish_target import registry_location
    from dkbuild.gitops.promotion import Registry
    from dkbuild.oci.breaker import RegistryLimits
    from dkbuild.oci.embedded import EmbeddedRegistry
    from dkbuild.oci.registry import RegistryClient
    settings = service_workspace_or_fail(loaded.workspace, output).config.registry
    try:
        location = registry_location(flag, settings.url)
    except ValueError as exc:
        _die(str(exc), "the registry holds the published versions and their digests", output)
    if location.embedded:
        return Registry(EmbeddedRegistry(loaded.workspace.root), location.host, location.prefix, embedded=True)
    client = RegistryClient(location.host, plain_http=plain_http or settings.plain_http, insecure=settings.insecure,
                            limits=RegistryLimits.of(settings.model_dump()))
    return Registry(client, location.host, location.prefix)


def _forge(config: Any, output: str = "text"):  # type: ignore[no-untyped-def]
    """The forge for the configured repository; GitHub reads GITHUB_TOKEN, as dk does."""
    from dkbuild.gitops.forge import ForgeError

    if config.forge == "github":
        from dkbuild.gitops.github import GitHubForge

        try:
            return GitHubForge(config.owner, config.repository, os.environ.get("GITHUB_TOKEN", ""), config.base_url)
        except ForgeError as exc:
            _die(f"{exc} for {config.describe()}", exc.hint + " (dkb does not run dk's browser login)", output)
    from dkbuild.gitops.gitforge import GitForge

    return GitForge(config.remote, config.branch)


def _checkout(config: Any, forge: Any):  # type: ignore[no-untyped-def]
    """The base branch to read: a temporary clone for git, the REST API for GitHub (as dk reads it)."""
    if config.forge == "github":
        from dkbuild.gitops.githubread import GitHubCheckout

        return GitHubCheckout(forge, config.branch)
    from dkbuild.gitops.gitforge import Checkout

    return Checkout(config.remote, config.branch)


def _where(config: Any) -> dict[str, Any]:
    return {"forge": config.forge, "repository": config.describe(), "embedded": config.embedded,
            "base": config.branch, **({"note": config.unconfigured_hint} if config.embedded else {})}


def _select(loaded: Any, args: tuple[str, ...], since: str | None, output: str) -> list[Any]:
    """Deployable packages named by labels, directories or dk package names (all for none)."""
    from dkbuild.diagnostics import DkbError
    from dkbuild.gitops.packages import resolve
    from dkbuild.gitops.promotion import deployable

    try:
        if since:
            from dkbuild.affected_api import affected_targets

            result = affected_targets(loaded, since, "none", list(args) or None)
            ids = {loaded.graph.aliases.get(label, label) for label in result.targets}
            ids &= set(loaded.graph.nodes)
        else:
            ids = resolve(loaded, list(args))
    except PatternError as exc:
        fail_pattern(exc, output)
    except DkbError as exc:
        _die("; ".join(d.message for d in exc.diagnostics), "", output)
    nodes = deployable(loaded, ids)
    if not nodes and not since:
        _die(f"no deployable package (Transform) in {' '.join(args) or '//...'}",
             "promote a package whose dk.yaml defines a Transform", output)
    return nodes


def _submit(plan: Any, config: Any, forge: Any, dry_run: bool, output: str) -> None:
    from dkbuild.gitops.forge import ForgeError
    from dkbuild.gitops.promotion import branch_prefix, change_for, new_branch

    noun = "Promotion" if plan.kind == "promote" else "Rollback"
    doc: dict[str, Any] = {"kind": plan.kind, "environment": plan.env, "cell": plan.cell, "gitops": _where(config),
                           "packages": [t.to_json() for t in plan.targets],
                           "already_deployed": [t.to_json() for t in plan.already], "warnings": plan.warnings}
    for t in plan.already:
        if output == "text":
            click.echo(f"✓ {t.name} {t.version} ({t.digest[:19]}) is already deployed in {plan.env}/{plan.cell} "
                       f"of {config.describe()}")
    if not plan.targets:
        doc["status"] = "already-deployed"
        if output == "json":
            emit_json(doc)
        sys.exit(0)
    try:
        # dk names each change's branch with a timestamp; a re-run reuses the open one for the same change.
        pending = forge.pending(branch_prefix(plan))
    except ForgeError as exc:
        _die(f"{exc} (nothing was changed in the GitOps repository)", exc.hint, output)
    change = change_for(plan, config, pending[0].branch if pending else new_branch(plan))
    doc.update({"branch": change.branch, "title": change.title, "commit_message": change.commit_message,
                "labels": list(change.labels), "reviewers": list(change.reviewers), "files": sorted(change.files),
                "body": change.body})
    for warning in plan.warnings:
        click.echo(f"dkb: warning: {warning}", err=True)
    if dry_run:
        doc["status"] = "dry-run"
        if output == "json":
            emit_json(doc)
        else:
            click.echo(f"[DRY RUN] Would submit {noun.lower()} change to {config.describe()}:")
            click.echo(f"  Branch: {change.branch}\n  Title:  {change.title}")
            for path in sorted(change.files):
                click.echo(f"  File:   {path}")
            for t in plan.targets:
                click.echo(f"  Image:  {t.reference}@{t.digest}")
            click.echo("No changes made.")
            if config.embedded:
                click.echo(f"Note: {config.unconfigured_hint}.")
        return
    try:
        result = forge.submit(change)
    except ForgeError as exc:
        _die(f"{exc} (nothing was changed in the GitOps repository)", exc.hint, output)
    doc.update({"status": "created" if result.created else "updated", "url": result.url, "number": result.number,
                "commit": result.commit, "warnings": plan.warnings + list(result.warnings)})
    if output == "json":
        emit_json(doc)
        return
    verb = "submitted" if result.created else "updated (same branch)"
    click.echo(f"✓ {noun} {verb}: {change.title}")
    click.echo(f"  To:     {config.describe()}")
    if result.number is not None:
        click.echo(f"  PR #{result.number}: {result.url}")
    elif "://" in result.url:
        click.echo(f"  Compare: {result.url}")
    click.echo(f"  Branch: {result.branch}")
    for t in plan.targets:
        click.echo(f"  Image:  {t.reference}@{t.digest}")
    for warning in result.warnings:
        click.echo(f"dkb: warning: {warning}", err=True)
    if config.embedded:
        click.echo(f"Note: {config.unconfigured_hint}.")
    else:
        click.echo("Next: review and merge; ArgoCD renders charts/dk-app with the new values.yaml.")


def _env_cell(config: Any, env: str, cell: str | None, output: str) -> str:
    try:
        config.check_env(env)
    except ValueError as exc:
        _die(str(exc), "", output)
    return cell or config.default_cell(env)


def _split_version(loaded: Any, args: tuple[str, ...], version: str | None) -> tuple[tuple[str, ...], str | None]:
    """dk's `promote <package> <version>`: a second argument that names no package is the version."""
    from dkbuild.gitops.packages import names_a_package
    from dkbuild.oci.reference import TAG_RE

    if len(args) != 2 or not TAG_RE.fullmatch(args[1]) or names_a_package(loaded, args[1]):
        return args, version
    if version and version != args[1]:
        raise click.UsageError(f"two versions: {args[1]} and --version {version}")
    return args[:1], args[1]


def _promote_status(ctx: click.Context, ref: str, output: str) -> None:
    """dk's `promote status <pr-number>` (a branch name for plain git)."""
    from dkbuild.gitops.forge import ForgeError

    _loaded, config = _setup(ctx, output)
    try:
        state = _forge(config, output).state(ref)
    except ForgeError as exc:
        _die(str(exc), exc.hint, output)
    if output == "json":
        emit_json({"ref": state.ref, "title": state.title, "url": state.url, "state": state.state,
                   "merged": state.state == "merged", "merged_at": state.merged_at, "gitops": _where(config)})
        return
    click.echo(f"{'PR ' if config.forge == 'github' else 'Branch '}{state.ref} Status  ({config.describe()})")
    click.echo(f"  Title:  {state.title}\n  State:  {state.state}\n  Merged: {str(state.state == 'merged').lower()}")
    if state.merged_at:
        click.echo(f"  Merged At: {state.merged_at}")
    click.echo(f"  URL:    {state.url}")


@click.command("promote", cls=PatternCommand)
@click.argument("patterns", nargs=-1, shell_complete=complete_labels)
@click.option("--to", "env", metavar="ENV", help="Target environment (see [environments] order).")
@click.option("--cell", metavar="CELL", help="Target cell (default: the environment's cell, else c0).")
@click.option("--version", "version", metavar="VERSION",
              help="Version to promote (default: metadata.version); dk's second argument.")
@click.option("--digest", metavar="SHA256", help="Refuse unless the version resolves to this digest (dk's --digest).")
@click.option("--registry", metavar="URL", help="oci://HOST[:PORT]/PREFIX (or DK_REGISTRY, DKB_REGISTRY, "
              "[registry] url; none: the embedded registry in .dkb/registry).")
@click.option("--plain-http", is_flag=True, help="Talk HTTP, not HTTPS, to the registry.")
@click.option("--affected", is_flag=True, help="Promote the packages affected since --since REF.")
@click.option("--since", metavar="REF", help="With --affected: compare with the merge base of REF and HEAD.")
@click.option("--force", is_flag=True, help="Skip the previous-environment check (warned in the change).")
@click.option("--auto-merge", is_flag=True, help="Ask for auto-merge on the change (as [environments.<env>] does).")
@click.option("--dry-run", is_flag=True, help="Check and show the change; push nothing.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def promote_command(ctx: click.Context, patterns: tuple[str, ...], env: str | None, cell: str | None,
                    version: str | None, digest: str | None, registry: str | None, plain_http: bool, affected: bool,
                    since: str | None, force: bool, auto_merge: bool, dry_run: bool, output: str) -> None:
    """Promote published package versions to ENV as one GitOps change (one branch for a batch).

    PATTERNS are labels (//pipelines/enrich), directories, or dk package names; dk's
    `promote <package> <version> --to ENV` works as written. `promote status <PR>` shows a change.

    Pre-flight: the packages lint, the version is published (its digest is what is deployed), and
    it already runs in the previous environment (else --force). Already deployed is a no-op.
    """
    from dkbuild.gitops.forge import ForgeError
    from dkbuild.gitops.promotion import PromotionError, plan_promotion

    if len(patterns) == 2 and patterns[0] == "status" and not env:
        _promote_status(ctx, patterns[1], output)
        return
    if not env:
        raise click.UsageError("--to ENV is required (e.g. dkb promote my-pipeline 1.0.0 --to dev)")
    if affected != bool(since):
        raise click.UsageError("--affected and --since REF go together")
    if not patterns and not affected:
        raise click.UsageError("name the packages to promote (e.g. my-pipeline 1.0.0, or //pipelines/enrich), "
                               "or use --affected --since REF")
    loaded, config = _setup(ctx, output)
    cell = _env_cell(config, env, cell, output)
    patterns, version = _split_version(loaded, patterns, version)
    nodes = _select(loaded, patterns, since, output)
    if not nodes:
        if output == "json":
            emit_json({"status": "nothing-affected", "packages": []})
        else:
            click.echo(f"✓ no deployable package affected since {since}")
        return
    if digest and len(nodes) != 1:
        _die(f"--digest verifies one package; {' '.join(patterns)} selects {len(nodes)}",
             "promote that package on its own", output)
    reg = _registry(loaded, registry, plain_http, output)
    forge = _forge(config, output)
    try:
        with _checkout(config, forge) as checkout:
            plan = plan_promotion(loaded, nodes, config, checkout, reg, env, cell, version, force, digest)
    except (PromotionError, ForgeError) as exc:
        _die(str(exc), exc.hint, output)
    plan.auto_merge = auto_merge
    _submit(plan, config, forge, dry_run, output)


def _rollback_target(env: str | None, env_alias: str | None, to_version: str | None) -> tuple[str, str | None]:
    """dk: --to ENV --to-version V. dkb's earlier spelling --env ENV --to V still works: with --env,
    --to is the version."""
    if env_alias:
        if env and to_version:
            raise click.UsageError("--env ENV --to VERSION is the old spelling of --to ENV --to-version VERSION; "
                                   "do not mix them")
        return env_alias, to_version or env
    if not env:
        raise click.UsageError("--to ENV is required (e.g. dkb rollback my-pipeline --to dev --to-version 1.0.0)")
    return env, to_version


@click.command("rollback")
@click.argument("package", shell_complete=complete_labels)
@click.option("--to", "env", metavar="ENV", help="Environment to roll back (dk's --to).")
@click.option("--env", "env_alias", metavar="ENV", help="Same as --to ENV; with it, --to names the version (old form).")
@click.option("--to-version", "to_version", metavar="VERSION",
              help="Version to go back to (default: the previous one deployed, from the GitOps history).")
@click.option("--cell", metavar="CELL", help="Cell (default: the environment's cell, else c0).")
@click.option("--registry", metavar="URL", help="oci://HOST[:PORT]/PREFIX (or DK_REGISTRY, DKB_REGISTRY, "
              "[registry] url; none: the embedded registry in .dkb/registry).")
@click.option("--plain-http", is_flag=True, help="Talk HTTP, not HTTPS, to the registry.")
@click.option("--dry-run", is_flag=True, help="Check and show the change; push nothing.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def rollback_command(ctx: click.Context, package: str, env: str | None, env_alias: str | None,
                     to_version: str | None, cell: str | None, registry: str | None, plain_http: bool,
                     dry_run: bool, output: str) -> None:
    """Roll PACKAGE (a label, directory or dk package name) in ENV back to --to-version, or to the
    version deployed before it (from the GitOps history)."""
    from dkbuild.gitops.forge import ForgeError
    from dkbuild.gitops.promotion import PromotionError, plan_rollback

    env, to_version = _rollback_target(env, env_alias, to_version)
    loaded, config = _setup(ctx, output)
    cell = _env_cell(config, env, cell, output)
    nodes = _select(loaded, (package,), None, output)
    if len(nodes) != 1:
        _die(f"rollback takes one package; {package} selects {len(nodes)}", "name a single package", output)
    reg = _registry(loaded, registry, plain_http, output)
    forge = _forge(config, output)
    try:
        with _checkout(config, forge) as checkout:
            plan = plan_rollback(loaded, nodes[0], config, checkout, reg, env, cell, to_version)
    except (PromotionError, ForgeError) as exc:
        _die(str(exc), exc.hint, output)
    _submit(plan, config, forge, dry_run, output)


@click.command("status", cls=PatternCommand)
@click.argument("patterns", nargs=-1, shell_complete=complete_labels)
@click.option("--all", "all_packages", is_flag=True, help="Every package in the workspace (as with no argument).")
@click.option("--cell", "cells", metavar="CELL", multiple=True, help="Only these cells (dk's --cell).")
@click.option("--scan-dir", "scan_dirs", metavar="DIR", multiple=True,
              help="Packages at or below DIR (dk's --scan-dir; repeatable).")
@click.option("--kube-context", metavar="CONTEXT",
              help="Accepted for dk; dkb reads the GitOps repository, not a cluster, so it is not used.")
@click.option("--registry", metavar="URL", help="oci://HOST[:PORT]/PREFIX, to compare with the latest published "
              "(default as for publish: the embedded registry when none is configured).")
@click.option("--plain-http", is_flag=True, help="Talk HTTP, not HTTPS, to the registry.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def status_command(ctx: click.Context, patterns: tuple[str, ...], all_packages: bool, cells: tuple[str, ...],
                   scan_dirs: tuple[str, ...], kube_context: str | None, registry: str | None, plain_http: bool,
                   output: str) -> None:
    """What runs where: package × environment → version, digest, latest?, and pending changes.

    PATTERNS are labels, directories or dk package names (default: every package)."""
    from dkbuild.gitops.forge import ForgeError
    from dkbuild.gitops.status import collect
    from dkbuild.oci.registry import RegistryError

    loaded, config = _setup(ctx, output)
    wanted = (*patterns, *scan_dirs, *(("//...",) if all_packages else ()))
    nodes = _select(loaded, wanted, None, output)
    reg = _registry(loaded, registry, plain_http, output)
    warnings: list[str] = []
    if kube_context:
        warnings.append(f"--kube-context {kube_context} is not used: dkb status reads what the GitOps repository's "
                        f"{config.branch} branch deploys, not a cluster")

    def latest_of(node: Any) -> str | None:
        try:
            return reg.latest(node)
        except RegistryError as exc:
            warnings.append(f"{node.id}: cannot list registry tags: {exc}")
            return None

    forge = _forge(config, output)
    try:
        with _checkout(config, forge) as checkout:
            rows = collect(nodes, config, checkout, latest_of, set(cells))
        pending = forge.pending("promote/") + forge.pending("rollback/")
    except ForgeError as exc:
        _die(str(exc), exc.hint, output)
    if output == "json":
        emit_json({"base": config.branch, "gitops": _where(config), "environments": list(config.order),
                   "packages": [r.to_json() for r in rows],
                   "pending": [{"branch": p.branch, "title": p.title, "url": p.url, "number": p.number}
                               for p in pending],
                   "warnings": warnings})
        return
    for w in warnings:
        click.echo(f"dkb: warning: {w}", err=True)
    click.echo(f"GitOps: {config.describe()}" + (f"\nNote: {config.unconfigured_hint}." if config.embedded else "")
               + "\n")
    header = ["PACKAGE", *config.order, "LATEST"]
    table = [header]
    for r in rows:
        cols = [r.label]
        for env in config.order:
            found = [c for c in r.cells if c.env == env]
            cols.append(", ".join(f"{c.version or '-'}@{c.cell} {short_digest(c.digest) or '(no digest)'}"
                                  + ("" if c.latest in (None, True) else " (behind)") for c in found) or "-")
        cols.append(r.latest or "?")
        table.append(cols)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    if pending:
        click.echo("\nPending changes:")
        for p in pending:
            click.echo(f"  {p.branch}  {p.title}  {p.url}")

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
)
from dkbuild.graph.labels import PatternError


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


def _registry(loaded: Any, flag: str | None, plain_http: bool, output: str, required: bool = True):  # type: ignore[no-untyped-def]
    from dkbuild.api import service_workspace
    from dkbuild.engine.publish import PublishError, registry_root
    from dkbuild.gitops.promotion import Registry
    from dkbuild.oci.reference import parse_location
    from dkbuild.oci.registry import RegistryClient
    settings = service_workspace(loaded.workspace).config.registry
    try:
        host, prefix = parse_location(registry_root(flag, settings.url))
    except (PublishError, ValueError) as exc:
        if not required:
            return None
        _die(str(exc), "the registry holds the published versions and their digests", output)
    client = RegistryClient(host, plain_http=plain_http or settings.plain_http, insecure=settings.insecure)
    return Registry(client, host, prefix)


def _forge(config: Any):  # type: ignore[no-untyped-def]
    if config.forge == "github":
        from dkbuild.gitops.github import DEFAULT_BASE_URL, GitHubForge

        return GitHubForge(config.owner or "", config.repository or "", os.environ.get("GITHUB_TOKEN", ""),
                           config.base_url or DEFAULT_BASE_URL)
    from dkbuild.gitops.gitforge import GitForge

    return GitForge(config.remote, config.branch)


def _select(loaded: Any, patterns: tuple[str, ...], since: str | None, output: str) -> list[Any]:
    from dkbuild.diagnostics import DkbError
    from dkbuild.gitops.promotion import deployable
    from dkbuild.graph.select import select

    try:
        if since:
            from dkbuild.affected_api import affected_targets

            result = affected_targets(loaded, since, "none", list(patterns) or None)
            ids = {loaded.graph.aliases.get(label, label) for label in result.targets}
            ids &= set(loaded.graph.nodes)
        else:
            ids = select(loaded.graph, list(patterns), loaded.current_package)
    except PatternError as exc:
        fail_pattern(exc, output)
    except DkbError as exc:
        _die("; ".join(d.message for d in exc.diagnostics), "", output)
    nodes = deployable(loaded, ids)
    if not nodes and not since:
        _die(f"no deployable package (Transform) in {' '.join(patterns) or '//...'}",
             "promote a package whose dk.yaml defines a Transform", output)
    return nodes


def _submit(plan: Any, config: Any, dry_run: bool, output: str) -> None:
    from dkbuild.gitops.forge import ForgeError
    from dkbuild.gitops.promotion import change_for

    noun = "Promotion" if plan.kind == "promote" else "Rollback"
    doc: dict[str, Any] = {"kind": plan.kind, "environment": plan.env, "cell": plan.cell,
                           "packages": [t.to_json() for t in plan.targets],
                           "already_deployed": [t.to_json() for t in plan.already], "warnings": plan.warnings}
    for t in plan.already:
        if output == "text":
            click.echo(f"✓ {t.name} {t.version} ({t.digest[:19]}) is already deployed in {plan.env}/{plan.cell}")
    if not plan.targets:
        doc["status"] = "already-deployed"
        if output == "json":
            emit_json(doc)
        sys.exit(0)
    change = change_for(plan, config)
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
            click.echo(f"[DRY RUN] Would submit {noun.lower()} change:")
            click.echo(f"  Branch: {change.branch}\n  Title:  {change.title}")
            for path in sorted(change.files):
                click.echo(f"  File:   {path}")
            click.echo("No changes made.")
        return
    try:
        result = _forge(config).submit(change)
    except ForgeError as exc:
        _die(f"{exc} (nothing was changed in the GitOps repository)", exc.hint, output)
    doc.update({"status": "created" if result.created else "updated", "url": result.url, "number": result.number,
                "commit": result.commit, "warnings": plan.warnings + list(result.warnings)})
    if output == "json":
        emit_json(doc)
        return
    verb = "submitted" if result.created else "updated (same branch)"
    click.echo(f"✓ {noun} {verb}: {change.title}")
    if result.number is not None:
        click.echo(f"  PR #{result.number}: {result.url}")
    elif config.forge == "git" and "://" not in result.url:
        click.echo(f"  Remote: {config.remote}")
    else:
        click.echo(f"  Compare: {result.url}")
    click.echo(f"  Branch: {result.branch}")
    for warning in result.warnings:
        click.echo(f"dkb: warning: {warning}", err=True)
    click.echo("Next: review and merge; the GitOps controller deploys the merged digest.")


def _env_cell(config: Any, env: str, cell: str | None, output: str) -> str:
    try:
        config.check_env(env)
    except ValueError as exc:
        _die(str(exc), "", output)
    return cell or config.default_cell(env)


@click.command("promote", cls=PatternCommand)
@click.argument("patterns", nargs=-1, shell_complete=complete_labels)
@click.option("--to", "env", required=True, metavar="ENV", help="Target environment (see [environments] order).")
@click.option("--cell", metavar="CELL", help="Target cell (default: the environment's cell, else c0).")
@click.option("--version", "version", metavar="VERSION", help="Version to promote (default: metadata.version).")
@click.option("--registry", metavar="URL", help="oci://HOST[:PORT]/PREFIX (or DKB_REGISTRY, [registry] url).")
@click.option("--plain-http", is_flag=True, help="Talk HTTP, not HTTPS, to the registry.")
@click.option("--affected", is_flag=True, help="Promote the packages affected since --since REF.")
@click.option("--since", metavar="REF", help="With --affected: compare with the merge base of REF and HEAD.")
@click.option("--force", is_flag=True, help="Skip the previous-environment check (warned in the change).")
@click.option("--dry-run", is_flag=True, help="Check and show the change; push nothing.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def promote_command(ctx: click.Context, patterns: tuple[str, ...], env: str, cell: str | None, version: str | None,
                    registry: str | None, plain_http: bool, affected: bool, since: str | None, force: bool,
                    dry_run: bool, output: str) -> None:
    """Promote published package versions to ENV as one GitOps change (one branch for a batch).

    Pre-flight: the packages lint, the version is published (its digest is what is deployed), and
    it already runs in the previous environment (else --force). Already deployed is a no-op.
    """
    from dkbuild.gitops.forge import ForgeError
    from dkbuild.gitops.gitforge import Checkout
    from dkbuild.gitops.promotion import PromotionError, plan_promotion

    if affected != bool(since):
        raise click.UsageError("--affected and --since REF go together")
    if not patterns and not affected:
        raise click.UsageError("name the packages to promote (e.g. //pipelines/enrich), or use --affected --since REF")
    loaded, config = _setup(ctx, output)
    cell = _env_cell(config, env, cell, output)
    nodes = _select(loaded, patterns, since, output)
    if not nodes:
        if output == "json":
            emit_json({"status": "nothing-affected", "packages": []})
        else:
            click.echo(f"✓ no deployable package affected since {since}")
        return
    reg = _registry(loaded, registry, plain_http, output)
    try:
        with Checkout(config.remote, config.branch) as checkout:
            plan = plan_promotion(loaded, nodes, config, checkout, reg, env, cell, version, force)
    except (PromotionError, ForgeError) as exc:
        _die(str(exc), exc.hint, output)
    _submit(plan, config, dry_run, output)


@click.command("rollback")
@click.argument("package", shell_complete=complete_labels)
@click.option("--env", "env", required=True, metavar="ENV", help="Environment to roll back.")
@click.option("--cell", metavar="CELL", help="Cell (default: the environment's cell, else c0).")
@click.option("--to", "to", metavar="VERSION", help="Version to go back to (default: the previous one deployed).")
@click.option("--registry", metavar="URL", help="oci://HOST[:PORT]/PREFIX (or DKB_REGISTRY, [registry] url).")
@click.option("--plain-http", is_flag=True, help="Talk HTTP, not HTTPS, to the registry.")
@click.option("--dry-run", is_flag=True, help="Check and show the change; push nothing.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def rollback_command(ctx: click.Context, package: str, env: str, cell: str | None, to: str | None,
                     registry: str | None, plain_http: bool, dry_run: bool, output: str) -> None:
    """Roll a package in ENV back to the version deployed before (from the GitOps history), or --to."""
    from dkbuild.gitops.forge import ForgeError
    from dkbuild.gitops.gitforge import Checkout
    from dkbuild.gitops.promotion import PromotionError, plan_rollback

    loaded, config = _setup(ctx, output)
    cell = _env_cell(config, env, cell, output)
    nodes = _select(loaded, (package,), None, output)
    if len(nodes) != 1:
        _die(f"rollback takes one package; {package} selects {len(nodes)}", "name a single package", output)
    reg = _registry(loaded, registry, plain_http, output)
    try:
        with Checkout(config.remote, config.branch) as checkout:
            plan = plan_rollback(loaded, nodes[0], config, checkout, reg, env, cell, to)
    except (PromotionError, ForgeError) as exc:
        _die(str(exc), exc.hint, output)
    _submit(plan, config, dry_run, output)


@click.command("status", cls=PatternCommand)
@click.argument("patterns", nargs=-1, shell_complete=complete_labels)
@click.option("--registry", metavar="URL", help="oci://HOST[:PORT]/PREFIX, to compare with the latest published.")
@click.option("--plain-http", is_flag=True, help="Talk HTTP, not HTTPS, to the registry.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def status_command(ctx: click.Context, patterns: tuple[str, ...], registry: str | None, plain_http: bool,
                   output: str) -> None:
    """What runs where: package × environment → version, digest, latest?, and pending changes."""
    from dkbuild.gitops.forge import ForgeError
    from dkbuild.gitops.gitforge import Checkout
    from dkbuild.gitops.status import collect
    from dkbuild.oci.registry import RegistryError

    loaded, config = _setup(ctx, output)
    nodes = _select(loaded, patterns, None, output)
    reg = _registry(loaded, registry, plain_http, output, required=False)
    warnings: list[str] = []

    def latest_of(node: Any) -> str | None:
        if reg is None:
            return None
        try:
            return reg.latest(node)
        except RegistryError as exc:
            warnings.append(f"{node.id}: cannot list registry tags: {exc}")
            return None

    try:
        with Checkout(config.remote, config.branch) as checkout:
            rows = collect(nodes, config, checkout, latest_of)
        pending = _forge(config).pending("promote/") + _forge(config).pending("rollback/")
    except ForgeError as exc:
        _die(str(exc), exc.hint, output)
    if output == "json":
        emit_json({"base": config.branch, "environments": list(config.order),
                   "packages": [r.to_json() for r in rows],
                   "pending": [{"branch": p.branch, "title": p.title, "url": p.url, "number": p.number}
                               for p in pending],
                   "warnings": warnings})
        return
    for w in warnings:
        click.echo(f"dkb: warning: {w}", err=True)
    header = ["PACKAGE", *config.order, "LATEST"]
    table = [header]
    for r in rows:
        cols = [r.label]
        for env in config.order:
            cells = [c for c in r.cells if c.env == env]
            cols.append(", ".join(f"{c.version or '-'}@{c.cell}" + ("" if c.latest in (None, True) else " (behind)")
                                  for c in cells) or "-")
        cols.append(r.latest or "?")
        table.append(cols)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    if pending:
        click.echo("\nPending changes:")
        for p in pending:
            click.echo(f"  {p.branch}  {p.title}  {p.url}")

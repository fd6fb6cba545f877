from __future__ import annotations

import sys
from typing import Any

import click

from dkbuild.cli.build import build_options, interrupted_build, print_summary, run_build
from dkbuild.cli.common import PatternCommand, complete_labels, emit_json, exit_interrupted
from dkbuild.engine.counts import DRY_PUBLISH_STATUSES, PUBLISH_STATUSES, count_statuses, format_counts


@click.command("publish", cls=PatternCommand)
@click.argument("patterns", nargs=-1, shell_complete=complete_labels)
@click.option("--registry", metavar="URL", help="oci://HOST[:PORT]/PREFIX or HOST/PREFIX (or DK_REGISTRY, "
              "DKB_REGISTRY, [registry] url; none: the embedded registry in .dkb/registry).")
@click.option("--tag", "-t", metavar="VERSION", help="Publish as VERSION instead of metadata.version.")
@click.option("--insecure", is_flag=True, help="Allow an insecure registry (dk's flag): no certificate checks, "
              "plain HTTP when it has no TLS.")
@click.option("--dry-run", is_flag=True, help="Build, then show what would be pushed; push nothing.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@build_options
@click.pass_context
def publish_command(ctx: click.Context, patterns: tuple[str, ...], registry: str | None, tag: str | None,
                    insecure: bool, dry_run: bool, output: str, **kw: Any) -> None:
    """Build (if needed), then push package artifacts, images, SBOMs and provenance to a registry.

    Tags are immutable: the same digest again is a no-op, another digest is a conflict (exit 1).
    """
    from dkbuild.engine.publish import Publisher, connect, source_revision
    from dkbuild.engine.publish_target import describe, registry_location
    from dkbuild.oci.embedded import EmbeddedRegistry
    from dkbuild.oci.registry import RegistryError

    outcome = run_build(ctx, list(patterns), output, tag=tag, **kw)
    if output == "text":
        print_summary(outcome.report, dry_run=False)
    if outcome.interrupted:
        exit_interrupted(f"nothing was published; {interrupted_build(outcome.report)}")
    if outcome.store is None:       # every selected target was blocked: nothing was built
        click.echo("✗ nothing was published: no selected target could be built", err=True)
        sys.exit(1)
    loaded = outcome.loaded
    from dkbuild.api import service_workspace
    settings = service_workspace(loaded.workspace).config.registry
    try:
        location = registry_location(registry, settings.url)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    published: list[Any] = []
    try:
        try:
            client = EmbeddedRegistry(loaded.workspace.root) if location.embedded else connect(
                location.host, plain_http=kw["plain_http"] or settings.plain_http,
                insecure=insecure or settings.insecure)
        except RegistryError as exc:
            click.echo(f"dkb: error: {exc}" + (f"\n  hint: {exc.hint}" if getattr(exc, "hint", "") else ""),
                       err=True)
            click.echo("✗ nothing was published", err=True)
            sys.exit(1)
        publisher = Publisher(client, location.host, location.prefix, outcome.store.layout, loaded.graph, tag,
                              dry_run, source_revision(loaded.workspace.root))
        for result in outcome.results:
            published.append(publisher.publish(result))
    except KeyboardInterrupt:
        done = format_counts(_summary(published, dry_run))
        exit_interrupted(f"published {len(published)} of {len(outcome.results)} target(s) ({done}); a tag "
                         "appears only once its manifest is complete, so publishing again pushes the rest")
    failed = [p for p in published if p.status in ("failed", "conflict", "skipped")]
    if output == "json":
        emit_json({"build": outcome.report, "registry": describe(location, loaded.workspace.root),
                   "published": [p.to_json() for p in published], "summary": _summary(published, dry_run)})
    else:
        for p in published:
            size = f"{p.size:,} B" if p.size else ""
            click.echo(f"{p.status:<10} {p.reference or p.label}  {p.digest[:19]}  {size}")
            if p.image:
                click.echo(f"{p.image['status']:<10} {p.image['reference']}  {p.image['digest'][:19]}")
            for error in p.errors:
                click.echo(f"           {error}", err=True)
        click.echo(("✗ " if failed else "✓ ") + format_counts(_summary(published, dry_run)))
        if location.embedded:
            _where_embedded(loaded.workspace.root, published, dry_run)
    sys.exit(1 if failed else 0)


def _where_embedded(root: Any, published: list[Any], dry_run: bool) -> None:
    """Where the embedded registry is, how to read it with standard tools, how to move on."""
    from dkbuild.engine.publish_target import REAL_REGISTRY_HINT, inspect_command
    from dkbuild.oci.embedded import DIRECTORY

    click.echo(f"{'Would publish' if dry_run else 'Published'} to the embedded registry {DIRECTORY}/ (one OCI "
               "image layout per repository; nothing leaves this machine).")
    example = next((p.reference for p in published if p.status in ("pushed", "unchanged")), None)
    if example:
        click.echo(f"  inspect: {inspect_command(root, example)}")
    click.echo(f"  {REAL_REGISTRY_HINT}")


def _summary(published: list[Any], dry_run: bool) -> dict[str, int]:
    return count_statuses((p.status for p in published), DRY_PUBLISH_STATUSES if dry_run else PUBLISH_STATUSES)

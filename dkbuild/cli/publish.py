from __future__ import annotations

import json
import sys
from typing import Any

import click

from dkbuild.cli.build import build_options, interrupted_build, print_summary, run_build
from dkbuild.cli.common import (
    PatternCommand,
    complete_labels,
    emit_json,
    exit_interrupted,
    service_workspace_or_fail,
)
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
    from dkbuild.engine.progress import make_progress
    from dkbuild.engine.publish import Publisher, connect, source_revision
    from dkbuild.engine.publish_target import describe, registry_location
    from dkbuild.oci.breaker import RegistryLimits
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
    settings = service_workspace_or_fail(loaded.workspace, output).config.registry
    try:
        location = registry_location(registry, settings.url)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        client = _connect_or_interrupted(lambda: EmbeddedRegistry(loaded.workspace.root) if location.embedded else connect(
            location.host, plain_http=kw["plain_http"] or settings.plain_http, insecure=insecure or settings.insecure,
            limits=RegistryLimits.of(settings.model_dump())), len(outcome.results))
    except RegistryError as exc:
        click.echo(f"dkb: error: {exc}" + (f"\n  hint: {exc.hint}" if getattr(exc, "hint", "") else ""), err=True)
        click.echo("✗ nothing was published", err=True)
        sys.exit(1)
    publisher = Publisher(client, location.host, location.prefix, outcome.store.layout, loaded.graph, tag, dry_run,
                          source_revision(loaded.workspace.root))
    progress = make_progress(len(outcome.results), output=output, what="publishing",
                             kinds=("pushed", "unchanged", "failed"))
    run = publisher.publish_all(outcome.results, progress)
    stop = _stop_message(run)
    if output == "json":
        if stop:
            click.echo(json.dumps({"stopped": stop[0], "hint": stop[1], "not_attempted": len(run.not_attempted)}),
                       err=True)
        emit_json({"build": outcome.report, "registry": describe(location, loaded.workspace.root),
                   "published": [p.to_json() for p in run.published], "not_attempted": run.not_attempted,
                   "summary": _summary(run, dry_run), **({"stopped": {"message": stop[0], "hint": stop[1]}} if stop else {})})
    else:
        for p in run.published:
            size = f"{p.size:,} B" if p.size else ""
            click.echo(f"{p.status:<10} {p.reference or p.label}  {p.digest[:19]}  {size}")
            if p.image:
                click.echo(f"{p.image['status']:<10} {p.image['reference']}  {p.image['digest'][:19]}")
            for error in p.errors:
                click.echo(f"           {error}", err=True)
        if stop and not isinstance(run.stopped, KeyboardInterrupt):
            click.echo(f"dkb: error: {stop[0]}" + (f"\n  hint: {stop[1]}" if stop[1] else ""), err=True)
        click.echo(("✗ " if run.failed or stop else "✓ ") + format_counts(_summary(run, dry_run)))
        if location.embedded:
            _where_embedded(loaded.workspace.root, run.published, dry_run)
    if isinstance(run.stopped, KeyboardInterrupt):
        exit_interrupted(f"published {len(run.published)} of {len(outcome.results)} target(s); a tag appears "
                         "only once its manifest is complete, so publishing again pushes the rest")
    sys.exit(1 if run.failed or stop else 0)


def _connect_or_interrupted(connect: Any, total: int) -> Any:
    """The registry client; Ctrl-C while reaching the registry ends like any interrupted publish."""
    try:
        return connect()
    except KeyboardInterrupt:
        exit_interrupted(f"published 0 of {total} target(s); a tag appears only once its manifest is "
                         "complete, so publishing again pushes the rest")


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


def _stop_message(run: Any) -> tuple[str, str] | None:
    """(message, hint) for a run that stopped before the end; None when it did not."""
    if run.stopped is None:
        return None
    left = len(run.not_attempted)
    rest = (f"{left} target(s) not attempted; what was pushed is complete, so `dkb publish` again finishes the "
            "job" if left else "`dkb publish` again checks and finishes what was left")
    if isinstance(run.stopped, KeyboardInterrupt):
        return f"publish interrupted: {rest}", ""
    return f"{run.stopped.message}; {rest}", run.stopped.hint


def _summary(run: Any, dry_run: bool) -> dict[str, int]:
    statuses = [p.status for p in run.published] + ["not-attempted"] * len(run.not_attempted)
    return count_statuses(statuses, DRY_PUBLISH_STATUSES if dry_run else PUBLISH_STATUSES)

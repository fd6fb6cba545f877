from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from dkbuild.cli.common import (
    PatternCommand,
    complete_labels,
    emit_json,
    ensure_loaded,
    exit_interrupted,
    fail,
    fail_pattern,
    load_workspace_graph,
    service_workspace_or_fail,
)
from dkbuild.diagnostics import DkbError
from dkbuild.engine.counts import format_counts
from dkbuild.graph.labels import PatternError


class ShardParam(click.ParamType):
    """`--shard k/N`, checked on the command line (exit 2 with the reason)."""
    name = "k/N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from dkbuild.graph.shard import Shard, ShardError

        if value is None or isinstance(value, Shard):
            return value
        try:
            return Shard.parse(str(value))
        except ShardError as exc:
            self.fail(str(exc), param, ctx)


def shard_option(what: str) -> Callable[..., Any]:
    return click.option("--shard", type=ShardParam(), metavar="k/N",
                        help=f"{what} only the k-th of N disjoint, balanced parts of the selection "
                             "(after --affected); the N parts together are the whole selection.")


def build_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `build` and `publish` (which builds first)."""
    options = [
        click.option("-j", "--jobs", type=click.IntRange(1, 256), default=os.cpu_count() or 2, show_default=True),
        click.option("-k", "--keep-going", is_flag=True, help="Build everything that can be built; report all failures."),
        click.option("--report", "report_file", type=click.Path(dir_okay=False), help="Write the JSON build report to FILE."),
        click.option("--stamp", is_flag=True, help="Record time, host and commit in artifacts (not reproducible)."),
        click.option("--image-backend", type=click.Choice(["auto", "buildx", "buildah"]), default="auto", show_default=True),
        click.option("--image-failure", type=click.Choice(["auto", "fail", "warn"]),
                     help="Whether an image that cannot be built fails the run (default: [build] image_failure, "
                          "auto: only a failed build with a builder present)."),
        click.option("--remote-cache", metavar="URL",
                     help="Shared cache: oci://host/repo, or a REAPI server grpc[s]://host:port[/instance] "
                          "(or DKB_REMOTE_CACHE, [cache] remote)."),
        click.option("--remote-cache-write", is_flag=True, help="Also write to the remote cache (trusted branches only)."),
        click.option("--remote-cache-required", is_flag=True, help="Fail instead of building locally when the remote cache is unusable."),
        click.option("--plain-http", is_flag=True, help="Talk HTTP, not HTTPS, to registries (local test registries)."),
        click.option("--remote-executor", metavar="URL", envvar="DKB_REMOTE_EXECUTOR",
                     help="Build Dockerfile images on a REAPI server's workers, grpc[s]://HOST:PORT[/INSTANCE] "
                          "(or DKB_REMOTE_EXECUTOR); -j bounds how many run at once."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command("build", cls=PatternCommand)
@click.argument("patterns", nargs=-1, shell_complete=complete_labels)
@click.option("--dry-run", is_flag=True, help="Show action keys, cache hits and what would run; build nothing.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--affected", is_flag=True, help="Build only targets whose content key changed (needs --since).")
@click.option("--since", metavar="REF", help="Git revision to compare against for --affected.")
@shard_option("Build")
@click.option("--tag", "-t", metavar="TAG", help="Tag each package <namespace>/<name>:TAG in .dkb/oci "
              "(dk's --tag; default: metadata.version, else latest).")
@build_options
@click.pass_context
def build_command(ctx: click.Context, patterns: tuple[str, ...], dry_run: bool, output: str, affected: bool,
                  since: str | None, tag: str | None, shard: Any, **kw: Any) -> None:
    """Lint, then build every selected Transform into a cached, reproducible OCI artifact.

    Exit 0 when everything built or was cached, 1 on lint errors or a failed build, 2 on bad
    input, 130 when interrupted.
    """
    if affected != bool(since):
        raise click.UsageError("--affected and --since REF go together")
    outcome = run_build(ctx, list(patterns), output, dry_run=dry_run, since=since, tag=tag, shard=shard, **kw)
    if output == "json":
        emit_json(outcome.report)
    else:
        print_summary(outcome.report, dry_run)
    if outcome.interrupted:
        exit_interrupted(interrupted_build(outcome.report))
    sys.exit(1 if outcome.failed else 0)


def run_build(ctx: click.Context, patterns: list[str], output: str, *, dry_run: bool = False, since: str | None = None,
              tag: str | None = None, shard: Any = None, jobs: int, keep_going: bool, report_file: str | None, stamp: bool,
              image_backend: str, image_failure: str | None, remote_cache: str | None, remote_cache_write: bool,
              remote_cache_required: bool, plain_http: bool, remote_executor: str | None) -> Any:
    """Load, lint and build; lint errors end the command here (exit 1)."""
    from dkbuild.api import build, recall_build
    from dkbuild.engine.build import BuildOptions
    from dkbuild.engine.progress import make_progress
    from dkbuild.engine.remote_cache import RemoteCacheLocationError, RemoteCacheRequired, RemoteCacheSettings
    from dkbuild.governance.render import render_text
    from dkbuild.oci.breaker import RegistryLimits

    loaded = load_workspace_graph(ctx, output, deferred=True)
    settings = service_workspace_or_fail(loaded.workspace, output).settings   # for the cache, not for keys
    if tag is not None:
        from dkbuild.oci.reference import TAG_RE

        if not TAG_RE.fullmatch(tag):
            raise click.BadParameter(f"{tag!r} is not an OCI tag: at most 128 of [A-Za-z0-9_.-], not starting "
                                     "with . or -", param_hint="--tag")
    options = BuildOptions(jobs=jobs, keep_going=keep_going, dry_run=dry_run, image_backend=image_backend,
                           image_failure=image_failure or loaded.workspace.settings.get("build", "image_failure"),
                           tag=tag, shard=shard, remote_executor=open_executor(remote_executor, jobs))
    try:
        remote = RemoteCacheSettings.resolve(remote_cache, remote_cache_write, remote_cache_required,
                                             plain_http or settings.get("registry", "plain_http"),
                                             settings.get("cache", "remote"),
                                             limits=RegistryLimits.of(settings.full["registry"]))
    except (RemoteCacheRequired, RemoteCacheLocationError) as exc:
        raise click.UsageError(str(exc)) from None
    progress = make_progress if not dry_run and output == "text" else None
    try:
        outcome = recall_build(loaded, patterns, options, since=since, stamp=stamp, remote=remote)
        if outcome is None:
            ensure_loaded(loaded, output)
            outcome = build(loaded, patterns, options, since=since, stamp=stamp, remote=remote, progress=progress)
    except PatternError as exc:
        fail_pattern(exc, output)
    except DkbError as exc:
        fail(exc.diagnostics, output)
    if outcome.lint.errors:
        blocked = sum(r.status == "failed" and not r.action_key for r in outcome.results)
        click.echo(render_text([d for d in outcome.lint.diagnostics if d.is_error]).rstrip(), err=True)
        click.echo(f"✗ lint found {outcome.lint.errors} error(s); {blocked} target(s) they touch were not built, "
                   f"the rest were (run `dkb lint` for details)", err=True)
    for warning in outcome.warnings:
        click.echo(f"dkb: warning: {warning}", err=True)
    if report_file:
        Path(report_file).write_text(json.dumps(outcome.report, indent=2) + "\n")
    return outcome


def open_executor(url: str | None, jobs: int) -> Any:
    """The remote executor for --remote-executor (opening it does not touch the network)."""
    if not url:
        return None
    from dkbuild.remote.reapi import EndpointError, ReapiExtraMissing
    from dkbuild.remote.reapi.execution import RemoteExecutor

    try:
        return RemoteExecutor.open(url, jobs)
    except (EndpointError, ReapiExtraMissing) as exc:
        raise click.BadParameter(str(exc), param_hint="--remote-executor") from None


def print_summary(document: dict[str, Any], dry_run: bool) -> None:
    images_failed = 0
    for t in document["targets"]:
        image = t.get("image") or {}
        if dry_run:
            click.echo(f"{t['status']:<5} {t['label']}  {t['action_key'][:16]}  would run: "
                       f"{', '.join(t['steps']) if t['status'] == 'miss' else 'nothing (cached)'}")
        elif t["status"] in ("failed", "skipped"):
            detail = t["errors"][0] if t["errors"] else t["note"]
            click.echo(f"{t['status']:<7} {t['label']}: {detail}")
        elif image.get("status") == "failed":
            click.echo(f"{t['status']:<7} {t['label']}: package artifact {t['status']}; image not built "
                       f"({image['failure']}, not blocking): {image['reason']}\n  fix: {image['fix']}")
        images_failed += image.get("status") == "failed"
    s = document["summary"]
    counts = {k: n for k, n in s.items() if k not in ("total", "images_not_built")}
    images = f", {images_failed} image(s) not built" if any(t.get("image") for t in document["targets"]) else ""
    mark = "✗" if s.get("failed") or document.get("interrupted") else "✓"
    of_shard = f" of shard {document['shard']}" if "shard" in document else ""
    click.echo(f"{mark} {s['total']} target(s){of_shard}: {format_counts(counts)}{images} "
               f"in {document['duration_s']:.2f}s")


def interrupted_build(document: dict[str, Any]) -> str:
    """What the last line of an interrupted build says: what was kept and how to finish."""
    finished = sum(t["status"] not in ("skipped", "failed") for t in document["targets"])
    not_started = sum(t["status"] == "skipped" for t in document["targets"])
    return (f"{finished} target(s) finished and are kept in the cache, {not_started} not started; "
            "run the same command again to build the rest")

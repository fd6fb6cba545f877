from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from dkbuild.cli.common import PatternCommand, emit_json, fail, fail_pattern, load_workspace_graph
from dkbuild.diagnostics import DkbError
from dkbuild.graph.labels import PatternError


@click.command("build", cls=PatternCommand)
@click.argument("patterns", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Show action keys, cache hits and what would run; build nothing.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=os.cpu_count() or 2, show_default=True)
@click.option("-k", "--keep-going", is_flag=True, help="Build everything that can be built; report all failures.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), help="Write the JSON build report to FILE.")
@click.option("--affected", is_flag=True, help="Build only targets whose content key changed (needs --since).")
@click.option("--since", metavar="REF", help="Git revision to compare against for --affected.")
@click.option("--stamp", is_flag=True, help="Record time, host and commit in artifacts (not reproducible).")
@click.option("--image-backend", type=click.Choice(["auto", "buildx", "buildah"]), default="auto", show_default=True)
@click.pass_context
def build_command(ctx: click.Context, patterns: tuple[str, ...], dry_run: bool, output: str, jobs: int,
                  keep_going: bool, report_file: str | None, affected: bool, since: str | None, stamp: bool,
                  image_backend: str) -> None:
    """Lint, then build every selected Transform into a cached, reproducible OCI artifact.

    Exit 0 when everything built or was cached, 1 on lint errors or a failed build, 2 on bad
    input, 130 when interrupted.
    """
    from dkbuild.api import compute_keys, lint_workspace
    from dkbuild.engine.build import (BuildOptions, LocalStore, execute, plan, report, run_action, stamp_info,
                                      tag_results)
    from dkbuild.engine.progress import make_progress
    from dkbuild.engine.rules import load_rules
    from dkbuild.governance.render import render_text
    from dkbuild.graph.select import select

    if affected != bool(since):
        raise click.UsageError("--affected and --since REF go together")
    started = time.monotonic()
    loaded = load_workspace_graph(ctx, output)
    try:
        selected = select(loaded.graph, list(patterns), loaded.current_package)
        if affected:
            from dkbuild.affected_api import affected_targets

            selected &= set(affected_targets(loaded, since or "", "none").labels)
        lint_report = lint_workspace(loaded, list(patterns) or ["//..."])
    except PatternError as exc:
        fail_pattern(exc, output)
    except DkbError as exc:
        fail(exc.diagnostics, output)
    if lint_report.errors:
        click.echo(render_text([d for d in lint_report.diagnostics if d.is_error]).rstrip(), err=True)
        click.echo(f"✗ lint found {lint_report.errors} error(s); nothing was built (run `dkb lint` for details)",
                   err=True)
        sys.exit(1)
    options = BuildOptions(jobs=jobs, keep_going=keep_going, dry_run=dry_run, stamp=stamp,
                           image_backend=image_backend)
    keys = compute_keys(loaded)
    rules = load_rules(loaded.workspace)
    store = LocalStore(loaded.workspace.root / loaded.workspace.config.cache.dir)
    stamp_data = stamp_info(loaded.workspace) if stamp else None
    actions = plan(loaded.workspace, loaded.graph, keys, rules, selected, options, stamp_data)

    def run(action):  # type: ignore[no-untyped-def]
        return run_action(action, store, rules, options, stamp_data, keys)

    progress = make_progress(len(actions)) if not dry_run and output == "text" else _Silent()
    results, interrupted = execute(actions, run, jobs, keep_going, progress)
    if not dry_run:
        tag_results(store, results)
    document = report(results, time.monotonic() - started, interrupted)
    if report_file:
        Path(report_file).write_text(json.dumps(document, indent=2) + "\n")
    if output == "json":
        emit_json(document)
    else:
        _print_summary(document, dry_run)
    if interrupted:
        sys.exit(130)
    sys.exit(1 if document["summary"].get("failed") else 0)


class _Silent:
    def started(self, action) -> None:  # type: ignore[no-untyped-def]
        pass

    def finished(self, result) -> None:  # type: ignore[no-untyped-def]
        pass

    def close(self) -> None:
        pass


def _print_summary(document: dict, dry_run: bool) -> None:  # type: ignore[type-arg]
    for t in document["targets"]:
        if dry_run:
            click.echo(f"{t['status']:<5} {t['label']}  {t['action_key'][:16]}  would run: "
                       f"{', '.join(t['steps']) if t['status'] == 'miss' else 'nothing (cached)'}")
        elif t["status"] in ("failed", "skipped"):
            detail = t["errors"][0] if t["errors"] else t["note"]
            click.echo(f"{t['status']:<7} {t['label']}: {detail}")
    s = document["summary"]
    parts = [f"{s[k]} {k}" for k in ("built", "cached", "hit", "miss", "failed", "skipped") if s.get(k)]
    mark = "✗" if s.get("failed") else "✓"
    click.echo(f"{mark} {s['total']} target(s): {', '.join(parts) or 'nothing to build'} "
               f"in {document['duration_s']:.2f}s")

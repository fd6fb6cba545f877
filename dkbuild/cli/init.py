"""`dkb init`: scaffold a package that passes `dkb lint --strict` and `dkb build`, or a workspace."""

from __future__ import annotations

import posixpath
import re
import sys
from pathlib import Path
from typing import NoReturn

import click

from dkbuild.manifests.models import MODES, RUNTIMES

EXIT_USAGE = 2


def _refuse(message: str, hint: str = "") -> NoReturn:
    click.echo(f"dkb: error: {message}" + (f"\n  hint: {hint}" if hint else ""), err=True)
    sys.exit(EXIT_USAGE)


def _nonempty(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


@click.command("init")
@click.argument("path", type=click.Path(file_okay=True, dir_okay=True))
@click.option("--runtime", "-r", metavar="RUNTIME",
              help=f"Package runtime: {', '.join(RUNTIMES)}.")
@click.option("--mode", "-m", default="batch", show_default=True, metavar="MODE",
              help="batch or streaming (dbt is batch only).")
@click.option("--namespace", "-n", metavar="NS", help="metadata.namespace (team namespace).")
@click.option("--name", metavar="NAME", help="Package name (default: the directory name).")
@click.option("--workspace", "new_workspace", is_flag=True,
              help="Create a new workspace at PATH (workspace.toml + .gitignore) instead of a package.")
@click.pass_context
def init_command(ctx: click.Context, path: str, runtime: str | None, mode: str, namespace: str | None,
                 name: str | None, new_workspace: bool) -> None:
    """Scaffold a package at PATH inside the current workspace, or a workspace with --workspace.

    \b
    dkb init pipelines/enrich --runtime generic-python
    dkb init pipelines/fraud-watch --runtime generic-go --mode streaming --namespace risk
    dkb init pipelines/revenue --runtime dbt
    dkb init pipelines/crm-sync --runtime cloudquery
    dkb init --workspace my-repo

    The package gets dk.yaml, runtime files, input and output DataSet contracts in dataset/, and
    the Store and Connector they need in store/ and connector/. Existing non-empty directories are
    never touched. Exit 0 on success, 2 when refused.
    """
    from dkbuild.config_model import WorkspaceConfig
    from dkbuild.diagnostics import DkbError
    from dkbuild.scaffold import (
        ScaffoldError,
        plan_package,
        plan_workspace,
        write_files,
    )
    from dkbuild.workspace import WORKSPACE_FILE, find_root, load_config

    base = Path((ctx.obj or {}).get("directory", "."))
    target = (base / path) if not Path(path).is_absolute() else Path(path)
    target = Path(posixpath.normpath(target.absolute().as_posix()))

    if new_workspace:
        if runtime or name or namespace:
            _refuse("--workspace creates a workspace, not a package",
                    "drop --runtime/--name/--namespace, then run `dkb init PATH --runtime ...` inside it")
        if target.exists() and not target.is_dir():
            _refuse(f"{path} exists and is not a directory", "choose a new directory")
        if (target / WORKSPACE_FILE).exists():
            _refuse(f"{path} already has a {WORKSPACE_FILE}", "edit it, or choose another directory")
        files = plan_workspace()
        gitignore = target / ".gitignore"
        if gitignore.exists():      # an existing repository: keep its .gitignore, add .dkb/ once
            files.pop(".gitignore")
            lines = gitignore.read_text(encoding="utf-8").splitlines()
            if not any(line.strip().rstrip("/") in (".dkb", "/.dkb") for line in lines):
                with gitignore.open("a", encoding="utf-8") as fh:
                    fh.write(("" if not lines or gitignore.read_text().endswith("\n") else "\n") + ".dkb/\n")
        target.mkdir(parents=True, exist_ok=True)
        for written in write_files(target, files):
            click.echo(f"created {Path(path) / written.name}")
        click.echo(f"workspace ready: create a package with `dkb -C {path} init pipelines/NAME --runtime generic-python`")
        return

    if not runtime:
        _refuse("missing --runtime", f"choose one of {', '.join(RUNTIMES)} (or pass --workspace to create a workspace)")
    if runtime not in RUNTIMES:
        import difflib
        close = difflib.get_close_matches(runtime, RUNTIMES, n=1)
        _refuse(f"unknown runtime '{runtime}'",
                (f"did you mean '{close[0]}'? " if close else "") + f"choose one of {', '.join(RUNTIMES)}")
    if mode not in MODES:
        _refuse(f"unknown mode '{mode}'", "choose batch or streaming")
    if target.exists() and not target.is_dir():
        _refuse(f"{path} exists and is not a directory", "choose a new directory; dkb init never overwrites")
    if _nonempty(target):
        _refuse(f"{path} already exists and is not empty",
                "dkb init never overwrites files: choose a new or empty directory")

    existing = target
    while not existing.exists():
        existing = existing.parent
    root = find_root(existing)
    if root is None:
        _refuse(f"{path} is not inside a dkb workspace (no {WORKSPACE_FILE} in it or any parent)",
                "create one first with `dkb init --workspace DIR`, or run from inside a workspace")
    try:
        config = load_config(root / WORKSPACE_FILE)
    except DkbError:    # a broken workspace.toml: scaffold with defaults; lint reports the file itself
        config = WorkspaceConfig()
    rel = target.relative_to(root).as_posix() if target != root else ""
    if not rel:
        _refuse("a package cannot be the workspace root itself", "pass a subdirectory, e.g. pipelines/NAME")
    from dkbuild.scaffold.placement import unbuildable

    why = unbuildable(root, rel, root / config.cache.dir)
    if why:
        _refuse(*why)

    package_name = name or target.name
    ws_name = config.workspace.name or root.name
    go_module = f"example.com/{re.sub(r'[^a-z0-9._-]+', '-', ws_name.lower()).strip('-') or 'workspace'}/{rel}"
    try:
        plan = plan_package(package_name, runtime, mode, namespace,
                            registry_url=config.registry.url, registry_namespace=config.registry.namespace,
                            go_module=go_module)
    except ScaffoldError as exc:
        hint = exc.hint
        if name is None and "invalid package name" in exc.message:
            hint = "the name defaults to the directory name; " + hint
        _refuse(exc.message, hint)

    from dkbuild.sources import path_selector
    selected = path_selector(config.workspace.packages, config.workspace.exclude)
    target.mkdir(parents=True, exist_ok=True)
    files = dict(sorted(plan.files.items(), key=lambda kv: (kv[0] != "dk.yaml", kv[0])))
    for written in write_files(target, files):
        click.echo(f"created {written.relative_to(root).as_posix()}")
    if not selected(f"{rel}/dk.yaml"):
        click.echo(f"dkb: warning: {rel} is outside [workspace] packages/exclude in {WORKSPACE_FILE}; "
                   "dkb will not read it until you add it there", err=True)
    click.echo(f"package //{rel} ({plan.runtime}, {plan.mode}) is ready: "
               f"`dkb lint //{rel}/...` then `dkb build //{rel}/...`")

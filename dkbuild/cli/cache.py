from __future__ import annotations

import click

from dkbuild.cli.common import emit_json, load_workspace_only


@click.group("cache")
def cache_group() -> None:
    """Inspect and clean the local store (.dkb/)."""


@cache_group.command("gc")
@click.option("--max-size", metavar="SIZE", help="Keep at most SIZE of blobs, e.g. 2G (least recently used go first).")
@click.option("--max-age", metavar="AGE", help="Evict entries unused for longer than AGE, e.g. 30d.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def gc_command(ctx: click.Context, max_size: str | None, max_age: str | None, dry_run: bool, output: str) -> None:
    """Evict cache entries (LRU) and delete blobs nothing refers to."""
    from dkbuild.engine.build import LocalStore
    from dkbuild.engine.gc import collect, parse_age, parse_size

    try:
        size = parse_size(max_size) if max_size else None
        age = parse_age(max_age) if max_age else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    workspace = load_workspace_only(ctx, output)
    store = LocalStore(workspace.root / workspace.config.cache.dir)
    result = collect(store, size, age, dry_run=dry_run)
    if output == "json":
        emit_json(result.to_json())
        return
    verb = "would evict" if dry_run else "evicted"
    click.echo(f"{verb} {result.entries_evicted} of {result.entries_before} cache entries, "
               f"{result.blobs_removed} blob(s) and {result.temp_files_removed} leftover temp file(s); "
               f"store {_human(result.bytes_before)} -> {_human(result.bytes_after)}")


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@cache_group.command("verify")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def verify_command(ctx: click.Context, output: str) -> None:
    """Re-hash every blob; remove corrupt blobs and the cache entries that need them (they rebuild)."""
    from dkbuild.engine.build import LocalStore
    from dkbuild.engine.gc import verify

    workspace = load_workspace_only(ctx, output)
    result = verify(LocalStore(workspace.root / workspace.config.cache.dir))
    if output == "json":
        emit_json(result.to_json())
    else:
        click.echo(f"checked {result.blobs_checked} blob(s): {len(result.corrupt_blobs)} corrupt, "
                   f"{result.entries_dropped} cache entr(ies) dropped")
    raise SystemExit(1 if result.corrupt_blobs else 0)

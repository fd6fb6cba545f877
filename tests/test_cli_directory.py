"""`-C DIR` works before the command name and after it, for every (sub)command the parser knows."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import click
import pytest

from dkbuild.cli.main import cli


def leaf_commands(group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            sub_ctx = command.make_context(name, [], parent=ctx, resilient_parsing=True)
            yield from leaf_commands(command, sub_ctx, (*path, name))
        else:
            yield (*path, name)


def _root() -> click.Context:
    return cli.make_context("dkb", ["-C", "base"], resilient_parsing=True)


COMMANDS = sorted(leaf_commands(cli, _root()))


def directory_after(path: tuple[str, ...], where: str) -> str:
    """Parse `dkb -C base <path> -C <where>` as the real parser does; the directory it settles on."""
    ctx = _root()
    ctx.obj = {"directory": "base"}           # what the root callback sets
    for depth, name in enumerate(path):
        command = ctx.command.get_command(ctx, name)  # type: ignore[attr-defined]
        args = ["-C", where] if depth == len(path) - 1 else []
        ctx = command.make_context(name, args, parent=ctx, resilient_parsing=True)
    return ctx.find_root().obj["directory"]


def test_the_parser_knows_many_commands() -> None:
    assert len(COMMANDS) >= 25 and ("lineage", "emit") in COMMANDS and ("cache", "gc") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_accepts_C_after_its_name(path: tuple[str, ...]) -> None:
    assert Path(directory_after(path, "sub")) == Path("base/sub")          # relative to an earlier -C, as git does
    assert directory_after(path, "/abs/ws") == "/abs/ws"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_lists_C_in_its_help(path: tuple[str, ...]) -> None:
    ctx = _root()
    for name in path:
        command = ctx.command.get_command(ctx, name)  # type: ignore[attr-defined]
        ctx = command.make_context(name, [], parent=ctx, resilient_parsing=True)
    assert any("-C" in p.opts for p in ctx.command.params), path


@pytest.mark.parametrize("args", [
    ("lint", "--output", "json"),
    ("query", "deps(//pipelines/publish)", "--output", "json"),
    ("graph", "--output", "json"),
    ("build", "--dry-run", "--output", "json"),
    ("lineage", "emit", "--transport", "console"),
    ("lineage", "//datasets/clean", "--output", "json"),
    ("config", "list"),
    ("status", "--output", "json"),
    ("cache", "verify", "--output", "json"),
])
def test_C_after_the_command_runs_in_that_directory(workspace, dkb, tmp_path: Path, args: tuple[str, ...]) -> None:
    root = workspace()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = dkb("-C", str(root), *args, cwd=elsewhere)
    after = dkb(*args, "-C", str(root), cwd=elsewhere)
    middle = dkb(*args[:1], "-C", str(root), *args[1:], cwd=elsewhere)
    assert before.code == 0, before
    assert (after.code, middle.code) == (before.code, before.code), (after, middle)
    assert _stable(after.out) == _stable(before.out) == _stable(middle.out)
    relative = dkb(*args, "-C", root.name, cwd=root.parent)
    assert relative.code == 0 and _stable(relative.out) == _stable(before.out), relative


def _stable(out: str) -> str:
    """The output without what differs from run to run (times, run ids, event times)."""
    import re

    out = re.sub(r'"(eventTime|runId|duration_s|duration)": [^,\n]+', r'"\1": _', out)
    return re.sub(r"\d+\.\d+s\b", "_s", out)

"""Every dkb command, run in this process against one workspace, with a deadline per command.

`every_command` lists the commands from the click tree itself, so a new command is run too (with
ARGS' arguments, or none). Run in-process, through `dkbuild.cli.main.main` and its last-resort
handler, it costs milliseconds per command instead of an interpreter start; `python -m
tests.hostile ROOT` runs the same as another user (the unreadable-file case) and prints JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import click

# Arguments that make each command do its real work (without a network, a daemon or a push).
# A command missing here runs with no arguments; `missing_arguments` says if that only got a usage error.
ARGS: dict[str, list[str]] = {
    "affected": ["--since", "HEAD"],
    "build": ["--dry-run"],
    "cache gc": ["--dry-run"],
    "ci init": ["github", "--output", "{out}/ci.yml"],
    "completion": ["bash"],
    "config get": ["workspace.name"],
    "config set": ["lineage.namespace", "hostile"],
    "config unset": ["lineage.url"],
    "init": ["pipelines/new-one", "--runtime", "generic-python"],
    "lineage emit": ["--transport", "file"],
    "lineage replay": ["--url", "http://127.0.0.1:9"],
    "lineage show": ["//pipelines/ingest"],
    "promote": ["//pipelines/ingest", "--to", "dev", "--dry-run", "--registry", "oci://127.0.0.1:9/x"],
    "publish": ["--dry-run", "--registry", "oci://127.0.0.1:9/x"],
    "query": ["deps(//...)"],
    "rollback": ["//pipelines/ingest", "--to", "dev", "--dry-run", "--registry", "oci://127.0.0.1:9/x"],
    "run": ["//pipelines/ingest", "--dry-run"],
    "schema": ["workspace"],
    "why": ["//pipelines/ingest"],
}
# The exit codes the README documents: ok, problems found, bad input (usage or broken workspace).
DOCUMENTED_EXITS = frozenset({0, 1, 2})
DEADLINE_S = 30


@dataclass
class Outcome:
    command: str
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def commands() -> list[str]:
    """Every leaf command of the dkb CLI, as "group command" paths."""
    from dkbuild.cli.main import cli

    found: list[str] = []

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, name
                walk(sub, [*path, name])
        else:
            found.append(" ".join(path))
    walk(cli, [])
    return found


class Deadline(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """SIGALRM: a command blocked in a syscall (a FIFO's open) is interrupted, not waited on."""
    def expire(signum: int, frame: object) -> None:
        raise Deadline(f"still running after {seconds}s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(argv: list[str], deadline: int = DEADLINE_S) -> tuple[int, str, str]:
    """`dkb ARGV` in this process: (exit code, stdout, stderr)."""
    from dkbuild.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            with _deadline(deadline):
                main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Deadline as exc:
            code, err_text = -1, f"HANG: {exc}"
            err.write(err_text)
        except BaseException as exc:  # noqa: BLE001 - reported as the test's failure, with its type
            import traceback

            code = -2
            err.write("Traceback (escaped main):\n" + traceback.format_exc() + repr(exc))
    return code, out.getvalue(), err.getvalue()


def every_command(root: Path, out: Path) -> list[Outcome]:
    """Each command run once against the workspace at `root` (`-C root`); files a command writes
    outside the workspace go under `out`."""
    results = []
    for command in commands():
        args = [a.replace("{out}", str(out)) for a in ARGS.get(command, [])]
        code, stdout, stderr = run(["-C", str(root), *command.split(), *args])
        results.append(Outcome(command, code, stdout, stderr))
    return results


def problems(outcomes: list[Outcome]) -> list[str]:
    """What is wrong with a run of every command: a traceback, an internal error, a hang, an exit
    code outside the documented set, a failure without a message, or a usage error only."""
    found = []
    for o in outcomes:
        where = f"dkb {o.command} (exit {o.code}): {o.text[-600:]!r}"
        if "Traceback" in o.text or "internal error" in o.text or "HANG" in o.text:
            found.append("crashed or hung: " + where)
        elif o.code not in DOCUMENTED_EXITS:
            found.append("undocumented exit code: " + where)
        elif o.code != 0 and not o.err.strip() and not o.out.strip():
            found.append("failed without a message: " + where)
        elif "Missing argument" in o.err:
            found.append(f"add arguments for `{o.command}` to tests/hostile.py ARGS: " + where)
    return found


if __name__ == "__main__":      # python -m tests.hostile ROOT OUT: the same, as whoever runs it
    print(json.dumps([asdict(o) for o in every_command(Path(sys.argv[1]), Path(sys.argv[2]))]))
    sys.stdout.flush()
    os._exit(0)

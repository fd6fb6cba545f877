"""What a runtime tells `dkb run`: the tools it needs locally, the steps of a local run, what runs
in its container, and what to install when neither is possible.

A runtime never starts processes itself: `dkbuild.lineage.run` runs the steps it returns, under one
deadline and inside the run's OpenLineage START … COMPLETE/FAIL.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any, Protocol

from dkbuild.lineage.storeenv import ResolvedStore


class RuntimeError_(Exception):
    """The package cannot be run this way (missing tool, unsupported store); the message says why."""


@dataclass(frozen=True)
class Step:
    """One process of a run: a build (`go build`) or the program itself. Only the last step's exit
    code is the run's; an earlier step that fails ends the run with FAIL."""
    argv: list[str]
    cwd: Path
    what: str = "the package"
    env: dict[str, str] = field(default_factory=dict)     # added for this step only (PYTHONPATH, DBT_*)


@dataclass
class RunContext:
    """Everything a runtime may look at to plan a run. `env` holds the variables dkb adds (spec.env,
    store env, -e); `work_dir` is a scratch directory under .dkb/run/ for binaries and generated
    tool config, which never holds a secret value."""
    transform_id: str
    name: str
    package_dir: Path
    workspace_root: Path
    spec: Any                                  # TransformSpec, after -f/--set
    env: dict[str, str]
    stores: tuple[ResolvedStore, ...]
    outputs: list[Any]                         # the DataSet models the transform writes
    inputs: list[Any]                          # … and reads
    work_dir: Path
    graph: Any = None
    extra_args: list[str] = field(default_factory=list)
    files: dict[Path, str] = field(default_factory=dict)     # written before the steps run
    setup: list[Callable[[], list[str]]] = field(default_factory=list)   # run before the steps; return notes
    notes: list[str] = field(default_factory=list)           # told to the user (stderr)


class Runtime(Protocol):
    name: str
    tools: tuple[str, ...]          # executables a local run needs
    install: str                    # what to install, as one sentence

    def local_steps(self, ctx: RunContext, tools: dict[str, str]) -> list[Step]: ...

    def container_command(self, ctx: RunContext) -> list[str]: ...


def find_tools(runtime: Runtime) -> tuple[dict[str, str], list[str]]:
    """(found tool -> executable, missing tool names), looked up on PATH, then beside dkb's own
    interpreter (a dbt installed in dkb's virtualenv is found without activating it)."""
    here = str(Path(sys.executable).parent)
    found = {tool: exe for tool in runtime.tools if (exe := shutil.which(tool) or shutil.which(tool, path=here))}
    return found, [tool for tool in runtime.tools if tool not in found]


def spec_command(ctx: RunContext) -> list[str]:
    return [str(part) for part in (ctx.spec.command or [])]

"""The runtimes `dkb run` knows, by `spec.runtime`. Adding one is adding a module with a class that
has `name`, `tools`, `install`, `local_steps` and `container_command` (see base.Runtime)."""

from __future__ import annotations

from dkbuild.lineage.runtimes.base import Runtime
from dkbuild.lineage.runtimes.cloudquery import CloudQueryRuntime
from dkbuild.lineage.runtimes.dbt import DbtRuntime
from dkbuild.lineage.runtimes.go import GoRuntime
from dkbuild.lineage.runtimes.python import PythonRuntime

RUNTIMES: dict[str, Runtime] = {r.name: r for r in (PythonRuntime(), GoRuntime(), DbtRuntime(), CloudQueryRuntime())}


def runtime_named(name: str) -> Runtime | None:
    return RUNTIMES.get(name)

"""generic-python: `python -m <package>` from src/ (or spec.command) with dkb's own interpreter."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dkbuild.lineage.runtimes.base import RunContext, RuntimeError_, Step, spec_command


class PythonRuntime:
    name = "generic-python"
    tools: tuple[str, ...] = ()     # dkb's own interpreter runs it
    install = "Python 3"

    def local_steps(self, ctx: RunContext, tools: dict[str, str]) -> list[Step]:
        command = spec_command(ctx) or default_command(ctx.package_dir)
        if command[0] in ("python", "python3"):
            command[0] = sys.executable      # the interpreter (and venv) dkb itself runs under
        src = str(ctx.package_dir / "src")
        pythonpath = src + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
        return [Step(command + ctx.extra_args, ctx.package_dir, env={"PYTHONPATH": pythonpath})]

    def container_command(self, ctx: RunContext) -> list[str]:
        return spec_command(ctx) + ctx.extra_args


def default_command(package_dir: Path) -> list[str]:
    """`python -m <pkg>` for the single package under src/ (`<pkg>.main` without a __main__), else
    `python main.py`."""
    src = package_dir / "src"
    packages = sorted(p for p in src.iterdir() if (p / "__init__.py").is_file() or (p / "__main__.py").is_file()) \
        if src.is_dir() else []
    if len(packages) == 1:
        pkg = packages[0]
        if (pkg / "__main__.py").is_file():
            return [sys.executable, "-m", pkg.name]
        if (pkg / "main.py").is_file():
            return [sys.executable, "-m", f"{pkg.name}.main"]
    if (package_dir / "main.py").is_file():
        return [sys.executable, "main.py"]
    found = ", ".join(p.name for p in packages) or "none"
    raise RuntimeError_(f"{package_dir}: cannot tell what to run (packages under src/: {found}); set spec.command "
                        "in dk.yaml, e.g. [python, -m, mypkg.main]")

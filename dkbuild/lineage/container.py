"""The container engine for `dkb run --container`: Docker with a reachable daemon, else Podman.

The engine is driven through its CLI as one process (so a timeout kills it like a local run) and
receives environment variables by name only (`-e NAME`): values are taken from the engine
process's environment, so no secret is ever in an argv that `ps` shows.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Engine:
    name: str            # docker | podman
    exe: str


class NoEngine(Exception):
    """Neither engine is usable; the message says what was found and what to install."""


def find_engine() -> Engine:
    reasons = []
    for name in ("docker", "podman"):
        exe = shutil.which(name)
        if exe is None:
            reasons.append(f"no `{name}` CLI on PATH")
            continue
        try:
            probe = subprocess.run([exe, "info"], capture_output=True, text=True, check=False, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"`{name} info` failed: {exc}")
            continue
        if probe.returncode == 0:
            return Engine(name, exe)
        first = next((line.strip() for line in (probe.stderr or probe.stdout).splitlines() if line.strip()), "")
        reasons.append(f"{name}: " + ("no reachable Docker daemon" if name == "docker" else "not usable")
                       + (f" ({first})" if first else ""))
    raise NoEngine("; ".join(reasons))


def run_argv(engine: Engine, image: str, name: str, env_names: list[str], mounts: dict[Path, str],
             command: list[str]) -> list[str]:
    """`<engine> run --rm --name NAME -e VAR… -v HOST:CTR:ro… IMAGE COMMAND…`."""
    argv = [engine.exe, "run", "--rm", "--name", name]
    for var in env_names:
        argv += ["-e", var]
    for host, target in mounts.items():
        argv += ["-v", f"{host}:{target}:ro"]
    return argv + [image, *command]


def stop(engine: Engine, name: str) -> None:
    """Remove a container left behind by a killed `run` client (timeout, Ctrl-C)."""
    subprocess.run([engine.exe, "rm", "-f", name], capture_output=True, check=False, timeout=60)

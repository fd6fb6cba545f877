"""Small facts from git about the working tree (HEAD, branch, remote, dirtiness), for stamping,
provenance and lineage facets. Absent git, or outside a repository, every answer is None."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_output(root: Path | str, *args: str, timeout: float = 10) -> str | None:
    """Stripped stdout of `git -C root ARGS`; None when git fails, is missing, or prints nothing."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None

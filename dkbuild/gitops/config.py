"""Where the GitOps repository is and how environments behave, from workspace.toml [gitops],
[environments] and [policy]; plus the embedded default remote (`.dkb/gitops.git`)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dkbuild.config_model import EnvironmentSettings
from dkbuild.gitops.forge import ForgeError
from dkbuild.workspace import Workspace

EMBEDDED = ".dkb/gitops.git"
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^[^/\s]+@[^:\s]+:")      # scheme://… or user@host:path


@dataclass(frozen=True)
class GitopsConfig:
    remote: str                         # a git URL or an absolute path to a (bare) repository
    branch: str                         # the base branch
    path: str                           # directory inside the repository, e.g. "gitops"
    forge: str                          # git | github
    order: tuple[str, ...]
    environments: dict[str, EnvironmentSettings]
    pii_reviewers: tuple[str, ...]
    owner: str | None = None
    repository: str | None = None
    base_url: str | None = None
    embedded: bool = False

    def env(self, name: str) -> EnvironmentSettings:
        return self.environments.get(name) or EnvironmentSettings()

    def default_cell(self, env: str) -> str:
        return self.env(env).cell

    def previous_env(self, env: str) -> str | None:
        i = self.order.index(env)
        return self.order[i - 1] if i > 0 else None

    def values_path(self, env: str, cell: str, package: str) -> str:
        return f"{self.path.strip('/')}/envs/{env}/cells/{cell}/apps/{package}/values.yaml".lstrip("/")

    def check_env(self, env: str) -> None:
        if env not in self.order:
            raise ValueError(f"unknown environment '{env}' (must be one of {', '.join(self.order)}; "
                             "see [environments] order in workspace.toml)")


def is_url(remote: str) -> bool:
    return bool(_URL.match(remote))


def gitops_config(workspace: Workspace) -> GitopsConfig:
    cfg = workspace.config
    section = cfg.gitops
    names = set(cfg.environments.order) | set(cfg.environments.__pydantic_extra__ or {})
    envs = {name: cfg.environments.settings(name) for name in names}
    remote = section.repo
    embedded = False
    if not remote and section.forge == "github" and section.owner and section.repository:
        host = "github.com"
        remote = f"https://{host}/{section.owner}/{section.repository}.git"
    if not remote:
        remote, embedded = str(workspace.root / EMBEDDED), True
    elif not is_url(remote):
        remote = str((workspace.root / remote).resolve()) if not os.path.isabs(remote) else remote
    return GitopsConfig(remote, section.branch, section.path, section.forge, tuple(cfg.environments.order), envs,
                        tuple(cfg.policy.pii_reviewers), section.owner, section.repository, section.base_url,
                        embedded)


def ensure_embedded(config: GitopsConfig) -> None:
    """Create and seed `.dkb/gitops.git` on first use: `<path>/envs/<env>/cells/<cell>/apps/.gitkeep`."""
    if not config.embedded or (Path(config.remote) / "HEAD").exists():
        return
    remote = Path(config.remote)
    remote.parent.mkdir(parents=True, exist_ok=True)
    _git(None, "init", "--quiet", "--bare", "-b", config.branch, str(remote))
    with tempfile.TemporaryDirectory(prefix="dkb-gitops-seed-") as tmp:
        _git(None, "init", "--quiet", "-b", config.branch, tmp)
        for env in config.order:
            keep = Path(tmp) / config.path / "envs" / env / "cells" / config.default_cell(env) / "apps" / ".gitkeep"
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_text("")
        _git(tmp, "add", "-A")
        _git(tmp, *identity(tmp), "commit", "--quiet", "-m", "Seed GitOps layout")
        _git(tmp, "push", "--quiet", str(remote), f"HEAD:refs/heads/{config.branch}")


def identity(cwd: str | None) -> list[str]:
    """`-c user.name/-c user.email` when git config has none: the author is then "dkb <dkb@localhost>"."""
    args = []
    for key, default in (("user.name", "dkb"), ("user.email", "dkb@localhost")):
        probe = subprocess.run(["git", *(["-C", cwd] if cwd else []), "config", "--get", key],
                               capture_output=True, text=True, check=False)
        if probe.returncode != 0 or not probe.stdout.strip():
            args += ["-c", f"{key}={default}"]
    return args


def _git(cwd: str | None, *args: str) -> str:
    proc = subprocess.run(["git", *(["-C", cwd] if cwd else []), *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise ForgeError(f"git {args[0]} failed: {proc.stderr.strip()}",
                         hint="check that git works and the workspace's .dkb directory is writable")
    return proc.stdout

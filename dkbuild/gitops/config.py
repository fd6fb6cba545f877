"""Where the GitOps repository is and how environments behave, from workspace.toml [gitops],
[environments] and [policy], and dk's GITHUB_OWNER / GITHUB_REPO / GITHUB_BASE_URL variables;
plus the embedded default remote (`.dkb/gitops.git`) when nothing names a repository."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dkbuild.config_model import EnvironmentSettings
from dkbuild.gitops.forge import ForgeError
from dkbuild.workspace import Workspace

EMBEDDED = ".dkb/gitops.git"
# dk promote's defaults when GITHUB_OWNER / GITHUB_REPO are unset (cli/cmd/promote.go).
DK_OWNER, DK_REPOSITORY = "Infoblox-CTO", "datakit"
DK_BASE_URL = "https://api.github.com"
GITHUB_VARIABLES = ("GITHUB_OWNER", "GITHUB_REPO", "GITHUB_BASE_URL")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^[^/\s]+@[^:\s]+:")      # scheme://… or user@host:path


@dataclass(frozen=True)
class GitopsConfig:
    remote: str                         # a git URL or an absolute path to a (bare) repository; "" for GitHub
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
    enforce_order: bool = False         # refuse (not just warn) a promotion that skips an environment

    def env(self, name: str) -> EnvironmentSettings:
        return self.environments.get(name) or EnvironmentSettings()

    def default_cell(self, env: str) -> str:
        return self.env(env).cell

    def previous_env(self, env: str) -> str | None:
        i = self.order.index(env)
        return self.order[i - 1] if i > 0 else None

    def values_path(self, env: str, cell: str, package: str) -> str:
        return f"{self.path.strip('/')}/envs/{env}/cells/{cell}/apps/{package}/values.yaml".lstrip("/")

    def describe(self) -> str:
        """Where promotions go, in words a user can act on."""
        if self.forge == "github":
            return f"GitHub repository {self.owner}/{self.repository} at {self.base_url} (base {self.branch})"
        if self.embedded:
            return f"the embedded local GitOps repository {self.remote} (a bare git repository; nothing deploys from it)"
        return f"git repository {self.remote} (base {self.branch})"

    @property
    def unconfigured_hint(self) -> str:
        return ("no GitOps repository is configured: set [gitops] repo in workspace.toml, or GITHUB_OWNER and "
                "GITHUB_REPO (with GITHUB_TOKEN) as for dk, to promote to yours")

    def check_env(self, env: str) -> None:
        if env not in self.order:
            raise ValueError(f"unknown environment '{env}' (must be one of {', '.join(self.order)}; "
                             "see [environments] order in workspace.toml)")


def is_url(remote: str) -> bool:
    return bool(_URL.match(remote))


def gitops_config(workspace: Workspace, environ: Mapping[str, str] | None = None) -> GitopsConfig:
    """The GitOps settings. The forge is `[gitops] forge` when set; otherwise GitHub when dk's
    GITHUB_OWNER, GITHUB_REPO or GITHUB_BASE_URL is set and no `[gitops] repo` is, else plain git.
    For GitHub those variables win over `[gitops] owner/repository/base_url`, then dk's defaults."""
    environ = os.environ if environ is None else environ
    cfg = workspace.config
    section = cfg.gitops
    names = set(cfg.environments.order) | set(cfg.environments.__pydantic_extra__ or {})
    envs = {name: cfg.environments.settings(name) for name in names}
    forge = section.forge
    if "forge" not in section.model_fields_set and not section.repo and any(environ.get(v) for v in GITHUB_VARIABLES):
        forge = "github"
    owner = repository = base_url = None
    remote, embedded = section.repo, False
    if forge == "github":
        owner = environ.get("GITHUB_OWNER") or section.owner or DK_OWNER
        repository = environ.get("GITHUB_REPO") or section.repository or DK_REPOSITORY
        base_url = (environ.get("GITHUB_BASE_URL") or section.base_url or DK_BASE_URL).rstrip("/")
        remote = ""                                     # read and written through the API, as dk does
    elif not remote:
        remote, embedded = str(workspace.root / EMBEDDED), True
    elif not is_url(remote):
        remote = str((workspace.root / remote).resolve()) if not os.path.isabs(remote) else remote
    return GitopsConfig(remote, section.branch, section.path, forge, tuple(cfg.environments.order), envs,
                        tuple(cfg.policy.pii_reviewers), owner, repository, base_url, embedded,
                        cfg.environments.enforce_order)


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

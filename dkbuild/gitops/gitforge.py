"""The plain-git forge, and read access to the GitOps remote's base branch.

Everything happens in a temporary clone; the push is the only write to the remote, so a failure
at any earlier step leaves the GitOps repository exactly as it was."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Self

from dkbuild.gitops.config import identity, is_url
from dkbuild.gitops.forge import ChangeRequest, ChangeResult, ChangeState, ForgeError, PendingChange

_ENV = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}


def _run(cwd: str | None, *args: str, check: bool = True, what: str = "") -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *(["-C", cwd] if cwd else []), *args], capture_output=True, text=True, env=_ENV,
                          check=False)
    if check and proc.returncode != 0:
        raise ForgeError(f"{what or 'git ' + args[0]} failed: {proc.stderr.strip() or proc.stdout.strip()}",
                         hint="check the git command's message above")
    return proc


class _TempDir:
    """A directory that lives as long as the `with` block (or until `close`)."""

    dir: str

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class Checkout(_TempDir):
    """A temporary clone of the GitOps remote, for reading the base branch and its history."""

    def __init__(self, remote: str, base: str):
        self.remote, self.base = remote, base
        self.dir = tempfile.mkdtemp(prefix="dkb-gitops-")
        proc = _run(None, "clone", "--quiet", "--no-checkout", remote, self.dir, check=False)
        if proc.returncode != 0:
            self.close()
            raise ForgeError(f"cannot clone the GitOps repository {remote}: {proc.stderr.strip()}",
                             hint="check [gitops] repo in workspace.toml (a bare repository path or a git URL) "
                                  "and that you can reach it")
        if _run(self.dir, "rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{base}", check=False).returncode:
            self.close()
            raise ForgeError(f"the GitOps repository {remote} has no branch '{base}'",
                             hint="create it, or set [gitops] branch in workspace.toml")

    @property
    def ref(self) -> str:
        return f"refs/remotes/origin/{self.base}"

    def show(self, path: str, rev: str | None = None) -> str | None:
        proc = _run(self.dir, "show", f"{rev or self.ref}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def ls(self, prefix: str) -> list[str]:
        """Files under `prefix` on the base branch."""
        out = _run(self.dir, "ls-tree", "-r", "--name-only", self.ref, "--", prefix).stdout
        return [line for line in out.splitlines() if line]

    def commits_touching(self, path: str) -> list[str]:
        """Commits of the base branch that changed `path`, newest first (first parent only)."""
        out = _run(self.dir, "log", "--first-parent", "--format=%H", self.ref, "--", path).stdout
        return out.split()

    def branches(self, prefix: str) -> dict[str, str]:
        out = _run(self.dir, "for-each-ref", "--format=%(refname:strip=3) %(objectname)",
                   f"refs/remotes/origin/{prefix}").stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if line and " " in line)


class GitForge:
    """Pushes a branch to the GitOps remote; reviewers look at the compare URL (or the branch)."""

    name = "git"

    def __init__(self, remote: str, base: str = "main", web_url: str | None = None):
        self.remote = remote
        self.base = base
        self.web_url = web_url

    def submit(self, change: ChangeRequest) -> ChangeResult:
        with Checkout(self.remote, change.base) as co:
            d = co.dir
            existing = co.branches(change.branch).get(change.branch)
            _run(d, "checkout", "--quiet", "-B", change.branch, co.ref)
            for path, content in change.files.items():
                target = Path(d) / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8")
                _run(d, "add", "--", path)
            if not _run(d, "diff", "--cached", "--quiet", check=False).returncode:
                raise ForgeError(f"nothing to change on {change.base}: the files already have this content",
                                 hint="the change is already on the base branch")
            _run(d, *identity(d), "commit", "--quiet", "-m", change.commit_message, what="git commit")
            commit = _run(d, "rev-parse", "HEAD").stdout.strip()
            if existing:
                same = _run(d, "diff", "--quiet", existing, "HEAD", check=False).returncode == 0
                base_sha = _run(d, "rev-parse", co.ref).stdout.strip()
                parent = _run(d, "rev-parse", f"{existing}^", check=False).stdout.strip()
                if same and parent == base_sha:
                    return ChangeResult(change.branch, self.url(change), created=False, commit=existing)
            lease = f"--force-with-lease=refs/heads/{change.branch}:{existing or ''}"
            push = _run(d, "push", "--quiet", "--porcelain", lease, "origin",
                        f"HEAD:refs/heads/{change.branch}", check=False)
            if push.returncode != 0:
                raise ForgeError(f"cannot push branch {change.branch} to {self.remote}: "
                                 f"{(push.stderr or push.stdout).strip()}",
                                 hint="someone else may have updated the branch; re-run the command, or check "
                                      "your write access to the GitOps repository")
            return ChangeResult(change.branch, self.url(change), created=existing is None, commit=commit)

    def pending(self, prefix: str) -> list[PendingChange]:
        """Branches starting with `prefix` that are not merged into the base branch."""
        out: list[PendingChange] = []
        with _Mirror(self.remote) as m:
            for branch, sha in sorted(m.heads(prefix).items()):
                if m.merged(sha, self.base):
                    continue
                out.append(PendingChange(branch, m.subject(sha), self.url_for(branch, self.base)))
        return out

    def state(self, ref: str) -> ChangeState:
        """A branch: merged when the base branch contains it, else open."""
        with _Mirror(self.remote) as m:
            sha = m.heads(ref).get(ref)
            if sha is None:
                raise ForgeError(f"no branch {ref} in {self.remote}",
                                 hint="plain git has no pull request numbers: pass the branch `dkb promote` "
                                      "printed, or list pending changes with `dkb status`")
            merged = m.merged(sha, self.base)
            return ChangeState(ref, m.subject(sha), self.url_for(ref, self.base), "merged" if merged else "open",
                               m.merged_at(sha, self.base) if merged else None)

    def url(self, change: ChangeRequest) -> str:
        return self.url_for(change.branch, change.base)

    def url_for(self, branch: str, base: str) -> str:
        web = self.web_url or _web_url(self.remote)
        if web:
            return f"{web}/compare/{base}...{branch}"
        return f"{self.remote}#{branch}"


class _Mirror(_TempDir):
    """A throwaway bare fetch of the remote's branches (for `pending`)."""

    def __init__(self, remote: str):
        self.remote = remote
        self.dir = tempfile.mkdtemp(prefix="dkb-gitops-pending-")
        _run(None, "init", "--quiet", "--bare", self.dir)
        proc = _run(self.dir, "fetch", "--quiet", remote, "+refs/heads/*:refs/heads/*", check=False)
        if proc.returncode != 0:
            self.close()
            raise ForgeError(f"cannot fetch the GitOps repository {remote}: {proc.stderr.strip()}",
                             hint="check [gitops] repo in workspace.toml and that you can reach it")

    def heads(self, prefix: str) -> dict[str, str]:
        out = _run(self.dir, "for-each-ref", "--format=%(refname:strip=2) %(objectname)",
                   f"refs/heads/{prefix}").stdout
        found = dict(line.split(" ", 1) for line in out.splitlines() if line)
        return {b: s for b, s in found.items() if b.startswith(prefix)}

    def merged(self, sha: str, base: str) -> bool:
        return _run(self.dir, "merge-base", "--is-ancestor", sha, f"refs/heads/{base}", check=False).returncode == 0

    def subject(self, sha: str) -> str:
        return _run(self.dir, "log", "-1", "--format=%s", sha).stdout.strip()

    def merged_at(self, sha: str, base: str) -> str | None:
        """When `sha` reached `base`: the date of the first commit on base's first-parent line holding it
        (the merge commit, or `sha` itself after a fast-forward)."""
        line = _run(self.dir, "rev-list", "--first-parent", f"refs/heads/{base}").stdout.split()
        if sha not in line:
            after = _run(self.dir, "rev-list", "--first-parent", "--reverse", "--ancestry-path",
                         f"{sha}..refs/heads/{base}").stdout.split()
            if not after:
                return None
            sha = after[0]
        return _run(self.dir, "log", "-1", "--format=%cI", sha).stdout.strip() or None


def _web_url(remote: str) -> str:
    """https://host/owner/repo for http(s) and scp-style remotes; "" for local paths and file://."""
    if not is_url(remote) or remote.startswith("file://"):
        return ""
    url = remote
    if "@" in url and "://" not in url:                     # git@host:owner/repo.git
        host, path = url.split("@", 1)[1].split(":", 1)
        url = f"https://{host}/{path}"
    elif url.startswith("ssh://"):
        url = "https://" + url[len("ssh://"):].split("@", 1)[-1]
    url = url.removesuffix(".git").rstrip("/")
    if "://" in url:                                        # drop credentials, never print them
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://{rest.split('@', 1)[-1]}"
    return url

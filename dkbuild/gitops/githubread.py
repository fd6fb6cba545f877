"""Read access to a GitHub GitOps repository's base branch through the REST API, as `dk promote`
does (it reads values.yaml with the Contents API): no clone, so GitHub Enterprise and
GITHUB_BASE_URL work with the token alone.

Same interface as `gitforge.Checkout` (show, ls, commits_touching), so promotion, rollback and
status do not care which forge holds the repository."""

from __future__ import annotations

from typing import Any, Self

from dkbuild.gitops.forge import ForgeError
from dkbuild.gitops.github import GitHubForge


class GitHubCheckout:
    """The base branch as of opening: every read is pinned to the commit the branch had then."""

    def __init__(self, forge: GitHubForge, base: str):
        from github import UnknownObjectException

        self.forge, self.base = forge, base
        with forge.errors():
            repo = forge.repo()
            forge.action = f"reading base branch {base}"
            try:
                self.ref = repo.get_git_ref(f"heads/{base}").object.sha
            except UnknownObjectException:
                raise ForgeError(f"the GitOps repository {forge.owner}/{forge.repository} has no branch '{base}'",
                                 hint="create it, or set [gitops] branch in workspace.toml") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def show(self, path: str, rev: str | None = None) -> str | None:
        from github import UnknownObjectException

        with self.forge.errors():
            self.forge.action = f"reading {path}"
            try:
                found: Any = self.forge.repo().get_contents(path, ref=rev or self.ref)
            except UnknownObjectException:
                return None
        if isinstance(found, list):                      # a directory
            return None
        return bytes(found.decoded_content).decode("utf-8", errors="replace")

    def ls(self, prefix: str) -> list[str]:
        """Files under `prefix` on the base branch (one recursive tree request)."""
        with self.forge.errors():
            self.forge.action = f"listing the tree of {self.base}"
            tree = self.forge.repo().get_git_tree(self.ref, recursive=True)
        if tree.raw_data.get("truncated"):
            raise ForgeError(f"GitHub truncated the tree of {self.base} (too many files to list in one request)",
                             hint="keep the GitOps repository below GitHub's recursive tree limit")
        return sorted(e.path for e in tree.tree if e.type == "blob" and e.path.startswith(prefix))

    def commits_touching(self, path: str) -> list[str]:
        """Commits reachable from the base branch that changed `path`, newest first."""
        with self.forge.errors():
            self.forge.action = f"reading the history of {path}"
            return [c.sha for c in self.forge.repo().get_commits(sha=self.ref, path=path)]

"""What a forge does for dkb: put a branch with changed files in front of reviewers.

`git` pushes the branch to the GitOps remote and prints a compare URL; `github` also opens (or
updates) a pull request with labels and reviewers. Re-running the same change updates the same
branch and pull request instead of opening a second one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ChangeRequest:
    branch: str                          # e.g. promote/enrich/dev/c0/1.2.0
    base: str                            # the GitOps base branch, e.g. main
    title: str
    body: str                            # markdown
    commit_message: str
    files: dict[str, str]                # repository path -> full new content
    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    auto_merge: bool = False


@dataclass(frozen=True)
class ChangeResult:
    branch: str
    url: str                             # the pull request, or the compare URL for plain git
    number: int | None = None            # pull request number (github)
    created: bool = True                 # False when an existing branch/PR was updated or unchanged
    commit: str = ""
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class PendingChange:
    branch: str
    title: str
    url: str
    number: int | None = None


@dataclass(frozen=True)
class ChangeState:
    """Where one change stands (dk's `promote status`): open, merged or closed."""
    ref: str                             # the pull request number, or the branch for plain git
    title: str
    url: str
    state: str                           # open | merged | closed
    merged_at: str | None = None         # ISO 8601, when known


class ForgeError(Exception):
    """A forge refused or could not be reached; `hint` says what to do. Never carries tokens."""

    def __init__(self, message: str, hint: str = ""):
        self.hint = hint
        super().__init__(message)


class Forge(Protocol):
    name: str

    def submit(self, change: ChangeRequest) -> ChangeResult: ...

    def pending(self, prefix: str) -> list[PendingChange]:
        """Open changes (PRs, or branches for plain git) whose branch starts with `prefix`."""
        ...

    def state(self, ref: str) -> ChangeState:
        """One change by pull request number (github) or branch name (git)."""
        ...

"""Deployment history of one values.yaml, from the git history of the GitOps base branch."""

from __future__ import annotations

from dataclasses import dataclass

from dkbuild.gitops.values import read_values


@dataclass(frozen=True)
class Deployment:
    commit: str
    version: str
    digest: str
    registry: str


def deployments(checkout, path: str) -> list[Deployment]:  # type: ignore[no-untyped-def]
    """Every state of `path` on the base branch, newest first (commits that removed it are skipped)."""
    found = []
    for commit in checkout.commits_touching(path):
        values = read_values(checkout.show(path, commit))
        if values.get("appVersion"):
            found.append(Deployment(commit, str(values["appVersion"]), str(values.get("digest") or ""),
                                    str(values.get("registry") or "")))
    return found


def previous(history: list[Deployment], current: str) -> Deployment | None:
    """The newest deployment of another version than `current` (what a rollback goes back to)."""
    return next((d for d in history if d.version != current), None)


def find(history: list[Deployment], version: str) -> Deployment | None:
    return next((d for d in history if d.version == version), None)

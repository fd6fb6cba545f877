"""The GitHub forge: push changed files to a branch through the REST API and open (or update) a PR.

Same REST sequence as `dk promote` (datakit contract §4.4): read the base branch ref, create the
branch ref, PUT each file's contents on the branch (with the blob sha when the file already exists
there), open a PR head=branch base=<base>, add labels. dkb adds: idempotent re-runs (an existing
branch and open PR are reused and updated, unchanged files are not re-committed), review requests,
retries with backoff on 5xx/429/rate limits, and errors that say what to fix and never carry the token.

PyGithub is imported lazily so that dkb without a GitHub forge never needs it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from dkbuild.gitops.forge import ChangeRequest, ChangeResult, ChangeState, ForgeError, PendingChange

DEFAULT_BASE_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"

AUTO_MERGE_WARNING = (
    "auto-merge was requested but not enabled: GitHub only enables auto-merge through the GraphQL "
    "API (enablePullRequestAutoMerge) and only when 'Allow auto-merge' is on in the repository "
    "settings; dkb's GitHub forge uses REST only, so enable it on the pull request by hand")


class GitHubForge:
    """`Forge` backed by GitHub (or GitHub Enterprise: base_url=https://HOST/api/v3)."""

    name = "github"

    def __init__(self, owner: str, repository: str, token: str, base_url: str = DEFAULT_BASE_URL,
                 timeout: float = 30, retries: int = 3, *, backoff: float = 0.5,
                 pace: bool = True) -> None:
        """`backoff`: urllib3 backoff factor between retries. `pace`: keep PyGithub's spacing
        between requests/writes (GitHub's secondary-rate-limit advice); tests turn it off."""
        if not owner or not repository:
            raise ForgeError("the GitHub forge needs an owner and a repository",
                             hint="set [gitops] owner and repository")
        if not token:
            raise ForgeError("no GitHub token", hint="set GITHUB_TOKEN to a token with repo scope")
        self.owner, self.repository = owner, repository
        self.base_url = base_url.rstrip("/")
        self.timeout, self.retries, self.backoff, self.pace = timeout, retries, backoff, pace
        self.__token = token
        self._gh: Any = None
        self._repo: Any = None
        self.action = ""                 # what the forge is doing, for error messages

    def __repr__(self) -> str:  # never the token
        return f"GitHubForge({self.owner}/{self.repository} at {self.base_url})"

    # ---- client --------------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._gh is None:
            try:
                from github import Auth, Github, GithubRetry
            except ImportError as e:  # pragma: no cover - dependency declared in pyproject
                raise ForgeError("the GitHub forge needs PyGithub", hint="pip install PyGithub") from e

            class _Bearer(Auth.Token):  # type: ignore[misc]
                """Bearer token plus the media type dk sends (PyGithub sets the API version)."""

                @property
                def token_type(self) -> str:
                    return "Bearer"

                def authentication(self, headers: dict) -> None:
                    super().authentication(headers)
                    headers.setdefault("Accept", MEDIA_TYPE)

            retry = GithubRetry(
                total=self.retries, backoff_factor=self.backoff,
                status_forcelist=[429, 500, 502, 503, 504],  # GithubRetry adds rate-limited 403s
                allowed_methods=frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "POST"}),
                respect_retry_after_header=True, raise_on_status=False,
                max_rate_limit_wait=120)
            extra: dict[str, Any] = {} if self.pace else {
                "seconds_between_requests": None, "seconds_between_writes": None}
            self._gh = Github(auth=_Bearer(self.__token), base_url=self.base_url,
                              timeout=self.timeout, retry=retry, api_version=API_VERSION,
                              user_agent="dkb", **extra)
        return self._gh

    def repo(self) -> Any:
        if self._repo is None:
            self.action = f"reading repository {self.owner}/{self.repository}"
            self._repo = self._client().get_repo(f"{self.owner}/{self.repository}")
        return self._repo

    # ---- Forge ---------------------------------------------------------------------------------

    def submit(self, change: ChangeRequest) -> ChangeResult:
        from github import GithubException, UnknownObjectException

        warnings: list[str] = []
        with self.errors():
            repo = self.repo()
            self.action = f"reading base branch {change.base}"
            try:
                base_sha = repo.get_git_ref(f"heads/{change.base}").object.sha
            except UnknownObjectException:
                raise ForgeError(
                    f"base branch {change.base!r} not found in {self.owner}/{self.repository}",
                    hint="check the GitOps base branch in [gitops]") from None

            self.action = f"creating branch {change.branch}"
            branch_sha = base_sha
            try:
                repo.create_git_ref(f"refs/heads/{change.branch}", base_sha)
            except GithubException as e:
                if e.status != 422 or "already exists" not in _message(e).lower():
                    raise
                branch_sha = ""  # reuse the existing branch (a re-run); its head is read if needed

            commit, files_changed = "", False
            for path, content in sorted(change.files.items()):
                data = content.encode()
                self.action = f"reading {path} on {change.branch}"
                try:
                    existing = repo.get_contents(path, ref=change.branch)
                except UnknownObjectException:
                    existing = None
                if isinstance(existing, list):
                    raise ForgeError(f"{path} is a directory on branch {change.branch}",
                                     hint="GitOps file paths must name files")
                self.action = f"writing {path} on {change.branch}"
                if existing is None:
                    result = repo.create_file(path, change.commit_message, data, branch=change.branch)
                else:
                    if _same(existing, data):
                        continue
                    result = repo.update_file(path, change.commit_message, data, existing.sha,
                                              branch=change.branch)
                commit, files_changed = result["commit"].sha, True
            if not commit:
                if not branch_sha:
                    self.action = f"reading branch {change.branch}"
                    branch_sha = repo.get_git_ref(f"heads/{change.branch}").object.sha
                commit = branch_sha

            pr, created = self._find_pull(change), False
            if pr is None:
                self.action = f"opening a pull request for {change.branch}"
                try:
                    pr = repo.create_pull(base=change.base, head=change.branch,
                                          title=change.title, body=change.body)
                    created = True
                except GithubException as e:
                    # a retried POST whose first attempt went through, or a race with another run
                    if e.status != 422 or "already exists" not in _message(e).lower():
                        raise
                    pr = self._find_pull(change)
                    if pr is None:
                        raise
            elif pr.title != change.title or (pr.body or "") != change.body:
                self.action = f"updating pull request #{pr.number}"
                pr.edit(title=change.title, body=change.body)

            have = set() if created else {lb.name for lb in pr.labels}
            labels = [lb for lb in change.labels if lb not in have]
            if labels:
                self.action = f"labelling pull request #{pr.number}"
                try:
                    pr.add_to_labels(*labels)
                except GithubException as e:  # like dk: a label failure only warns
                    warnings.append(f"could not add labels {', '.join(labels)}: {_message(e)}")

            # Review is requested when the PR is opened, and again (for those not already
            # requested) when a re-run changed its files; an identical re-run pings nobody.
            if created or files_changed:
                requested = set() if created else {u.login for u in pr.requested_reviewers}
                reviewers = [u for u in change.reviewers if u not in requested]
                if reviewers:
                    self.action = f"requesting reviews on pull request #{pr.number}"
                    try:
                        pr.create_review_request(reviewers=reviewers)
                    except GithubException as e:
                        warnings.append(
                            f"could not request review from {', '.join(reviewers)}: {_message(e)}")

            if change.auto_merge:
                warnings.append(AUTO_MERGE_WARNING)

            return ChangeResult(branch=change.branch, url=pr.html_url, number=pr.number,
                                created=created, commit=commit, warnings=tuple(warnings))

    def pending(self, prefix: str) -> list[PendingChange]:
        with self.errors():
            repo = self.repo()
            self.action = "listing open pull requests"
            return [PendingChange(branch=pr.head.ref, title=pr.title, url=pr.html_url,
                                  number=pr.number)
                    for pr in repo.get_pulls(state="open", sort="created", direction="asc")
                    if pr.head.ref.startswith(prefix)]

    def state(self, ref: str) -> ChangeState:
        from github import UnknownObjectException

        number = ref.removeprefix("#")
        if not number.isdigit():
            raise ForgeError(f"invalid PR number: {ref}", hint="pass the number of the promotion pull request")
        with self.errors():
            repo = self.repo()
            self.action = f"reading pull request #{number}"
            try:
                pr = repo.get_pull(int(number))
            except UnknownObjectException:
                raise ForgeError(f"no pull request #{number} in {self.owner}/{self.repository}",
                                 hint="check the number printed by `dkb promote`") from None
            state = "merged" if pr.merged else pr.state
            return ChangeState(f"#{pr.number}", pr.title, pr.html_url, state,
                               pr.merged_at.isoformat() if pr.merged_at else None)

    # ---- helpers -------------------------------------------------------------------------------

    def _find_pull(self, change: ChangeRequest) -> Any:
        self.action = f"looking for an open pull request from {change.branch}"
        pulls = list(self.repo().get_pulls(state="open", head=f"{self.owner}:{change.branch}",
                                                base=change.base))
        return pulls[0] if pulls else None

    def _scrub(self, text: str) -> str:
        return text.replace(self.__token, "***") if self.__token else text

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn PyGithub/requests failures into ForgeError with a hint; never leak the token."""
        import requests
        from github import (
            BadCredentialsException,
            GithubException,
            RateLimitExceededException,
            UnknownObjectException,
        )

        repo = f"{self.owner}/{self.repository}"
        try:
            yield
        except ForgeError:
            raise
        except BadCredentialsException:
            raise ForgeError(f"GitHub rejected the token (401 from {self.base_url})",
                             hint="set GITHUB_TOKEN to a token with repo scope") from None
        except RateLimitExceededException as e:
            raise ForgeError(f"GitHub rate limit exceeded while {self.action}",
                             hint=self._scrub("wait for the limit to reset and re-run (submit is "
                                              f"idempotent); {_message(e)}")) from None
        except UnknownObjectException:
            raise ForgeError(
                f"GitHub repository {repo} not found at {self.base_url} (or the token cannot see "
                f"it) while {self.action}",
                hint="check [gitops] owner/repository, and base_url for GitHub Enterprise "
                     "(https://HOST/api/v3); a token without access to a private repo also gets 404") from None
        except GithubException as e:
            msg = self._scrub(_message(e))
            if e.status == 401:
                raise ForgeError(f"GitHub rejected the token (401 from {self.base_url})",
                                 hint="set GITHUB_TOKEN to a token with repo scope") from None
            if e.status == 403:
                raise ForgeError(
                    f"GitHub refused {self.action} in {repo}: {msg}",
                    hint="the token needs write access to contents and pull requests (classic "
                         "token: repo scope), or you hit a rate limit: wait and re-run") from None
            if e.status == 422:
                raise ForgeError(f"GitHub rejected {self.action} in {repo}: {msg}",
                                 hint="check the branch, base and file paths of the change") from None
            if e.status >= 500 or e.status == 429:
                raise ForgeError(
                    f"GitHub answered {e.status} while {self.action} "
                    f"(after {self.retries} retries): {msg}",
                    hint="GitHub may be unavailable; re-run later (submit is idempotent)") from None
            raise ForgeError(f"GitHub answered {e.status} while {self.action} in {repo}: {msg}",
                             hint="") from None
        except requests.exceptions.RequestException as e:
            kind = "timed out" if isinstance(e, requests.exceptions.Timeout) else "unreachable"
            raise ForgeError(
                f"GitHub at {self.base_url} is {kind} while {self.action} "
                f"({type(e).__name__})",
                hint="check the network/proxy and [gitops] base_url") from None


def _same(existing: Any, data: bytes) -> bool:
    try:
        return bool(existing.decoded_content == data)
    except (AssertionError, ValueError):  # e.g. encoding "none" for files over 1 MB
        return False


def _message(e: Any) -> str:
    data = getattr(e, "data", None)
    if isinstance(data, dict):
        parts = [str(data.get("message") or "")]
        for err in data.get("errors") or []:
            if isinstance(err, dict):
                parts.append(str(err.get("message") or
                                 " ".join(str(err.get(k, "")) for k in ("resource", "field", "code")).strip()))
            else:
                parts.append(str(err))
        return "; ".join(p for p in parts if p)
    return str(data or e)

"""GitHub forge tests.

Honesty note: these do NOT talk to GitHub. No GitHub-compatible server can be installed here, so
the real PyGithub client (the one dkb ships with) runs against `tests/fake_github.py`, a small
stateful loopback fake of just the REST endpoints the forge uses (refs, contents, pulls, labels,
review requests). The fake follows GitHub's documented shapes and error statuses, but agreement
with it proves wire-level behaviour against our model of GitHub, not against GitHub itself.
"""

from __future__ import annotations

import base64
import socket
import time

import pytest

from dkbuild.gitops.forge import ChangeRequest, ForgeError
from dkbuild.gitops.github import AUTO_MERGE_WARNING, GitHubForge
from tests.fake_github import FakeGitHub, blob_sha

TOKEN = "ghp_s3cr3tTOKENvalue"
VALUES = "gitops/envs/dev/cells/c0/apps/enrich/values.yaml"
BRANCH = "promote/enrich/dev/c0/1.2.0"
REPO = "/repos/acme/gitops"


@pytest.fixture
def fake():
    f = FakeGitHub(owner="acme", repo="gitops", token=TOKEN,
                   files={"README.md": "gitops\n", VALUES: "appVersion: 1.1.0\n"})
    yield f
    f.close()


def forge(fake: FakeGitHub, **kw) -> GitHubForge:
    kw.setdefault("token", TOKEN)
    return GitHubForge("acme", kw.pop("repository", "gitops"), base_url=fake.url, timeout=5,
                       backoff=0.01, pace=False, **kw)


def change(**kw) -> ChangeRequest:
    base = {"branch": BRANCH, "base": "main", "title": "Promote enrich to dev/c0: 1.2.0",
                "body": "## Package Promotion\n", "commit_message": "Promote enrich to dev/c0 at version 1.2.0",
                "files": {VALUES: "appVersion: 1.2.0\n", "gitops/envs/dev/cells/c0/apps/enrich/NOTES": "new\n"},
                "labels": ("promotion", "env:dev", "cell:c0", "package:enrich"),
                "reviewers": ("alice", "bob")}
    base.update(kw)
    return ChangeRequest(**base)


def test_first_submit_creates_branch_files_pr_labels_reviewers(fake):
    result = forge(fake).submit(change())
    notes = "gitops/envs/dev/cells/c0/apps/enrich/NOTES"
    assert fake.calls() == [
        ("GET", REPO),
        ("GET", f"{REPO}/git/ref/heads/main"),
        ("POST", f"{REPO}/git/refs"),
        ("GET", f"{REPO}/contents/{notes}"),
        ("PUT", f"{REPO}/contents/{notes}"),
        ("GET", f"{REPO}/contents/{VALUES}"),
        ("PUT", f"{REPO}/contents/{VALUES}"),
        ("GET", f"{REPO}/pulls"),
        ("POST", f"{REPO}/pulls"),
        ("POST", f"{REPO}/issues/1/labels"),
        ("POST", f"{REPO}/pulls/1/requested_reviewers"),
    ]
    reqs = fake.requests
    assert reqs[2]["body"] == {"ref": f"refs/heads/{BRANCH}", "sha": fake.branches["main"]}
    assert reqs[3]["query"] == {"ref": BRANCH}
    assert "sha" not in reqs[4]["body"]                            # new file: no blob sha
    assert reqs[6]["body"]["sha"] == blob_sha(b"appVersion: 1.1.0\n")  # existing file: its sha
    assert base64.b64decode(reqs[6]["body"]["content"]) == b"appVersion: 1.2.0\n"
    assert reqs[6]["body"]["branch"] == BRANCH
    assert reqs[6]["body"]["message"] == "Promote enrich to dev/c0 at version 1.2.0"
    assert reqs[7]["query"] == {"state": "open", "head": f"acme:{BRANCH}", "base": "main"}
    assert reqs[8]["body"] == {"title": "Promote enrich to dev/c0: 1.2.0", "body": "## Package Promotion\n",
                               "head": BRANCH, "base": "main"}
    assert reqs[9]["body"] == ["promotion", "env:dev", "cell:c0", "package:enrich"]  # PyGithub: bare array
    assert reqs[10]["body"] == {"reviewers": ["alice", "bob"]}
    for r in reqs:
        assert r["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert r["headers"]["Accept"] == "application/vnd.github+json"
        assert r["headers"]["X-GitHub-Api-Version"] == "2022-11-28"

    assert result.created and result.number == 1
    assert result.url == f"{fake.url}/acme/gitops/pull/1"
    assert result.commit == fake.branches[BRANCH] and result.branch == BRANCH
    assert result.warnings == ()
    assert fake.read(BRANCH, VALUES) == "appVersion: 1.2.0\n"
    assert fake.read("main", VALUES) == "appVersion: 1.1.0\n"
    pr = fake.pulls[0]
    assert pr["labels"] == ["promotion", "env:dev", "cell:c0", "package:enrich"]
    assert pr["reviewers"] == ["alice", "bob"]


def test_identical_resubmit_reuses_branch_and_pr_and_writes_nothing(fake):
    f = forge(fake)
    first = f.submit(change())
    fake.clear()
    again = f.submit(change())
    methods = [m for m, _ in fake.calls()]
    assert ("POST", f"{REPO}/pulls") not in fake.calls()
    assert "PUT" not in methods and "PATCH" not in methods
    assert ("POST", f"{REPO}/git/refs") in fake.calls()            # answered 422, reused
    assert not any(p.endswith(("/labels", "/requested_reviewers")) for _, p in fake.calls())
    assert len(fake.pulls) == 1 and len(fake.branches) == 2
    assert (again.number, again.url, again.created) == (first.number, first.url, False)
    assert again.commit == first.commit == fake.branches[BRANCH]


def test_resubmit_with_changes_updates_same_pr(fake):
    f = forge(fake)
    f.submit(change())
    fake.clear()
    result = f.submit(change(title="Promote enrich to dev/c0: 1.2.1", body="v2",
                             files={VALUES: "appVersion: 1.2.1\n",
                                    "gitops/envs/dev/cells/c0/apps/enrich/NOTES": "new\n"},
                             labels=("promotion", "urgent"), reviewers=("alice", "carol")))
    puts = [r for r in fake.requests if r["method"] == "PUT"]
    assert [r["path"] for r in puts] == [f"{REPO}/contents/{VALUES}"]   # NOTES identical: not re-PUT
    assert puts[0]["body"]["sha"] == blob_sha(b"appVersion: 1.2.0\n")  # the branch's blob, not main's
    patch = [r for r in fake.requests if r["method"] == "PATCH"]
    assert patch[0]["path"] == f"{REPO}/pulls/1"
    assert patch[0]["body"] == {"title": "Promote enrich to dev/c0: 1.2.1", "body": "v2"}
    labels = [r for r in fake.requests if r["path"].endswith("/labels")]
    assert labels[0]["body"] == ["urgent"]
    reviews = [r for r in fake.requests if r["path"].endswith("/requested_reviewers")]
    assert reviews[0]["body"] == {"reviewers": ["carol"]}
    assert len(fake.pulls) == 1 and fake.pulls[0]["title"].endswith("1.2.1")
    assert not result.created and result.number == 1
    assert result.commit == fake.branches[BRANCH]
    assert fake.read(BRANCH, VALUES) == "appVersion: 1.2.1\n"


def test_branch_left_by_an_earlier_run_is_reused(fake):
    # a previous run created the branch (and one file) and died before opening the PR
    fake.branches[BRANCH] = fake.branches["main"]
    fake.files[BRANCH] = dict(fake.files["main"])
    result = forge(fake).submit(change())
    refs = [r for r in fake.requests if r["path"] == f"{REPO}/git/refs"]
    assert len(refs) == 1                                      # the 422 was not retried or fatal
    assert result.created and result.number == 1
    assert fake.read(BRANCH, VALUES) == "appVersion: 1.2.0\n"


def test_bad_token_is_reported_without_the_token(fake):
    with pytest.raises(ForgeError) as info:
        forge(fake, token="ghp_wrongWRONGwrong").submit(change())
    err = info.value
    assert "rejected the token" in str(err) and "GITHUB_TOKEN" in err.hint
    for text in (str(err), repr(err), err.hint, repr(forge(fake))):
        assert "ghp_wrongWRONGwrong" not in text and TOKEN not in text
    assert len(fake.requests) == 1                             # 401 is not retried


def test_unknown_repository(fake):
    with pytest.raises(ForgeError) as info:
        forge(fake, repository="nope").submit(change())
    assert "acme/nope not found" in str(info.value)
    assert "owner/repository" in info.value.hint and "Enterprise" in info.value.hint


def test_missing_base_branch(fake):
    with pytest.raises(ForgeError, match="base branch 'trunk' not found"):
        forge(fake).submit(change(base="trunk"))


def test_validation_error_carries_detail(fake):
    with pytest.raises(ForgeError) as info:
        forge(fake).submit(change(title=""))
    assert "opening a pull request" in str(info.value) and "title" in str(info.value)


def test_502_is_retried_then_succeeds(fake):
    fake.fail_next(2, 502)
    result = forge(fake, retries=3).submit(change())
    assert result.number == 1
    assert fake.calls()[:3] == [("GET", REPO)] * 3              # two 502s, then the real answer


def test_persistent_5xx_gives_up_with_a_forge_error(fake):
    fake.fail_next(10, 503, "Service Unavailable")
    with pytest.raises(ForgeError, match="503") as info:
        forge(fake, retries=2).submit(change())
    assert "re-run" in info.value.hint
    assert len(fake.requests) == 3


def test_network_down_fails_quickly():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                           # closed once the block ends
    f = GitHubForge("acme", "gitops", TOKEN, base_url=f"http://127.0.0.1:{port}", timeout=2,
                    retries=2, backoff=0.01, pace=False)
    start = time.monotonic()
    with pytest.raises(ForgeError) as info:
        f.submit(change())
    assert time.monotonic() - start < 5
    assert f"http://127.0.0.1:{port}" in str(info.value) and "unreachable" in str(info.value)
    assert TOKEN not in str(info.value) + repr(info.value) + info.value.hint


def test_pending_lists_open_prs_by_branch_prefix(fake):
    f = forge(fake)
    f.submit(change())
    f.submit(change(branch="promote/enrich/int/c0/1.2.0", files={"gitops/x": "1\n"}))
    f.submit(change(branch="hotfix/thing", files={"gitops/y": "1\n"}))
    fake.pulls[1]["state"] = "closed"
    pending = f.pending("promote/")
    assert [(p.branch, p.number) for p in pending] == [(BRANCH, 1)]
    assert pending[0].url.endswith("/pull/1") and pending[0].title.startswith("Promote")
    assert [p.branch for p in f.pending("hotfix/")] == ["hotfix/thing"]


def test_auto_merge_only_warns(fake):
    result = forge(fake).submit(change(auto_merge=True))
    assert result.warnings == (AUTO_MERGE_WARNING,)
    assert "GraphQL" in AUTO_MERGE_WARNING
    assert not any("merge" in p for _, p in fake.calls())


def test_label_failure_only_warns(fake):
    orig = fake._dispatch

    def dispatch(req):
        if req["path"].endswith("/labels"):
            return 403, {"message": "Resource not accessible by integration"}, {}
        return orig(req)

    fake._dispatch = dispatch
    result = forge(fake).submit(change())
    assert result.number == 1
    assert any("could not add labels" in w for w in result.warnings)


def test_forbidden_write_names_the_permission(fake):
    orig = fake._dispatch

    def dispatch(req):
        if req["method"] == "POST" and req["path"].endswith("/git/refs"):
            return 403, {"message": "Resource not accessible by personal access token"}, {}
        return orig(req)

    fake._dispatch = dispatch
    with pytest.raises(ForgeError) as info:
        forge(fake).submit(change())
    assert "creating branch" in str(info.value) and "not accessible" in str(info.value)
    assert "repo scope" in info.value.hint
    assert sum(1 for _, p in fake.calls() if p.endswith("/git/refs")) == 1  # not a rate limit: no retry

"""GitOps promotion, rollback and status with real git (a bare repository is the remote) and a real
registry (docker-registry on loopback) for digests. The forge is the plain-git one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import dataset, git

VALUES = "gitops/envs/{env}/cells/c0/apps/{pkg}/values.yaml"
STAMP = r"/\d{8}-\d{6}"                    # dk's branch timestamp, 20060102-150405


class Run:
    """The result of running the real `dkb` in a subprocess, as a user would."""

    def __init__(self, proc: subprocess.CompletedProcess[str]):
        self.exit_code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.output = proc.stdout + proc.stderr

    def __repr__(self) -> str:
        return f"<exit {self.exit_code}>\n{self.output}"


def run(root: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    return Run(subprocess.run([sys.executable, "-m", "dkbuild", "-C", str(root), *args], capture_output=True,
                              text=True, timeout=120, env={**os.environ, **(env or {})}))


def out_json(res):  # type: ignore[no-untyped-def]
    return json.loads(res.stdout)


def seed_bare(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    bare = tmp_path / "gitops.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(bare)], check=True)
    work = tmp_path / "seed"
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(work)], check=True)
    for env in ("dev", "int", "prod"):
        (work / f"gitops/envs/{env}/cells/c0/apps").mkdir(parents=True)
        (work / f"gitops/envs/{env}/cells/c0/apps/.gitkeep").write_text("")
    for rel, text in (files or {}).items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "seed")
    git(work, "push", "--quiet", str(bare), "main")
    return bare


def refs(bare: Path) -> dict[str, str]:
    out = git(bare, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split() for line in out.splitlines())


def branch(bare: Path, prefix: str) -> str:
    """The one branch dk's naming gives the change `prefix` (`promote/<pkg>/<env>/<cell>/<version>`)."""
    found = [r.removeprefix("refs/heads/") for r in refs(bare)
             if re.fullmatch(re.escape(f"refs/heads/{prefix}") + STAMP, r)]
    assert len(found) == 1, (prefix, sorted(refs(bare)))
    return found[0]


def show(bare: Path, ref: str, path: str) -> str:
    return git(bare, "show", f"{ref}:{path}")


def merge(bare: Path, branch: str, tmp_path: Path) -> None:
    """Merge a change into main the way a reviewer would: in a clone, then push main."""
    clone = tmp_path / f"merge-{branch.replace('/', '-')}"
    git(tmp_path, "clone", "--quiet", str(bare), str(clone))
    git(clone, "merge", "--quiet", "--no-ff", "-m", f"Merge {branch}", f"origin/{branch}")
    git(clone, "push", "--quiet", "origin", "main")


@pytest.fixture
def setup(workspace, dkb, registry, tmp_path):  # type: ignore[no-untyped-def]
    """(root, bare, digests) with //pipelines/ingest and //pipelines/publish 1.0.0 published."""
    def make(values: dict[str, str] | None = None, publish_tags: tuple[str, ...] = (),  # type: ignore[no-untyped-def]
             extra: dict | None = None, toml: str = "", gitops: str = "", repo: bool = True):
        bare = seed_bare(tmp_path, values)
        root = workspace({**(extra or {}), "workspace.toml": (
            '[workspace]\nname = "test"\n'
            f'[registry]\nurl = "oci://{registry.host}/acme"\nplain_http = true\n'
            '[gitops]\n' + (f'repo = "{bare}"\n' if repo else "") + gitops +
            '[environments.prod]\napprovals = 2\n' + toml)})
        digests = {}
        for tag in ("", *publish_tags):
            res = dkb("publish", "--output", "json", *(["--tag", tag] if tag else []), cwd=root)
            assert res.code == 0, res
            for p in res.json()["published"]:
                digests[(p["label"], tag or "1.0.0")] = p["digest"]
        return root, bare, digests
    return make


def test_first_promotion_writes_values_on_a_branch(setup, registry) -> None:  # type: ignore[no-untyped-def]
    root, bare, digests = setup()
    before_main = refs(bare)["refs/heads/main"]
    res = run(root, "promote", "//pipelines/ingest", "--to", "dev", "-o", "json")
    assert res.exit_code == 0, res.output
    doc = out_json(res)
    assert doc["status"] == "created"
    assert re.fullmatch(r"promote/ingest/dev/c0/1\.0\.0" + STAMP, doc["branch"]), doc["branch"]
    name = branch(bare, "promote/ingest/dev/c0/1.0.0")
    assert doc["branch"] == name
    assert doc["title"] == "Promote ingest to dev/c0: 1.0.0"
    assert set(doc["labels"]) == {"promotion", "env:dev", "cell:c0", "package:ingest"}
    assert "**Previous Version:** (none)" in doc["body"] and "Checklist" in doc["body"]
    digest = digests[("//pipelines/ingest", "1.0.0")]
    text = show(bare, f"refs/heads/{name}", VALUES.format(env="dev", pkg="ingest"))
    # registry is the chart's prefix: <registry>/<package>:<appVersion> is what was published
    assert text == f"appVersion: 1.0.0\nregistry: {registry.host}/acme\ndigest: {digest}\n"
    assert doc["packages"][0]["reference"] == f"{registry.host}/acme/ingest:1.0.0"
    assert git(bare, "log", "-1", "--format=%s", name).strip() == "Promote ingest to dev/c0 at version 1.0.0"
    assert refs(bare)["refs/heads/main"] == before_main                  # only the branch was pushed


def test_existing_values_keep_comments_and_order(setup) -> None:  # type: ignore[no-untyped-def]
    original = ("# Enrichment job, dev\nreplicas: 2  # keep small\nappVersion: 0.9.0\n"
                "schedule: \"*/5 * * * *\"\nresources:\n  limits:\n    cpu: 500m\n")
    root, bare, digests = setup({VALUES.format(env="dev", pkg="ingest"): original})
    res = run(root, "promote", "//pipelines/ingest", "--to", "dev")
    assert res.exit_code == 0, res.output
    text = show(bare, "refs/heads/" + branch(bare, "promote/ingest/dev/c0/1.0.0"),
                VALUES.format(env="dev", pkg="ingest"))
    assert text.startswith("# Enrichment job, dev\nreplicas: 2  # keep small\nappVersion: 1.0.0\n"
                           "schedule: \"*/5 * * * *\"\nresources:\n  limits:\n    cpu: 500m\n")
    assert f"digest: {digests[('//pipelines/ingest', '1.0.0')]}" in text


def test_skipping_an_environment_is_a_warning_as_in_dk(setup) -> None:  # type: ignore[no-untyped-def]
    root, bare, _ = setup()
    res = run(root, "promote", "//pipelines/ingest", "--to", "int", "-o", "json")
    assert res.exit_code == 0, res.output
    assert any("is not running in dev" in w and "enforce_order" in w for w in out_json(res)["warnings"])


def test_skipping_an_environment_needs_force_when_the_order_is_enforced(setup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, bare, _ = setup(toml="[environments]\nenforce_order = true\n")
    refused = run(root, "promote", "//pipelines/ingest", "--to", "int")
    assert refused.exit_code == 1
    assert "//pipelines/ingest 1.0.0 is not running in dev" in refused.stderr
    assert not any(r.startswith("refs/heads/promote/") for r in refs(bare))
    forced = run(root, "promote", "//pipelines/ingest", "--to", "int", "--force", "-o", "json")
    assert forced.exit_code == 0, forced.output
    doc = out_json(forced)
    assert "Warnings" in doc["body"] and "--force" in doc["body"]
    # once dev runs it, int is fine without --force
    assert run(root, "promote", "//pipelines/ingest", "--to", "dev").exit_code == 0
    merge(bare, branch(bare, "promote/ingest/dev/c0/1.0.0"), tmp_path)
    ok = run(root, "promote", "//pipelines/ingest", "--to", "int", "-o", "json")
    assert ok.exit_code == 0 and out_json(ok)["warnings"] == []


def test_promoting_what_is_deployed_is_a_no_op(setup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, bare, _ = setup()
    assert run(root, "promote", "//pipelines/ingest", "--to", "dev").exit_code == 0
    merged = branch(bare, "promote/ingest/dev/c0/1.0.0")
    merge(bare, merged, tmp_path)
    git(bare, "branch", "-D", merged)
    before = refs(bare)
    again = run(root, "promote", "//pipelines/ingest", "--to", "dev")
    assert again.exit_code == 0
    assert "already deployed" in again.stdout
    assert refs(bare) == before


def test_rerun_updates_the_same_branch(setup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, bare, _ = setup()
    first = out_json(run(root, "promote", "//pipelines/ingest", "--to", "dev", "-o", "json"))
    same = out_json(run(root, "promote", "//pipelines/ingest", "--to", "dev", "-o", "json"))
    assert same["status"] == "updated" and same["commit"] == first["commit"]
    # main moves on: the branch is rebuilt on the new main, still one branch
    clone = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(bare), str(clone))
    (clone / "README.md").write_text("hello\n")
    git(clone, "add", "README.md")
    git(clone, "commit", "--quiet", "-m", "unrelated")
    git(clone, "push", "--quiet", "origin", "main")
    third = out_json(run(root, "promote", "//pipelines/ingest", "--to", "dev", "-o", "json"))
    assert third["status"] == "updated" and third["commit"] != first["commit"]
    branches = [r for r in refs(bare) if r.startswith("refs/heads/promote/")]
    assert branches == [f"refs/heads/{first['branch']}"] and third["branch"] == first["branch"]
    assert git(bare, "merge-base", "--is-ancestor", "main", first["branch"]) == ""


def test_unpublished_version_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    root, bare, _ = setup()
    before = refs(bare)
    res = run(root, "promote", "//pipelines/ingest", "--to", "dev", "--version", "9.9.9")
    assert res.exit_code == 1
    assert "//pipelines/ingest: version 9.9.9 is not published" in res.stderr
    assert refs(bare) == before


def test_rollback_finds_the_previous_version(setup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, bare, digests = setup(publish_tags=("1.1.0",))
    assert run(root, "promote", "//pipelines/ingest", "--to", "dev").exit_code == 0
    merge(bare, branch(bare, "promote/ingest/dev/c0/1.0.0"), tmp_path)
    assert run(root, "promote", "//pipelines/ingest", "--to", "dev", "--version", "1.1.0").exit_code == 0
    merge(bare, branch(bare, "promote/ingest/dev/c0/1.1.0"), tmp_path)
    res = run(root, "rollback", "//pipelines/ingest", "--to", "dev", "-o", "json")
    assert res.exit_code == 0, res.output
    doc = out_json(res)
    # dk's rollback is a promotion of the older version: same branch scheme, a new timestamped branch
    assert re.fullmatch(r"promote/ingest/dev/c0/1\.0\.0" + STAMP, doc["branch"]), doc["branch"]
    assert doc["title"] == "Roll back ingest in dev/c0 to 1.0.0"
    assert "rollback" in doc["labels"]
    text = show(bare, f"refs/heads/{doc['branch']}", VALUES.format(env="dev", pkg="ingest"))
    assert "appVersion: 1.0.0" in text and digests[("//pipelines/ingest", "1.0.0")] in text
    for spelling in (("--to", "dev", "--to-version", "1.0.0"),          # dk's
                     ("--env", "dev", "--to", "1.0.0"),                 # dkb's earlier one
                     ("--env", "dev", "--to-version", "1.0.0")):
        explicit = run(root, "rollback", "ingest", *spelling, "--dry-run", "-o", "json")
        assert explicit.exit_code == 0, (spelling, explicit.output)
        assert out_json(explicit)["packages"][0]["version"] == "1.0.0"
        assert out_json(explicit)["environment"] == "dev"
    mixed = run(root, "rollback", "ingest", "--env", "dev", "--to", "1.0.0", "--to-version", "1.0.0")
    assert mixed.exit_code == 2 and "old spelling" in mixed.stderr


def test_batch_promotion_is_one_branch(setup) -> None:  # type: ignore[no-untyped-def]
    root, bare, _ = setup()
    res = run(root, "promote", "//pipelines/ingest", "//pipelines/publish", "--to", "dev", "-o", "json")
    assert res.exit_code == 0, res.output
    doc = out_json(res)
    assert doc["branch"].startswith("promote/batch/dev/c0/")
    assert {"package:ingest", "package:publish"} <= set(doc["labels"])
    branches = [r for r in refs(bare) if r.startswith("refs/heads/promote/")]
    assert branches == [f"refs/heads/{doc['branch']}"]
    files = git(bare, "diff", "--name-only", "main", doc["branch"]).split()
    assert files == [VALUES.format(env="dev", pkg="ingest"), VALUES.format(env="dev", pkg="publish")]


def test_status_json(setup, tmp_path, dkb) -> None:  # type: ignore[no-untyped-def]
    root, bare, digests = setup()
    assert run(root, "promote", "//pipelines/ingest", "--to", "dev").exit_code == 0
    merge(bare, branch(bare, "promote/ingest/dev/c0/1.0.0"), tmp_path)
    assert run(root, "promote", "//pipelines/publish", "--to", "dev").exit_code == 0     # left pending
    res = run(root, "status", "-o", "json")
    assert res.exit_code == 0, res.output
    doc = out_json(res)
    ingest = next(p for p in doc["packages"] if p["label"] == "//pipelines/ingest")
    assert ingest["latest_published"] == "1.0.0"
    assert ingest["environments"]["dev"] == [{
        "environment": "dev", "cell": "c0", "version": "1.0.0", "digest": digests[("//pipelines/ingest", "1.0.0")],
        "registry": ingest["environments"]["dev"][0]["registry"], "latest": True}]
    assert [p["branch"] for p in doc["pending"]] == [branch(bare, "promote/publish/dev/c0/1.0.0")]
    assert doc["pending"][0]["title"] == "Promote publish to dev/c0 at version 1.0.0"
    # the text table shows the short digest per environment (the JSON above has the full one)
    text = run(root, "status")
    assert text.exit_code == 0, text.output
    header, row = (line for line in text.stdout.splitlines() if line.startswith(("PACKAGE", "//pipelines/ingest")))
    short = digests[("//pipelines/ingest", "1.0.0")][:19]
    assert row[header.index("dev"):].startswith(f"1.0.0@c0 {short}"), text.stdout
    # a newer published version makes dev "behind"
    assert dkb("publish", "--tag", "1.2.0", "//pipelines/ingest", cwd=root).code == 0
    later = out_json(run(root, "status", "//pipelines/ingest", "-o", "json"))
    assert later["packages"][0]["latest_published"] == "1.2.0"
    assert later["packages"][0]["environments"]["dev"][0]["latest"] is False


def test_bad_remote_is_a_clear_error(setup) -> None:  # type: ignore[no-untyped-def]
    root, bare, _ = setup()
    toml = root / "workspace.toml"
    toml.write_text(toml.read_text().replace(str(bare), str(bare) + "-missing"))
    res = run(root, "promote", "//pipelines/ingest", "--to", "dev")
    assert res.exit_code == 1
    assert "cannot clone the GitOps repository" in res.stderr and "hint:" in res.stderr


def test_rejected_push_leaves_the_gitops_repo_untouched(setup) -> None:  # type: ignore[no-untyped-def]
    root, bare, _ = setup()
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected by policy' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = refs(bare)
    objects = sorted(p.name for p in (bare / "objects").rglob("*") if p.is_file())
    res = run(root, "promote", "//pipelines/ingest", "--to", "dev")
    assert res.exit_code == 1
    assert re.search("cannot push branch promote/ingest/dev/c0/1.0.0" + STAMP, res.stderr), res.stderr
    assert "nothing was changed" in res.stderr
    assert refs(bare) == before
    assert sorted(p.name for p in (bare / "objects").rglob("*") if p.is_file()) == objects


def test_embedded_default_repository(workspace, dkb, registry) -> None:  # type: ignore[no-untyped-def]
    root = workspace({"workspace.toml": f'[registry]\nurl = "oci://{registry.host}/acme"\nplain_http = true\n'})
    assert dkb("publish", "//pipelines/ingest", cwd=root).code == 0
    res = run(root, "promote", "//pipelines/ingest", "--to", "dev")
    assert res.exit_code == 0, res.output
    bare = root / ".dkb/gitops.git"
    assert "gitops/envs/prod/cells/c0/apps/.gitkeep" in git(bare, "ls-tree", "-r", "--name-only", "main")
    assert branch(bare, "promote/ingest/dev/c0/1.0.0")
    assert f"embedded local GitOps repository {bare}" in res.stdout               # says where it went


def test_pii_package_requests_pii_reviewers(setup) -> None:  # type: ignore[no-untyped-def]
    raw = dataset("raw", classification="confidential",
                  columns=[{"name": "id", "type": "integer"}, {"name": "email", "type": "string", "pii": True}])
    root, _, _ = setup(extra={"datasets/raw/dk.yaml": raw},
                       toml='[policy]\npii_reviewers = ["@security-team"]\nclassification_downgrade = "off"\n')
    pii = out_json(run(root, "promote", "//pipelines/ingest", "--to", "dev", "--dry-run", "-o", "json"))
    assert pii["reviewers"] == ["@security-team"]
    assert "**Handles PII:** yes" in pii["body"] and "@security-team" in pii["body"]
    plain = out_json(run(root, "promote", "//pipelines/publish", "--to", "dev", "--dry-run", "-o", "json"))
    assert plain["reviewers"] == [] and "**Handles PII:** no" in plain["body"]
    assert pii["status"] == "dry-run"


def fake_branch(fake, prefix: str) -> str:  # type: ignore[no-untyped-def]
    found = [b for b in fake.branches if re.fullmatch(re.escape(prefix) + STAMP, b)]
    assert len(found) == 1, (prefix, sorted(fake.branches))
    return found[0]


def test_promotion_through_the_github_forge(setup, registry) -> None:  # type: ignore[no-untyped-def]
    """dkb promote with forge = "github": PyGithub against the loopback fake GitHub API
    (tests/fake_github.py), so the whole wiring from workspace.toml to the pull request runs."""
    from tests.fake_github import FakeGitHub

    fake = FakeGitHub(owner="acme", repo="gitops", token="gh-test-token")
    try:
        root, _bare, digests = setup(gitops=f'forge = "github"\nowner = "acme"\nrepository = "gitops"\n'
                                          f'base_url = "{fake.url}"\n', repo=False)
        res = run(root, "promote", "//pipelines/ingest", "--to", "dev", "-o", "json",
                  env={"GITHUB_TOKEN": "gh-test-token"})
        assert res.exit_code == 0, res.output
        assert "gh-test-token" not in res.output
        (pr,) = fake.pulls
        assert pr["title"] == "Promote ingest to dev/c0: 1.0.0"
        assert {label["name"] if isinstance(label, dict) else label for label in pr["labels"]} >= {
            "promotion", "env:dev", "cell:c0", "package:ingest"}
        values = fake.read(fake_branch(fake, "promote/ingest/dev/c0/1.0.0"), VALUES.format(env="dev", pkg="ingest"))
        assert values == (f"appVersion: 1.0.0\nregistry: {registry.host}/acme\n"
                          f"digest: {digests[('//pipelines/ingest', '1.0.0')]}\n")
        again = run(root, "promote", "//pipelines/ingest", "--to", "dev", "-o", "json",
                    env={"GITHUB_TOKEN": "gh-test-token"})
        assert again.exit_code == 0, again.output
        assert len(fake.pulls) == 1                                    # re-run: same PR, no second one
        assert out_json(again)["branch"] == out_json(res)["branch"]
        bad = run(root, "promote", "//pipelines/ingest", "--to", "dev", env={"GITHUB_TOKEN": "wrong-token"})
        assert bad.exit_code != 0 and "wrong-token" not in bad.output
    finally:
        fake.close()


def test_dk_environment_variables_name_the_github_repository(setup, registry) -> None:  # type: ignore[no-untyped-def]
    """No [gitops] repo: GITHUB_OWNER, GITHUB_REPO, GITHUB_BASE_URL and GITHUB_TOKEN pick the repository,
    as for `dk promote`; reads go through the API too (status, the rollback history), as dk reads."""
    from tests.fake_github import FakeGitHub

    fake = FakeGitHub(owner="team", repo="deploys", token="gh-test-token")
    env = {"GITHUB_OWNER": "team", "GITHUB_REPO": "deploys", "GITHUB_BASE_URL": fake.url,
           "GITHUB_TOKEN": "gh-test-token"}
    try:
        root, _bare, digests = setup(publish_tags=("1.1.0",), repo=False)
        first = run(root, "promote", "ingest", "1.0.0", "--to", "dev", env=env)     # dk's command line
        assert first.exit_code == 0, first.output
        assert f"GitHub repository team/deploys at {fake.url}" in first.stdout
        assert "PR #1:" in first.stdout
        open_ = out_json(run(root, "promote", "status", "1", "-o", "json", env=env))
        assert open_["state"] == "open" and open_["merged"] is False
        fake.merge(1)
        merged = run(root, "promote", "status", "1", env=env)
        assert merged.exit_code == 0, merged.output
        assert "State:  merged" in merged.stdout and "Merged At: 2026-01-02T03:04:05" in merged.stdout
        status = out_json(run(root, "status", "ingest", "-o", "json", env=env))
        (dev,) = status["packages"][0]["environments"]["dev"]
        assert (dev["version"], dev["digest"]) == ("1.0.0", digests[("//pipelines/ingest", "1.0.0")])
        assert run(root, "promote", "ingest", "1.1.0", "--to", "dev", env=env).exit_code == 0
        fake.merge(2)
        back = run(root, "rollback", "ingest", "--to", "dev", "-o", "json", env=env)
        assert back.exit_code == 0, back.output
        doc = out_json(back)
        assert doc["packages"][0]["version"] == "1.0.0" and doc["packages"][0]["previous_version"] == "1.1.0"
        assert doc["gitops"]["forge"] == "github" and doc["number"] == 3
        missing = run(root, "promote", "status", "99", env=env)
        assert missing.exit_code == 1 and "no pull request #99" in missing.stderr
    finally:
        fake.close()

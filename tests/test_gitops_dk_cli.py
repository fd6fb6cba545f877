"""dk's promote / rollback / status command lines run on dkb, and dkb's own spellings keep working.
Real git (a bare repository as the GitOps remote) and the real loopback registry."""

from __future__ import annotations

import re
import subprocess
import sys

from dkbuild.gitops.config import gitops_config
from dkbuild.gitops.promotion import Plan, PromotionError, Target, _write
from dkbuild.workspace import load_workspace
from tests.conftest import git
from tests.test_gitops import STAMP, VALUES, branch, merge, out_json, run, setup, show  # noqa: F401

import pytest


def test_package_by_dk_name_directory_or_label(setup) -> None:  # type: ignore[no-untyped-def]
    root, _bare, _ = setup()
    for args, cwd in ((("ingest", "1.0.0"), root), (("//pipelines/ingest", "1.0.0"), root),
                      (("./pipelines/ingest",), root), ((".", "1.0.0"), root / "pipelines" / "ingest")):
        proc = subprocess.run([sys.executable, "-m", "dkbuild", "promote", *args, "--to", "dev", "--dry-run",
                               "-o", "json"], cwd=cwd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (args, proc.stdout + proc.stderr)
        doc = out_json(proc)
        assert [p["label"] for p in doc["packages"]] == ["//pipelines/ingest"], args
        assert re.fullmatch(r"promote/ingest/dev/c0/1\.0\.0" + STAMP, doc["branch"])
    unknown = run(root, "promote", "ingets", "1.0.0", "--to", "dev")
    assert unknown.exit_code == 2
    assert "no package named 'ingets'" in unknown.stderr and "did you mean ingest" in unknown.stderr


def test_positional_version_and_version_flag_must_agree(setup) -> None:  # type: ignore[no-untyped-def]
    root, _bare, _ = setup()
    clash = run(root, "promote", "ingest", "1.0.0", "--version", "2.0.0", "--to", "dev")
    assert clash.exit_code == 2 and "two versions" in clash.stderr
    missing = run(root, "promote", "ingest", "1.0.0")
    assert missing.exit_code == 2 and "--to ENV is required" in missing.stderr


def test_digest_is_verified_against_the_registry(setup) -> None:  # type: ignore[no-untyped-def]
    root, bare, digests = setup()
    digest = digests[("//pipelines/ingest", "1.0.0")]
    wrong = "sha256:" + "0" * 64
    refused = run(root, "promote", "ingest", "1.0.0", "--to", "dev", "--digest", wrong)
    assert refused.exit_code == 1
    assert f"to {digest}, not --digest {wrong}" in refused.stderr
    assert not [r for r in subprocess.run(["git", "-C", str(bare), "branch"], capture_output=True,
                                          text=True).stdout.split() if r.startswith("promote/")]
    two = run(root, "promote", "ingest", "publish", "--to", "dev", "--digest", digest)
    assert two.exit_code == 1 and "--digest verifies one package" in two.stderr
    ok = run(root, "promote", "ingest", "1.0.0", "--to", "dev", "--digest", digest, "-o", "json")
    assert ok.exit_code == 0, ok.output
    assert out_json(ok)["packages"][0]["digest"] == digest


def test_auto_merge_flag(setup) -> None:  # type: ignore[no-untyped-def]
    root, _bare, _ = setup()
    plain = out_json(run(root, "promote", "ingest", "--to", "prod", "--force", "--dry-run", "-o", "json"))
    assert "auto-merge" not in plain["body"]
    auto = out_json(run(root, "promote", "ingest", "--to", "prod", "--force", "--auto-merge", "--dry-run",
                        "-o", "json"))
    assert "2 approval(s) required in prod; auto-merge when checks pass" in auto["body"]


def test_an_old_full_repository_registry_is_rewritten(setup, registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """values.yaml from an earlier dkb held the package's repository as `registry`, which the chart
    turns into .../ingest/ingest: the same version and digest are promoted again to fix it."""
    root, bare, digests = setup()
    digest = digests[("//pipelines/ingest", "1.0.0")]
    path = VALUES.format(env="dev", pkg="ingest")
    clone = tmp_path / "old-dkb"
    git(tmp_path, "clone", "--quiet", str(bare), str(clone))
    (clone / path).parent.mkdir(parents=True, exist_ok=True)
    (clone / path).write_text(f"appVersion: 1.0.0\nregistry: {registry.host}/acme/ingest\ndigest: {digest}\n")
    git(clone, "add", path)
    git(clone, "commit", "--quiet", "-m", "deployed by an earlier dkb")
    git(clone, "push", "--quiet", "origin", "main")
    res = run(root, "promote", "ingest", "--to", "dev", "-o", "json")
    assert res.exit_code == 0 and out_json(res)["status"] == "created", res.output
    text = show(bare, "refs/heads/" + branch(bare, "promote/ingest/dev/c0/1.0.0"), path)
    assert f"registry: {registry.host}/acme\n" in text
    merge(bare, branch(bare, "promote/ingest/dev/c0/1.0.0"), tmp_path)
    again = run(root, "promote", "ingest", "--to", "dev", "-o", "json")
    assert out_json(again)["status"] == "already-deployed"


def test_promote_status_of_a_plain_git_branch(setup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, bare, _ = setup()
    name = out_json(run(root, "promote", "ingest", "--to", "dev", "-o", "json"))["branch"]
    assert out_json(run(root, "promote", "status", name, "-o", "json"))["state"] == "open"
    merge(bare, name, tmp_path)
    doc = out_json(run(root, "promote", "status", name, "-o", "json"))
    assert doc["state"] == "merged" and doc["merged"] and doc["merged_at"]
    missing = run(root, "promote", "status", "42")
    assert missing.exit_code == 1 and "plain git has no pull request numbers" in missing.stderr


def test_status_takes_dks_arguments(setup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, bare, _ = setup()
    assert run(root, "promote", "ingest", "--to", "dev").exit_code == 0
    merge(bare, branch(bare, "promote/ingest/dev/c0/1.0.0"), tmp_path)
    assert run(root, "promote", "ingest", "--to", "dev", "--cell", "canary").exit_code == 0
    merge(bare, branch(bare, "promote/ingest/dev/canary/1.0.0"), tmp_path)

    def cells(*args: str) -> list[str]:
        res = run(root, "status", *args, "-o", "json")
        assert res.exit_code == 0, res.output
        doc = out_json(res)
        return sorted(c["cell"] for p in doc["packages"] for c in p["environments"].get("dev", []))

    assert cells("ingest") == ["c0", "canary"]
    assert cells("ingest", "--cell", "canary") == ["canary"]
    scanned = out_json(run(root, "status", "--scan-dir", str(root / "pipelines" / "publish"), "-o", "json"))
    assert [p["label"] for p in scanned["packages"]] == ["//pipelines/publish"]
    every = out_json(run(root, "status", "--all", "-o", "json"))
    assert [p["label"] for p in every["packages"]] == ["//pipelines/ingest", "//pipelines/publish"]
    kube = run(root, "status", "--kube-context", "prod-cluster")
    assert kube.exit_code == 0 and "--kube-context prod-cluster is not used" in kube.stderr
    assert "GitOps: git repository" in kube.stdout


def _config(tmp_path, toml: str, environ: dict[str, str]):  # type: ignore[no-untyped-def]
    (tmp_path / "workspace.toml").write_text(toml)
    return gitops_config(load_workspace(tmp_path), environ)


def test_github_variables_choose_the_repository_as_dk_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    embedded = _config(tmp_path, "", {})
    assert embedded.embedded and "embedded local GitOps repository" in embedded.describe()
    dk = _config(tmp_path, "", {"GITHUB_OWNER": "acme"})
    assert (dk.forge, dk.owner, dk.repository, dk.base_url) == ("github", "acme", "datakit", "https://api.github.com")
    full = _config(tmp_path, '[gitops]\nforge = "github"\nowner = "x"\nrepository = "y"\n',
                   {"GITHUB_REPO": "deploys", "GITHUB_BASE_URL": "https://ghe.example/api/v3/"})
    assert (full.owner, full.repository, full.base_url) == ("x", "deploys", "https://ghe.example/api/v3")
    assert _config(tmp_path, '[gitops]\nforge = "github"\n', {}).owner == "Infoblox-CTO"     # dk's default
    pinned = _config(tmp_path, '[gitops]\nrepo = "../gitops.git"\n', {"GITHUB_OWNER": "acme"})
    assert pinned.forge == "git" and pinned.remote.endswith("gitops.git")
    assert _config(tmp_path, '[gitops]\nforge = "git"\n', {"GITHUB_OWNER": "acme"}).embedded


def _target(label: str, name: str) -> Target:
    return Target(label, name, "1.0.0", "r.example/acme", "sha256:" + "a" * 64,
                  f"gitops/envs/dev/cells/c0/apps/{name}/values.yaml", None, "", "", False)


def test_two_packages_cannot_share_one_apps_directory() -> None:
    plan = Plan("promote", "dev", "c0")
    _write(plan, _target("//team-a/ingest", "ingest"))
    with pytest.raises(PromotionError, match="//team-a/ingest and //team-b/ingest would both write"):
        _write(plan, _target("//team-b/ingest", "ingest"))

"""`dkb ci init github`: the workflow parses, has the jobs and steps CI needs, and keeps the remote
cache read-only on pull requests. (GitHub Actions itself is not run here; the YAML is checked.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dkbuild.citemplates import CiSettings, github_workflow

REMOTE = "oci://ghcr.io/acme/dkb-cache"


def _workflow(settings: CiSettings | None = None) -> dict[str, Any]:
    return yaml.safe_load(github_workflow(settings or CiSettings("0.1.0", REMOTE)))


def _runs(job: dict[str, Any]) -> list[str]:
    return [s["run"] for s in job["steps"] if "run" in s]


def _uses(job: dict[str, Any]) -> list[str]:
    return [s["uses"].split("@")[0] for s in job["steps"] if "uses" in s]


def test_parses_with_triggers_and_jobs() -> None:
    doc = _workflow()
    assert set(doc["on"]) == {"pull_request", "push", "workflow_dispatch"}      # "on" quoted: not YAML 1.1 True
    assert doc["on"]["push"]["branches"] == ["main"]
    assert set(doc["on"]["workflow_dispatch"]["inputs"]) == {"package", "env"}
    assert doc["on"]["workflow_dispatch"]["inputs"]["env"]["options"] == ["dev", "int", "prod"]
    assert set(doc["jobs"]) == {"pull-request", "main", "promote"}
    for job in doc["jobs"].values():
        assert job["runs-on"] and job["if"]
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step
            if "uses" in step:
                assert "@v" in step["uses"], step          # actions pinned to a major version


def test_every_job_checks_out_full_history() -> None:
    for name, job in _workflow()["jobs"].items():
        checkout = job["steps"][0]
        assert checkout["uses"].startswith("actions/checkout@"), name
        assert checkout["with"]["fetch-depth"] == 0, name
        assert "actions/setup-python" in _uses(job)
        assert any("pip install" in r and "dkbuild==" in r for r in _runs(job))


def test_pull_request_job() -> None:
    job = _workflow()["jobs"]["pull-request"]
    assert job["if"] == "github.event_name == 'pull_request'"
    runs = _runs(job)
    lint = next(r for r in runs if r.startswith("dkb lint"))
    assert "--sarif dkb-lint.sarif" in lint
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert upload["with"]["sarif_file"] == "dkb-lint.sarif"
    assert job["permissions"]["security-events"] == "write"
    assert any(r.startswith("dkb affected") and "--explain" in r for r in runs)
    build = next(r for r in runs if r.startswith("dkb build"))
    for part in ("--affected", '--since "origin/${{ github.base_ref }}"', f"--remote-cache {REMOTE}", "-k",
                 "--report dkb-build-report.json"):
        assert part in build
    artifact = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert artifact["with"]["path"] == "dkb-build-report.json"


def test_remote_cache_read_only_on_pull_requests_and_written_on_main() -> None:
    text = github_workflow(CiSettings("0.1.0", REMOTE))
    jobs = yaml.safe_load(text)["jobs"]
    pr = jobs["pull-request"]
    assert not any("--remote-cache-write" in r for r in _runs(pr))
    assert "env" not in pr or not any("secrets." in str(v) for v in pr["env"].values())   # no credentials
    main = jobs["main"]
    assert main["if"] == "github.event_name == 'push'"
    build = next(r for r in _runs(main) if r.startswith("dkb build"))
    assert "--remote-cache-write" in build and f"--remote-cache {REMOTE}" in build
    assert _runs(main)[-1] == "dkb publish"
    assert _runs(main).index(build) < _runs(main).index("dkb publish")


def test_promote_job_uses_inputs_through_env() -> None:
    job = _workflow(CiSettings("0.1.0", None, ["dev", "prod"]))["jobs"]["promote"]
    assert job["if"] == "github.event_name == 'workflow_dispatch'"
    assert job["env"]["PACKAGE"] == "${{ inputs.package }}" and job["env"]["TARGET_ENV"] == "${{ inputs.env }}"
    promote = next(r for r in _runs(job) if r.startswith("dkb promote"))
    assert promote == 'dkb promote "${PACKAGE}" --to "${TARGET_ENV}"'     # no ${{ }} injection into the script
    assert job["environment"] == "${{ inputs.env }}"


def test_without_a_configured_remote_the_repository_variable_is_used() -> None:
    doc = _workflow(CiSettings("0.1.0", None))
    build = next(r for r in _runs(doc["jobs"]["pull-request"]) if r.startswith("dkb build"))
    assert '--remote-cache "${{ vars.DKB_REMOTE_CACHE }}"' in build


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "workspace.toml").write_text(f'[workspace]\nname = "acme"\n[cache]\nremote = "{REMOTE}"\n'
                                             '[environments]\norder = ["dev", "staging", "prod"]\n')
    return tmp_path


def test_cli_writes_the_workflow_from_workspace_settings(ws: Path, dkb: Any) -> None:
    result = dkb("-C", str(ws), "ci", "init", "github")
    assert result.code == 0, result
    doc = yaml.safe_load((ws / ".github" / "workflows" / "dkb.yml").read_text())
    assert doc["on"]["workflow_dispatch"]["inputs"]["env"]["options"] == ["dev", "staging", "prod"]
    assert any(REMOTE in r for r in _runs(doc["jobs"]["main"]))


def test_cli_refuses_to_overwrite_without_force(ws: Path, dkb: Any, tmp_path: Path) -> None:
    target = tmp_path / "out" / "ci.yml"
    assert dkb("-C", str(ws), "ci", "init", "github", "--output", str(target)).code == 0
    target.write_text("# mine\n")
    result = dkb("-C", str(ws), "ci", "init", "github", "--output", str(target))
    assert result.code == 2 and "--force" in result.err
    assert target.read_text() == "# mine\n"
    assert dkb("-C", str(ws), "ci", "init", "github", "--output", str(target), "--force").code == 0
    assert yaml.safe_load(target.read_text())["name"] == "dkb"


def test_workspace_cannot_make_pull_requests_write_the_cache(tmp_path: Path, dkb: Any) -> None:
    """Cache writes are a per-job flag; workspace.toml has no setting that could turn them on."""
    (tmp_path / "workspace.toml").write_text(f'[cache]\nremote = "{REMOTE}"\nremote_write = true\n')
    result = dkb("-C", str(tmp_path), "ci", "init", "github")
    assert result.code == 2 and "remote_write" in result.err

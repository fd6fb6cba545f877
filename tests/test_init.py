"""`dkb init`: every scaffold lints clean (--strict) and builds at once; refusals exit 2."""

from __future__ import annotations

import tomllib

import pytest
import yaml

from dkbuild.config_model import WorkspaceConfig, parse_config
from dkbuild.scaffold import render_workspace_toml

SCAFFOLDS = [("generic-python", "batch"), ("generic-python", "streaming"), ("generic-go", "batch"),
             ("generic-go", "streaming"), ("dbt", "batch"), ("cloudquery", "batch"), ("cloudquery", "streaming")]


@pytest.mark.parametrize("runtime,mode", SCAFFOLDS)
def test_scaffold_lints_strict_and_builds(workspace, dkb, runtime, mode):
    root = workspace(base=False)
    r = dkb("init", "pipelines/my-pkg", "--runtime", runtime, "--mode", mode, "--namespace", "team-a", cwd=root)
    assert r.code == 0, r
    pkg = root / "pipelines" / "my-pkg"
    transform = yaml.safe_load((pkg / "dk.yaml").read_text())
    assert transform["kind"] == "Transform" and transform["metadata"]["name"] == "my-pkg"
    assert transform["metadata"]["namespace"] == "team-a"
    assert transform["spec"]["runtime"] == runtime and transform["spec"]["mode"] == mode
    assert ("trigger" in transform["spec"]) == (mode == "batch")
    assert ("image" in transform["spec"]) == (runtime != "cloudquery")
    for side in ("input", "output"):
        ds = yaml.safe_load((pkg / "dataset" / f"my-pkg-{side}.yaml").read_text())
        assert ds["spec"]["classification"] and ds["spec"]["schema"]
    for store in (pkg / "store").iterdir():
        secrets = yaml.safe_load(store.read_text())["spec"]["secrets"]
        assert all(v.startswith("${") and v.endswith("}") for v in secrets.values())
    assert list((pkg / "connector").iterdir())
    expected = {"generic-python": ["src/my_pkg/__init__.py", "src/my_pkg/main.py", "requirements.txt"],
                "generic-go": ["go.mod", "main.go"],
                "dbt": ["dbt_project.yml", "models/my_pkg.sql", "models/schema.yml", ".gitignore"],
                "cloudquery": []}[runtime]
    for rel in expected:
        assert (pkg / rel).is_file(), rel
    if runtime == "generic-python":
        assert "def main() -> int:" in (pkg / "src/my_pkg/main.py").read_text()
    if runtime == "cloudquery":
        for conn in (pkg / "connector").iterdir():
            plugin = yaml.safe_load(conn.read_text())["spec"]["plugin"]
            assert plugin["source"] and plugin["destination"]

    lint = dkb("lint", "--strict", cwd=root)
    assert lint.code == 0, lint
    assert "no problems" in lint.out
    build = dkb("build", cwd=root)
    assert build.code == 0, build


def test_scaffolds_coexist_in_the_example_workspace(tmp_path, dkb):
    """Package-prefixed store/connector names never collide with shared platform definitions."""
    import shutil

    from tests.conftest import EXAMPLE
    root = tmp_path / "mono"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".dkb", ".ruff_cache"))
    for runtime in ("generic-python", "generic-go", "dbt", "cloudquery"):
        assert dkb("init", f"pipelines/new-{runtime}", "--runtime", runtime, cwd=root).code == 0
    lint = dkb("lint", "//pipelines/...", cwd=root)
    assert lint.code == 0, lint


def test_name_defaults_to_directory_and_name_option_overrides(workspace, dkb):
    root = workspace(base=False)
    assert dkb("init", "a/orders-load", "--runtime", "generic-go", cwd=root).code == 0
    assert yaml.safe_load((root / "a/orders-load/dk.yaml").read_text())["metadata"]["name"] == "orders-load"
    assert "module example.com/" in (root / "a/orders-load/go.mod").read_text()
    r = dkb("init", "b/Weird_Dir", "--runtime", "generic-go", "--name", "weird-dir", cwd=root)
    assert r.code == 0, r
    assert yaml.safe_load((root / "b/Weird_Dir/dk.yaml").read_text())["metadata"]["name"] == "weird-dir"


def test_dash_c_runs_in_another_directory(workspace, dkb, tmp_path):
    root = workspace(base=False)
    r = dkb("-C", str(root), "init", "pipelines/elsewhere", "--runtime", "dbt", cwd=tmp_path)
    assert r.code == 0, r
    assert (root / "pipelines/elsewhere/dbt_project.yml").is_file()


@pytest.mark.parametrize("args,message,hint", [
    (["pipelines/Bad_Name", "--runtime", "generic-python"], "invalid package name 'Bad_Name'",
     "defaults to the directory name"),
    (["pipelines/ok", "--runtime", "generic-python"], "invalid package name 'ok'", "3-63"),
    (["pipelines/x-pkg", "--runtime", "generic-python", "--name", "ends-"], "invalid package name 'ends-'",
     "try --name ends"),
    (["pipelines/x-pkg", "--runtime", "generic-python", "--name", "9lives"], "invalid package name", "letter"),
    (["pipelines/x-pkg", "--runtime", "generic-python", "--name", "a" * 64], "invalid package name", "3-63"),
    (["pipelines/x-pkg", "--runtime", "dbt", "--mode", "streaming"], "cannot run in streaming mode", "batch"),
    (["pipelines/x-pkg", "--runtime", "spark"], "unknown runtime 'spark'", "generic-python"),
    (["pipelines/x-pkg", "--runtime", "generic-pyhton"], "unknown runtime", "did you mean 'generic-python'"),
    (["pipelines/x-pkg", "--runtime", "generic-go", "--mode", "realtime"], "unknown mode", "streaming"),
    (["pipelines/x-pkg"], "missing --runtime", "cloudquery"),
    (["pipelines/x-pkg", "--runtime", "dbt", "--namespace", "Team"], "invalid namespace", "--namespace"),
])
def test_refusals(workspace, dkb, args, message, hint):
    root = workspace(base=False)
    r = dkb("init", *args, cwd=root)
    assert r.code == 2, r
    assert message in r.err and hint in r.err, r.err
    assert not (root / "pipelines").exists()


def test_refuses_non_empty_directory_and_never_overwrites(workspace, dkb):
    root = workspace(base=False)
    pkg = root / "pipelines" / "taken"
    pkg.mkdir(parents=True)
    (pkg / "notes.txt").write_text("mine\n")
    r = dkb("init", "pipelines/taken", "--runtime", "generic-python", cwd=root)
    assert r.code == 2 and "already exists and is not empty" in r.err and "never overwrites" in r.err
    assert sorted(p.name for p in pkg.iterdir()) == ["notes.txt"]
    (root / "file-pkg").write_text("x")
    r = dkb("init", "file-pkg", "--runtime", "generic-python", cwd=root)
    assert r.code == 2 and "not a directory" in r.err


def test_empty_directory_is_fine(workspace, dkb):
    root = workspace(base=False)
    (root / "pipelines" / "empty-one").mkdir(parents=True)
    assert dkb("init", "pipelines/empty-one", "--runtime", "generic-python", cwd=root).code == 0


def test_refuses_outside_a_workspace(tmp_path, dkb):
    r = dkb("init", "pkg-one", "--runtime", "generic-python", cwd=tmp_path)
    assert r.code == 2 and "not inside a dkb workspace" in r.err and "dkb init --workspace" in r.err
    assert not (tmp_path / "pkg-one").exists()


def test_warns_when_outside_workspace_package_globs(workspace, dkb):
    root = workspace({"workspace.toml": '[workspace]\npackages = ["pipelines/**"]\n'}, base=False)
    r = dkb("init", "other/pkg-one", "--runtime", "generic-go", cwd=root)
    assert r.code == 0 and "outside [workspace] packages" in r.err


def test_new_workspace_parses_lints_and_takes_packages(tmp_path, dkb):
    r = dkb("init", "--workspace", "repo", cwd=tmp_path)
    assert r.code == 0, r
    root = tmp_path / "repo"
    text = (root / "workspace.toml").read_text()
    assert (root / ".gitignore").read_text().splitlines()[-1] == ".dkb/"
    assert parse_config(text) == WorkspaceConfig()          # all commented out: the defaults
    assert all(not line.strip() or line.startswith("#") for line in text.splitlines())
    assert dkb("lint", "--strict", cwd=root).code == 0
    assert dkb("init", "pipelines/first-pkg", "--runtime", "generic-python", cwd=root).code == 0
    assert dkb("lint", "--strict", cwd=root).code == 0
    # Refuses a second time; an existing .gitignore is kept and gets .dkb/ once.
    r = dkb("init", "--workspace", "repo", cwd=tmp_path)
    assert r.code == 2 and "already has a workspace.toml" in r.err
    other = tmp_path / "existing"
    other.mkdir()
    (other / ".gitignore").write_text("node_modules/")
    assert dkb("init", "--workspace", "existing", cwd=tmp_path).code == 0
    assert (other / ".gitignore").read_text() == "node_modules/\n.dkb/\n"
    assert dkb("init", "--workspace", "x", "--runtime", "dbt", cwd=tmp_path).code == 2


def _uncommented(text: str) -> str:
    """Uncomment every `# key = value` and `# [section]` line (not the prose or the placeholders)."""
    out = []
    for line in text.splitlines():
        body = line[2:] if line.startswith("# ") else ""
        if body.startswith("[") or ("=" in body and "<string>" not in body and not body.startswith(" ")):
            out.append(body)
    return "\n".join(out) + "\n"


def test_workspace_toml_shows_every_default_of_the_model():
    text = render_workspace_toml()
    data = tomllib.loads(_uncommented(text))
    config = WorkspaceConfig.model_validate(data)
    defaults = WorkspaceConfig()
    for section in WorkspaceConfig.model_fields:
        assert section in data, section
        assert getattr(config, section) == getattr(defaults, section) or section == "environments"
        for key in type(getattr(defaults, section)).model_fields:
            assert f"# {key} = " in text, (section, key)
    assert config.environments.order == defaults.environments.order
    assert set(data["environments"]) == {"order", "enforce_order", *defaults.environments.order}

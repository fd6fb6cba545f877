from pathlib import Path

import pytest

from dkbuild.diagnostics import DkbError
from dkbuild.workspace import find_root, load_workspace


def test_nearest_workspace_wins(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text("[workspace]\nname='outer'\n")
    inner = tmp_path / "a" / "inner"
    (inner / "deep").mkdir(parents=True)
    (inner / "workspace.toml").write_text("[workspace]\nname='inner'\n")
    assert find_root(inner / "deep") == inner.resolve()
    assert load_workspace(inner / "deep").name == "inner"
    assert load_workspace(tmp_path / "a").name == "outer"


def test_defaults_for_every_section(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text("")
    cfg = load_workspace(tmp_path).config
    assert cfg.workspace.packages == ["**"]
    assert cfg.cache.dir == ".dkb" and cfg.cache.remote is None
    assert cfg.dev.marquez_port == 5000
    assert cfg.lineage.transport == "file"
    assert cfg.gitops.branch == "main"
    assert cfg.environments.order == ["dev", "int", "prod"]
    assert cfg.policy.pii_classification == "error"
    assert cfg.rules.paths == ["rules"]


def test_environment_tables_are_typed(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text("[environments.prod]\napprovals = 2\n")
    cfg = load_workspace(tmp_path).config
    assert cfg.environments.model_extra["prod"].approvals == 2


def test_unknown_key_names_key_and_closest(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text("[workspace]\nname = 'x'\n\n[policy]\npii_clasification = 'warning'\n")
    with pytest.raises(DkbError) as err:
        load_workspace(tmp_path)
    d = err.value.diagnostics[0]
    assert d.code == "E122"
    assert "policy.pii_clasification" in d.message
    assert d.line == 5
    assert "pii_classification" in d.hint


def test_unknown_section(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text("[registy]\nurl = 'x'\n")
    with pytest.raises(DkbError) as err:
        load_workspace(tmp_path)
    d = err.value.diagnostics[0]
    assert d.code == "E122" and "registry" in d.hint and d.line == 1


def test_toml_syntax_error_has_line(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text("[workspace]\nname = \n")
    with pytest.raises(DkbError) as err:
        load_workspace(tmp_path)
    d = err.value.diagnostics[0]
    assert d.code == "E121" and d.line == 2 and d.file == "workspace.toml"


def test_wrong_value_type(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text("[policy]\npii_propagation = 'sometimes'\n")
    with pytest.raises(DkbError) as err:
        load_workspace(tmp_path)
    assert err.value.diagnostics[0].code == "E123"


def test_no_workspace(tmp_path: Path) -> None:
    with pytest.raises(DkbError) as err:
        load_workspace(tmp_path)
    assert err.value.diagnostics[0].code == "E120"


def test_unknown_key_in_an_environment_table(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text("[environments.prod]\napproval = 2\n")
    with pytest.raises(DkbError) as err:
        load_workspace(tmp_path)
    d = err.value.diagnostics[0]
    assert d.code == "E122" and "approvals" in d.hint


def test_environment_defaults_and_partial_overrides(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text("[environments.prod]\ncell = \"c9\"\n")
    envs = load_workspace(tmp_path).config.environments
    assert (envs.settings("dev").approvals, envs.settings("dev").auto_merge) == (0, True)
    assert envs.settings("int").approvals == 1
    prod = envs.settings("prod")
    assert (prod.approvals, prod.cell) == (2, "c9")          # the override keeps the other defaults
    assert envs.settings("qa").approvals == 0

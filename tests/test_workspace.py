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


CONFIG_MEMO = Path(".dkb") / "cache" / "config"
RICH_TOML = ('[workspace]\nname = "w"\n[cache]\nremote = "oci://localhost:5000/c"\n'
             '[environments.dev]\ncell = "c9"\n[environments.qa]\napprovals = 3\n'
             '[rules.generic-python]\nbase_image = "oci:base@sha256:00"\nwhen = 1979-05-27T07:32:00Z\n')


def test_a_second_load_reads_the_validated_memo_and_means_the_same(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text(RICH_TOML)
    first = load_workspace(tmp_path)
    assert len(list((tmp_path / CONFIG_MEMO).glob("*.pickle"))) == 1
    second = load_workspace(tmp_path)
    assert second._config is None                       # not validated again: plain data only
    assert second.settings == first.settings and second == first
    assert second.cache_dir == tmp_path / ".dkb" and second.name == "w"
    # The typed model built from the memo is the model the file gives, set-but-default fields included.
    assert second.config == first.config
    dev = second.config.environments.settings("dev")
    assert (dev.approvals, dev.auto_merge, dev.cell) == (0, True, "c9")
    assert second.config.rules.model_extra == first.config.rules.model_extra   # a TOML datetime survives


def test_the_memo_follows_the_file_and_a_damaged_one_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text(RICH_TOML)
    load_workspace(tmp_path)
    for memo in (tmp_path / CONFIG_MEMO).glob("*.pickle"):
        memo.write_bytes(b"torn")
    assert load_workspace(tmp_path).config.cache.remote == "oci://localhost:5000/c"
    (tmp_path / "workspace.toml").write_text(RICH_TOML.replace("localhost:5000", "localhost:6000"))
    assert load_workspace(tmp_path).settings.get("cache", "remote") == "oci://localhost:6000/c"
    (tmp_path / "workspace.toml").write_text(RICH_TOML + "[workspace.extra]\n")
    with pytest.raises(DkbError):                        # an invalid file is never remembered
        load_workspace(tmp_path)
    with pytest.raises(DkbError):
        load_workspace(tmp_path)


def test_the_memo_lives_in_the_configured_cache_directory(tmp_path: Path) -> None:
    (tmp_path / "workspace.toml").write_text('[cache]\ndir = "build-cache"\n')
    load_workspace(tmp_path)
    assert list((tmp_path / "build-cache/cache/config").glob("*.pickle")) and not (tmp_path / ".dkb").exists()

"""`dkb config` and dkbuild.userconfig: edits that keep the file, validation, user config, precedence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dkbuild.cli.config import config_group
from dkbuild.userconfig import (
    effective_config,
    is_secret,
    key_lines,
    set_user_value,
    user_config_path,
)

WORKSPACE = """\
# The workspace. Comments, blank lines and order must survive edits.
[workspace]
name = "demo"   # display name
packages = ["pkgs/**"]

# Where we publish.
[registry]
url = "oci://ws.example/team"   # shared registry
plain_http = false

[environments]
order = ["dev", "int", "prod"]

[environments.prod]
approvals = 1  # two-person rule soon

[rules.generic-python]
base_image = "python:3.11-slim"
"""


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "workspace.toml").write_text(WORKSPACE, encoding="utf-8")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in ("DKB_REGISTRY", "DKB_REMOTE_CACHE", "OPENLINEAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    return root


def run(root: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(config_group, list(args), obj={"directory": str(root)}, env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def text(root: Path) -> str:
    return (root / "workspace.toml").read_text(encoding="utf-8")


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    a, b = before.splitlines(), after.splitlines()
    return [line for line in a if line not in b], [line for line in b if line not in a]


# --- get / set / unset round trips ----------------------------------------------------------------

def test_get_reads_workspace_value(ws: Path) -> None:
    assert run(ws, "get", "registry.url").output == "oci://ws.example/team\n"
    assert run(ws, "get", "environments.prod.approvals").output == "1\n"
    assert run(ws, "get", "rules.generic-python.base_image").output == "python:3.11-slim\n"
    assert run(ws, "get", "workspace.packages").output == '["pkgs/**"]\n'


def test_get_unset_value_exits_1(ws: Path) -> None:
    result = run(ws, "get", "lineage.url")
    assert result.exit_code == 1 and result.output == ""


def test_set_existing_key_changes_only_that_value(ws: Path) -> None:
    result = run(ws, "set", "registry.url", "oci://new.example/team")
    assert result.exit_code == 0, result.output
    after = text(ws)
    assert after == WORKSPACE.replace('"oci://ws.example/team"   # shared', '"oci://new.example/team"   # shared')
    assert run(ws, "get", "registry.url").output == "oci://new.example/team\n"


def test_set_new_key_and_unset_restore_bytes(ws: Path) -> None:
    assert run(ws, "set", "registry.namespace", "data").exit_code == 0
    removed, added = changed_lines(WORKSPACE, text(ws))
    assert removed == [] and added == ['namespace = "data"']
    assert run(ws, "unset", "registry.namespace").exit_code == 0
    assert text(ws) == WORKSPACE


def test_set_typed_values(ws: Path) -> None:
    assert run(ws, "set", "environments.prod.approvals", "2").exit_code == 0
    assert run(ws, "set", "registry.plain_http", "true").exit_code == 0
    assert run(ws, "set", "policy.pii_reviewers", "alice, bob").exit_code == 0
    assert run(ws, "set", "environments.order", '["dev", "prod"]').exit_code == 0
    assert run(ws, "set", "rules.generic-python.timeout", "30").exit_code == 0
    after = text(ws)
    assert "approvals = 2  # two-person rule soon" in after
    assert "plain_http = true" in after
    assert '[policy]\npii_reviewers = ["alice", "bob"]' in after
    assert 'order = ["dev", "prod"]' in after
    assert "timeout = 30" in after
    # Everything that was not edited is still there, in order.
    for line in ("# The workspace. Comments, blank lines and order must survive edits.",
                 'name = "demo"   # display name', "# Where we publish.", 'base_image = "python:3.11-slim"'):
        assert line in after
    assert after.index("[workspace]") < after.index("[registry]") < after.index("[environments]")


def test_set_new_section_for_environment(ws: Path) -> None:
    assert run(ws, "set", "environments.dev.auto_merge", "yes").exit_code == 0
    # The new table joins its siblings; nothing else moves.
    assert text(ws) == WORKSPACE.replace("[rules.generic-python]",
                                         "[environments.dev]\nauto_merge = true\n\n[rules.generic-python]")
    assert run(ws, "unset", "environments.dev.auto_merge").exit_code == 0
    assert text(ws) == WORKSPACE


def test_unset_removes_emptied_table_and_missing_key_is_a_no_op(ws: Path) -> None:
    assert run(ws, "unset", "rules.generic-python.base_image").exit_code == 0
    assert "generic-python" not in text(ws)
    before = text(ws)
    result = run(ws, "unset", "lineage.url")
    assert result.exit_code == 0 and text(ws) == before


# --- validation leaves the file untouched ---------------------------------------------------------

@pytest.mark.parametrize("key, value, code, needle", [
    ("registry.ulr", "x", "E122", "did you mean 'registry.url'?"),
    ("polcy.ignore", "E1", "E122", "did you mean 'policy.ignore'?"),
    ("environments.prod.aprovals", "2", "E122", "did you mean 'environments.prod.approvals'?"),
    ("registry", "x", "E122", "is a section"),
    ("registry.plain_http", "maybe", "E123", "expected a boolean"),
    ("environments.prod.approvals", "two", "E123", "expected an integer"),
    ("lineage.transport", "carrier-pigeon", "E123", "must be one of"),
    ("environments.order", "[1, 2", "E123", "TOML array"),
])
def test_set_rejects_and_leaves_file_untouched(ws: Path, key: str, value: str, code: str, needle: str) -> None:
    before = (ws / "workspace.toml").stat().st_mtime_ns
    result = run(ws, "set", key, value)
    assert result.exit_code == 2
    assert code in result.output and needle in result.output
    assert text(ws) == WORKSPACE
    assert (ws / "workspace.toml").stat().st_mtime_ns == before
    assert [p.name for p in ws.iterdir()] == ["workspace.toml"]       # no temp file left behind


def test_set_outside_a_workspace_is_e120(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    result = run(tmp_path, "set", "registry.url", "oci://x")
    assert result.exit_code == 2 and "E120" in result.output


# --- user config -----------------------------------------------------------------------------------

def test_user_config_lives_under_xdg(ws: Path, tmp_path: Path) -> None:
    result = run(ws, "set", "--user", "registry.url", "oci://mine.example/me")
    assert result.exit_code == 0, result.output
    path = tmp_path / "xdg" / "dkb" / "config.toml"
    assert path.read_text() == '[registry]\nurl = "oci://mine.example/me"\n'
    assert run(ws, "set", "--user", "credentials.helper", "pass").exit_code == 0
    assert run(ws, "get", "credentials.helper", "--show-origin").output == f"pass  (user:{path})\n"
    assert run(ws, "unset", "--user", "registry.url").exit_code == 0
    assert path.read_text() == '[credentials]\nhelper = "pass"\n'
    assert text(ws) == WORKSPACE


def test_user_config_default_path(tmp_path: Path) -> None:
    assert user_config_path({"HOME": str(tmp_path)}) == tmp_path / ".config" / "dkb" / "config.toml"
    assert user_config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/dkb/config.toml")


def test_user_config_rejects_shared_settings(ws: Path, tmp_path: Path) -> None:
    result = run(ws, "set", "--user", "policy.ignore", "E100")
    assert result.exit_code == 2 and "not a personal one" in result.output
    result = run(ws, "set", "--user", "registry.ulr", "x")
    assert result.exit_code == 2 and "did you mean 'registry.url'?" in result.output
    assert not (tmp_path / "xdg" / "dkb" / "config.toml").exists()


def test_invalid_user_file_is_reported(ws: Path, tmp_path: Path) -> None:
    path = tmp_path / "xdg" / "dkb" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[policy]\nignore = ['E1']\n")
    result = run(ws, "list")
    assert result.exit_code == 2 and "E122" in result.output and str(path) in result.output


# --- precedence ------------------------------------------------------------------------------------

def test_precedence_user_workspace_env_flag(ws: Path, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    user = user_config_path(env)
    set_user_value("registry.url", "oci://user.example", env)
    set_user_value("cache.remote", "oci://user.example/cache", env)
    set_user_value("registry.insecure", "true", env)

    config, origins = effective_config(ws, env, {})
    ws_file = ws / "workspace.toml"
    assert config.registry.url == "oci://ws.example/team"
    assert origins["registry.url"] == f"workspace:{ws_file}:8"           # workspace beats user
    assert config.cache.remote == "oci://user.example/cache"
    assert origins["cache.remote"] == f"user:{user}"                      # only the user set it
    assert config.registry.insecure is True and origins["registry.insecure"] == f"user:{user}"
    assert origins["environments.prod.approvals"] == f"workspace:{ws_file}:15"
    assert origins["lineage.namespace"] == "default"

    env |= {"DKB_REGISTRY": "oci://env.example", "DKB_REMOTE_CACHE": "oci://env.example/cache"}
    config, origins = effective_config(ws, env, {})
    assert (config.registry.url, origins["registry.url"]) == ("oci://env.example", "env:DKB_REGISTRY")
    assert origins["cache.remote"] == "env:DKB_REMOTE_CACHE"

    config, origins = effective_config(ws, env, {"registry.url": "oci://flag.example", "cache.remote": None,
                                                 "environments.prod.approvals": 3})
    assert (config.registry.url, origins["registry.url"]) == ("oci://flag.example", "flag")
    assert origins["cache.remote"] == "env:DKB_REMOTE_CACHE"              # None flag = not given
    assert config.environments.__pydantic_extra__["prod"].approvals == 3
    assert origins["environments.prod.approvals"] == "flag"
    assert origins["environments.prod.cell"] == "default"


def test_openlineage_url_implies_http_unless_a_transport_is_set(ws: Path, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "OPENLINEAGE_URL": "http://marquez:5000"}
    config, origins = effective_config(ws, env, {})
    assert config.lineage.url == "http://marquez:5000" and origins["lineage.url"] == "env:OPENLINEAGE_URL"
    assert config.lineage.transport == "http" and origins["lineage.transport"] == "env:OPENLINEAGE_URL"
    set_user_value("lineage.transport", "console", env)
    config, origins = effective_config(ws, env, {})
    assert config.lineage.transport == "console" and origins["lineage.transport"].startswith("user:")


def test_effective_config_outside_workspace_and_bad_flag(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "DKB_REGISTRY": "oci://env"}
    config, origins = effective_config(None, env, {})
    assert config.registry.url == "oci://env" and origins["workspace.name"] == "default"
    from dkbuild.userconfig import KeyError_
    with pytest.raises(KeyError_):
        effective_config(None, env, {"registry.ulr": "x"})


def test_list_show_origin_text(ws: Path) -> None:
    result = run(ws, "list", "--show-origin", env={"DKB_REMOTE_CACHE": "oci://env/cache"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f'registry.url = "oci://ws.example/team"  (workspace:{ws / "workspace.toml"}:8)' in lines
    assert 'cache.remote = "oci://env/cache"  (env:DKB_REMOTE_CACHE)' in lines
    assert 'lineage.namespace = "dkb"  (default)' in lines
    assert "credentials.helper = <unset>  (default)" in lines


def test_list_json(ws: Path) -> None:
    result = run(ws, "list", "--output", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    settings = {s["key"]: s for s in doc["settings"]}
    assert doc["workspace"] == str(ws)
    assert settings["environments.order"]["value"] == ["dev", "int", "prod"]
    assert settings["registry.plain_http"] == {"key": "registry.plain_http", "value": False,
                                               "origin": f"workspace:{ws / 'workspace.toml'}:9"}
    assert settings["policy.ignore"]["origin"] == "default"


# --- secrets ---------------------------------------------------------------------------------------

def test_secrets_are_masked(ws: Path) -> None:
    assert run(ws, "set", "rules.generic-python.registry_token", "s3cr3t").exit_code == 0
    assert run(ws, "set", "rules.generic-python.signing_key", "k3y").exit_code == 0
    listing = run(ws, "list", "--show-origin").output + run(ws, "list", "-o", "json").output
    assert "s3cr3t" not in listing and "k3y" not in listing
    assert 'rules.generic-python.registry_token = "***"' in listing
    assert run(ws, "get", "rules.generic-python.signing_key").output == "***\n"
    assert "k3y" not in run(ws, "get", "rules.generic-python").output


@pytest.mark.parametrize("key, secret", [
    ("rules.x.token", True), ("rules.x.api_key", True), ("rules.x.password", True), ("rules.x.key", True),
    ("cache.signing_key", True), ("rules.x.monkey", False), ("registry.url", False),
    ("credentials.helper", False), ("workspace.max_manifest_bytes", False),
])
def test_is_secret(key: str, secret: bool) -> None:
    assert is_secret(key) is secret


def test_key_lines_handles_dotted_keys_and_headers() -> None:
    lines = key_lines('[a]\nb.c = 1\n[d.e]\n"f" = 2\nm = """\nx = 3\n"""\n')
    assert lines["a.b.c"] == 2 and lines["d.e.f"] == 4 and lines["d.e"] == 3
    assert "d.e.x" not in lines


def test_user_config_reaches_the_services_but_never_the_keys(tmp_path, workspace, dkb, registry) -> None:  # type: ignore[no-untyped-def]
    """`dkb config set --user registry.url ...` is what `dkb publish` then uses; keys don't move."""
    root = workspace()
    home = tmp_path / "xdg"
    env = {"XDG_CONFIG_HOME": str(home)}
    before = dkb("build", "--dry-run", "--output", "json", cwd=root, env=env).json()
    assert dkb("config", "set", "--user", "registry.url", f"oci://{registry.host}/personal", cwd=root, env=env).code == 0
    assert dkb("config", "set", "--user", "registry.plain_http", "true", cwd=root, env=env).code == 0
    after = dkb("build", "--dry-run", "--output", "json", cwd=root, env=env).json()
    assert [t["action_key"] for t in before["targets"]] == [t["action_key"] for t in after["targets"]]
    res = dkb("publish", "--output", "json", cwd=root, env=env)
    assert res.code == 0, res
    assert all(p["reference"].startswith(f"{registry.host}/personal/") for p in res.json()["published"])

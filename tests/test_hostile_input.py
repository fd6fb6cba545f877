"""Hostile input: every command ends, with a located message and a documented exit code, never a
traceback or a hang. Each broken workspace below holds one class of breakage; every command of the
CLI (listed from the click tree, see tests/hostile.py) runs against each, in this process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from dkbuild.config_model import WorkspaceConfig, parse_config
from dkbuild.diagnostics import DkbError
from dkbuild.engine.remote_cache import RemoteCacheLocationError, RemoteCacheSettings
from tests import hostile
from tests.conftest import REPO, basic_files, dataset, transform, write_tree
from tests.test_bad_input import LAUGHS


@pytest.fixture
def quiet_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No docker on PATH (`dkb dev up` must not start a stack), git only; a private HOME."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git, "git is needed"
    (bin_dir / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / "xdg"))
    for name in ("DKB_REMOTE_CACHE", "DKB_REGISTRY", "DK_REGISTRY", "OPENLINEAGE_URL", "DKB_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size)


def special_files(root: Path) -> None:
    os.mkfifo(root / "pipelines/ingest/src/events.fifo")
    os.mkfifo(root / "datasets/raw/.dkbignore")             # an ignore file that is a FIFO
    (root / "datasets/piped").mkdir()
    os.mkfifo(root / "datasets/piped/dk.yaml")              # a manifest that is a FIFO
    sock = socket.socket(socket.AF_UNIX)
    here = os.getcwd()
    os.chdir(root / "pipelines/publish/src")        # bind a relative name: AF_UNIX paths are short
    try:
        sock.bind("agent.sock")
    finally:
        os.chdir(here)
        sock.close()


def bad_manifests(root: Path) -> None:
    write_tree(root, {
        "datasets/malformed/dk.yaml": "apiVersion: x\nkind: DataSet\nmetadata: {name: [unclosed\n",
        "datasets/bomb/dk.yaml": LAUGHS,
        "datasets/evil/dk.yaml": dataset("../../etc"),
        "datasets/slash/dk.yaml": dataset("a/b"),
    })
    (root / "datasets/binary").mkdir()
    (root / "datasets/binary/dk.yaml").write_bytes(bytes(range(256)) * 4)
    _sparse(root / "datasets/huge/dk.yaml", 5 * 1024 * 1024)              # over the 4 MiB limit
    _sparse(root / "pipelines/ingest/data/huge.bin", 8 * 1024 * 1024)     # a large source file


def links(root: Path) -> None:
    src = root / "pipelines/ingest/src"
    (src / "loop-a").symlink_to("loop-b")
    (src / "loop-b").symlink_to("loop-a")
    (src / "dangling").symlink_to("missing.py")
    (src / "dir-link").symlink_to("../../publish")
    (root / "datasets/escape").symlink_to("/etc")
    (root / "datasets/self").symlink_to(".")


def broken_graph(root: Path) -> None:
    write_tree(root, {
        "pipelines/dangling/dk.yaml": transform("dangling", ["no-such-dataset"], ["clean-2"]),
        "pipelines/cycle-a/dk.yaml": transform("cycle-a", ["ping"], ["pong"]),
        "pipelines/cycle-b/dk.yaml": transform("cycle-b", ["pong"], ["ping"]),
        "datasets/ping/dk.yaml": dataset("ping"),
        "datasets/pong/dk.yaml": dataset("pong"),
        "pipelines/unnamed/dk.yaml": transform("unnamed", ["../../etc", "x:y"], ["a/b"]),
    })


def bad_toml(root: Path) -> None:
    (root / "workspace.toml").write_text("[workspace\nname = 'x'\n")


def bad_values(root: Path) -> None:
    (root / "workspace.toml").write_text(
        '[workspace]\npackages = ["../**"]\nmax_manifest_bytes = -1\n\n[environments.prod]\napprovals = -3\n\n'
        '[cache]\nremote = "s3://cache.example/x"\ndir = ".."\n')


def toml_fifo(root: Path) -> None:
    (root / "workspace.toml").unlink()
    os.mkfifo(root / "workspace.toml")


def not_utf8_toml(root: Path) -> None:
    (root / "workspace.toml").write_bytes(b"[workspace]\nname = \"\xff\xfe\"\n")


BROKEN: dict[str, Callable[[Path], None]] = {
    "special-files": special_files, "bad-manifests": bad_manifests, "links": links,
    "broken-graph": broken_graph, "bad-toml": bad_toml, "bad-values": bad_values,
    "not-utf8-toml": not_utf8_toml, "toml-fifo": toml_fifo,
}
# What lint must say about each (code and file), so the message is located, not only present.
LINT_SAYS = {
    "special-files": [("W530", "pipelines/ingest/src/events.fifo"), ("W530", "datasets/piped/dk.yaml"),
                      ("W530", "pipelines/publish/src/agent.sock")],
    "bad-manifests": [("E100", "datasets/malformed/dk.yaml"), ("E107", "datasets/bomb/dk.yaml"),
                      ("E532", "datasets/evil/dk.yaml"), ("E532", "datasets/slash/dk.yaml"),
                      ("E112", "datasets/binary/dk.yaml"), ("E106", "datasets/huge/dk.yaml")],
    "links": [("W531", "pipelines/ingest/src/loop-a"), ("W531", "pipelines/ingest/src/dangling"),
              ("W531", "pipelines/ingest/src/dir-link"), ("W111", "datasets/escape"), ("W531", "datasets/self")],
    "broken-graph": [("E533", "pipelines/unnamed/dk.yaml")],
    "bad-toml": [("E121", "workspace.toml")],
    "bad-values": [("E123", "workspace.toml")],
    "not-utf8-toml": [("E121", "workspace.toml")],
    "toml-fifo": [("E530", "workspace.toml")],
}


def _tree(root: Path) -> dict[str, bytes]:
    """Every regular file outside the store, with its bytes (what no command may lose)."""
    found = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".dkb") or path.is_symlink() or not path.is_file():
            continue
        found[rel] = path.read_bytes()
    return found


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_every_command_ends_with_a_located_message(case: str, quiet_env: Path) -> None:
    root = write_tree(quiet_env / "ws", basic_files())
    BROKEN[case](root)
    before = _tree(root)
    outcomes = hostile.every_command(root, quiet_env / "out")
    assert not hostile.problems(outcomes), "\n".join(hostile.problems(outcomes))
    assert {o.command for o in outcomes} == set(hostile.commands())
    lint = next(o for o in outcomes if o.command == "lint")
    for code, file in LINT_SAYS[case]:
        assert any(code in line and file in line for line in lint.text.splitlines()), (code, file, lint.text)
    if case in ("bad-toml", "bad-values", "not-utf8-toml", "toml-fifo"):
        assert lint.code == 2
    # Nothing lost: every file is still there with its bytes (`init`/`config set` add or edit only
    # their own files).
    after = _tree(root)
    for rel, data in before.items():
        assert rel in after, rel
        if rel != "workspace.toml":
            assert after[rel] == data, rel


def test_unreadable_file_is_a_located_error_for_every_command(tmp_path: Path) -> None:
    """As a user that cannot read one file (root reads everything, so the child runs as nobody
    when this runs as root): exit 2 from every command that indexes, naming the file; no traceback."""
    base = Path(subprocess.check_output(["mktemp", "-d", "/tmp/dkb-unreadable-XXXXXX"], text=True).strip())
    try:
        root = write_tree(base / "ws", basic_files())
        secret = root / "pipelines/ingest/src/secret.py"
        secret.write_text("TOKEN = 1\n")
        private = root / "pipelines/publish/private"
        private.mkdir()
        (private / "key.pem").write_text("k\n")
        (base / "home").mkdir()
        env = {**os.environ, "HOME": str(base / "home"), "XDG_CONFIG_HOME": str(base / "home"),
               "PATH": str(tmp_path / "bin"), "PYTHONPATH": str(REPO)}
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
        as_user: list[str] = []
        if os.geteuid() == 0:
            nobody = 65534
            for path in [base, *base.rglob("*")]:
                os.lchown(path, nobody, nobody)
            tmp_path.chmod(0o755)
            for parent in tmp_path.parents:
                if parent.stat().st_mode & 0o005 != 0o005:
                    parent.chmod(parent.stat().st_mode | 0o005)
            as_user = [shutil.which("setpriv") or "setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups"]
        secret.chmod(0)
        private.chmod(0)
        base.chmod(0o755)
        done = subprocess.run([*as_user, sys.executable, "-m", "tests.hostile", str(root), str(base / "out")],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        outcomes = [hostile.Outcome(**o) for o in json.loads(done.stdout)]
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)
    assert not hostile.problems(outcomes), "\n".join(hostile.problems(outcomes))
    by_command = {o.command: o for o in outcomes}
    for command in ("lint", "build", "query", "graph", "lineage emit", "why"):
        o = by_command[command]
        assert o.code == 2 and "E530" in o.err and "pipelines/ingest/src/secret.py" in o.err, o
        assert "Permission denied" in o.err and ".dkbignore" in o.err, o
        assert "pipelines/publish/private/" in o.err and "cannot read directory" in o.err, o


def test_ignored_unreadable_file_is_not_read(quiet_env: Path) -> None:
    root = write_tree(quiet_env / "ws", {**basic_files(), ".dkbignore": "scratch/\n"})
    os.mkfifo(root / "scratch.fifo")
    (root / "scratch").mkdir()
    os.mkfifo(root / "scratch/pipe")
    code, out, err = hostile.run(["-C", str(root), "lint", "--output", "json"])
    assert code == 0, err
    warned = {(d["code"], d["file"]) for d in json.loads(out)["diagnostics"]}
    assert ("W530", "scratch.fifo") in warned and not any(f.startswith("scratch/") for _, f in warned)


def test_unknown_remote_cache_scheme_is_a_usage_error_naming_the_schemes(quiet_env: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_tree(quiet_env / "ws", basic_files())
    for given, source in ((["--remote-cache", "s3://cache.example/x"], "--remote-cache"),
                          ([], "DKB_REMOTE_CACHE")):
        if not given:
            monkeypatch.setenv("DKB_REMOTE_CACHE", "s3://bucket/cache")
        for command in ("build", "publish"):
            code, out, err = hostile.run(["-C", str(root), command, *given])
            assert code == 2 and "Traceback" not in err, err
            assert source in err and "unsupported remote cache scheme" in err and "oci://HOST" in err, err
    assert not (root / ".dkb" / "oci").exists()          # refused before any work
    with pytest.raises(RemoteCacheLocationError, match="oci://"):
        RemoteCacheSettings.resolve(None, False, False, False, "oci://", env={})


def test_a_file_changed_while_lint_reads_it_says_to_run_again(quiet_env: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the file changes between indexing and the read that checks its content."""
    from dkbuild.engine import target as target_module

    root = write_tree(quiet_env / "ws", {**basic_files(), "pipelines/ingest/schemas/event.json": '{"a": 1}\n'})
    original = target_module.BuildTarget.read

    def read_after_a_write(self: Any, rel: str) -> bytes:
        with open(self.package_dir / rel, "a") as fh:
            fh.write(" ")
        return original(self, rel)
    monkeypatch.setattr(target_module.BuildTarget, "read", read_after_a_write)
    code, out, err = hostile.run(["-C", str(root), "lint"])
    assert code == 2 and "Traceback" not in err, err
    assert "E531" in err and "pipelines/ingest/schemas/event.json" in err and "run the command again" in err
    # A build lints first, whose checks read the files again: the same error, nothing built.
    code, out, err = hostile.run(["-C", str(root), "build", "//pipelines/publish"])
    assert code == 2 and "Traceback" not in out + err, (out, err)
    assert "E531" in err and "pipelines/publish/src/main.py" in err and "run the command again" in err
    assert not (root / ".dkb" / "oci").exists()


def test_the_last_resort_is_one_line_and_exit_3(quiet_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dkbuild.cli.query as query_module

    root = write_tree(quiet_env / "ws", basic_files())
    monkeypatch.setattr(query_module, "load_workspace_graph", lambda *a, **k: 1 / 0)
    code, out, err = hostile.run(["-C", str(root), "query", "//..."])
    assert code == 3 and err.count("\n") == 1 and "Traceback" not in err
    assert "internal error: ZeroDivisionError" in err and "DKB_DEBUG=1" in err
    monkeypatch.setenv("DKB_DEBUG", "1")
    code, out, err = hostile.run(["-C", str(root), "query", "//..."])
    assert code == -2 and "ZeroDivisionError" in err          # the traceback escapes, for a bug report
    assert hostile.problems([hostile.Outcome("query", 3, "", "dkb: internal error: x")])   # and fails the test


# --- init: only where the package can be built ----------------------------------------------------

@pytest.mark.parametrize(("path", "says"), [
    (".dkb/evil", "inside .dkb/"), (".git/hooks/x", "inside .git/"), ("node_modules/pkg", "inside node_modules/"),
    ("store-dir/pkg", "cache directory"), ("pipelines/my pkg", "cannot be named by a label"),
    ("scratch/pkg", "ignored by .dkbignore"), ("linked/pkg", "is a symlink"),
    ("../outside", "not inside a dkb workspace"),
])
def test_init_refuses_a_package_that_could_never_be_built(path: str, says: str, quiet_env: Path) -> None:
    root = write_tree(quiet_env / "ws", {**basic_files(), ".dkbignore": "scratch/\n",
                                         "workspace.toml": '[cache]\ndir = "store-dir"\n'})
    (root / "real").mkdir()
    (root / "linked").symlink_to("real")
    before = _tree(root)
    code, out, err = hostile.run(["-C", str(root), "init", path, "--runtime", "generic-python"])
    assert code == 2 and says in err and "hint:" in err, (code, err)
    assert _tree(root) == before and not (root / path).exists() and not any((root / "real").iterdir())


def test_init_refuses_a_directory_git_ignores(quiet_env: Path) -> None:
    root = write_tree(quiet_env / "ws", {**basic_files(), ".gitignore": "generated/\n"})
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    code, out, err = hostile.run(["-C", str(root), "init", "generated/pkg", "--runtime", "generic-python"])
    assert code == 2 and "ignored by .gitignore" in err and not (root / "generated").exists(), err


def test_init_package_builds_where_it_is_allowed(quiet_env: Path) -> None:
    root = write_tree(quiet_env / "ws", basic_files())
    assert hostile.run(["-C", str(root), "init", "pipelines/fresh", "--runtime", "generic-python"])[0] == 0
    code, out, err = hostile.run(["-C", str(root), "query", "//pipelines/fresh"])
    assert code == 0 and "//pipelines/fresh" in out


# --- labels: nothing is printed that dkb could not parse back ---------------------------------------

def test_query_and_lineage_print_only_labels_dkb_parses(quiet_env: Path) -> None:
    from dkbuild.graph.labels import parse_pattern

    root = write_tree(quiet_env / "ws", basic_files())
    broken_graph(root)
    bad_manifests(root)
    code, out, err = hostile.run(["-C", str(root), "query", "deps(//...)"])
    assert code == 0, err
    printed = out.split()
    assert printed and all(parse_pattern(label.removeprefix("@external")) for label in printed)
    names = [label.split("//", 1)[1].partition(":")[2] for label in printed]
    assert not any(".." in name or "/" in name for name in names), printed
    code, out, err = hostile.run(["-C", str(root), "lineage", "emit", "--transport", "console"])
    assert code in (0, 1) and "../../etc" not in out and '"a/b"' not in out


# --- the workspace.toml template: uncommenting keeps every value -----------------------------------

def test_uncommenting_the_template_changes_no_setting() -> None:
    import tomllib

    from dkbuild.scaffold import render_workspace_toml

    text = "\n".join(line[2:] for line in render_workspace_toml().splitlines()
                     if line.startswith("# ") and ("=" in line or line.startswith("# [")) and "<string>" not in line)
    config = WorkspaceConfig.model_validate(tomllib.loads(text))
    defaults = WorkspaceConfig()
    for env in defaults.environments.order:
        assert config.environments.settings(env) == defaults.environments.settings(env), env
    assert config.environments.settings("prod").approvals == 2


@pytest.mark.parametrize(("toml", "field", "line", "fix"), [
    ('[environments.int]\napprovals = 1\n[environments.prod]\napprovals = -3\n', "environments.prod.approvals", 4,
     "at least 0"),
    ('[workspace]\nmax_manifest_bytes = -1\n', "workspace.max_manifest_bytes", 2, "at least 1"),
    ('[workspace]\npackages = ["pipelines/**", "../**"]\n', "workspace.packages.1", 2, "below the root"),
    ('[workspace]\npackages = []\n', "workspace.packages", 2, "remove the key"),
    ('[workspace]\nexclude = ["/abs/**"]\n', "workspace.exclude.0", 2, "write 'abs/**'"),
    ('[workspace]\npackages = ["./pipelines/**"]\n', "workspace.packages.0", 2, "write 'pipelines/**'"),
    ('[cache]\ndir = "."\n', "cache.dir", 2, "'.dkb'"),
    ('[cache]\nremote = "s3://c/x"\n', "cache.remote", 2, "oci://HOST"),
    ('[cache]\nmax_size = "lots"\n', "cache.max_size", 2, "'2G'"),
    ('[gitops]\npath = "../../etc"\n', "gitops.path", 2, "below the root"),
    ('[gitops]\nbranch = "a..b"\n', "gitops.branch", 2, "'main'"),
    ('[environments]\norder = ["dev", "dev"]\n', "environments.order", 2, "once"),
    ('[environments]\norder = []\n', "environments.order", 2, "list them"),
    ('[environments.prod]\ncell = "C 0"\n', "environments.prod.cell", 2, "a-z"),
    ('[lineage]\nurl = "marquez:5000"\n', "lineage.url", 2, "http://"),
    ('[registry]\nurl = "ftp://r.example/x"\n', "registry.url", 2, "oci://"),
    ('[policy]\nignore = ["E999"]\n', "policy.ignore", 2, "Lint codes"),
    ('[dev]\nbind_address = "everywhere"\n', "dev.bind_address", 2, "127.0.0.1"),
])
def test_workspace_toml_values_are_checked_with_line_key_and_fix(toml: str, field: str, line: int, fix: str) -> None:
    with pytest.raises(DkbError) as raised:
        parse_config(toml)
    (d,) = raised.value.diagnostics
    assert (d.file, d.code, d.field, d.line) == ("workspace.toml", "E123", field, line), d
    assert fix in d.hint, d.hint


def test_a_fifo_added_after_a_warm_lint_is_still_warned(quiet_env: Path) -> None:
    """Special files are part of the remembered workspace state, so a warm lint sees a new one."""
    root = write_tree(quiet_env / "ws", basic_files())
    assert hostile.run(["-C", str(root), "lint"])[0] == 0
    os.mkfifo(root / "pipelines/ingest/src/late.fifo")
    code, out, err = hostile.run(["-C", str(root), "lint"])
    assert code == 0 and "W530" in out and "pipelines/ingest/src/late.fifo" in out, out

"""`dkb run` for every runtime, dk's run flags, and Store secrets from the dev profile.

Real toolchains: dbt-core with dbt-duckdb (PyPI) on a DuckDB file, Go from Debian (`golang-go`),
dkb's own Python. Not installable here, so driven through executables named as fixtures: the
CloudQuery CLI (`fixture_cloudquery`), a container engine (`fixture_engine`, as `docker`) and
kubectl for --cell (`fixture_kubectl`). Every event is checked against the OpenLineage schemas.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from dkbuild.governance.values import parse_go_duration
from tests.conftest import API, EXAMPLE, dataset, transform
from tests.openlineage_validation import validate_event

SECRET = "pw-0f9d!s3cr3t"          # must never be printed, written or sent
VENV_BIN = str(Path(sys.executable).parent)


# --- helpers -------------------------------------------------------------------------------------

def only_tools(tmp_path: Path, *tools: str) -> str:
    """A PATH holding just these tools (symlinks to the real ones) and git."""
    bin_dir = tmp_path / "only-bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("git", *tools):
        real = shutil.which(tool)
        assert real, f"{tool} must be installed for this test (scripts/system-deps.sh)"
        link = bin_dir / tool
        if not link.exists():
            link.symlink_to(real)
    return str(bin_dir)


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def events_of(root: Path) -> list[dict[str, Any]]:
    path = root / ".dkb" / "lineage" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def assert_run(events: list[dict[str, Any]], types: list[str], job: str, runs: int = 1) -> None:
    """The events of `runs` consecutive runs of `job`: in order, schema-valid, one run id per run."""
    assert [e["eventType"] for e in events] == types
    for event in events:
        validate_event(event)
        assert event["job"]["name"] == job
    per_run = len(events) // runs
    for i in range(runs):
        assert len({e["run"]["runId"] for e in events[i * per_run:(i + 1) * per_run]}) == 1
    assert len({e["run"]["runId"] for e in events}) == runs


def no_secret_anywhere(root: Path, *texts: str) -> None:
    for text in texts:
        assert SECRET not in text
    for path in (root / ".dkb").rglob("*"):
        if path.is_file() and path.name != "profile.toml":
            assert SECRET.encode() not in path.read_bytes(), path


def store_doc(name: str, connector: str, connection: dict[str, Any], secrets: dict[str, str] | None = None):
    return {"apiVersion": API, "kind": "Store", "metadata": {"name": name},
            "spec": {"connector": connector, "connection": connection, **({"secrets": secrets} if secrets else {})}}


def connector_doc(name: str, type_: str, plugin: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Connector", "metadata": {"name": name},
            "spec": {"type": type_, "capabilities": ["source", "destination"], **({"plugin": plugin} if plugin else {})}}


PY_JOB = '''\
import json, os, sys
seen = {k: v for k, v in os.environ.items() if k.startswith(("DK_STORE_", "JOB_", "TEST_"))}
open(os.environ["JOB_REPORT"], "w").write(json.dumps({"env": seen, "argv": sys.argv[1:]}))
sys.exit(int(os.environ.get("JOB_EXIT", "0")))
'''


def py_workspace(workspace, tmp_path: Path, **spec: Any) -> Path:
    env = [{"name": "JOB_REPORT", "value": str(tmp_path / "report.json")}, {"name": "JOB_MODE", "value": "spec"},
           *spec.pop("env", [])]
    return workspace({
        "platform/connectors/postgres/dk.yaml": connector_doc("postgres", "postgres"),
        "platform/stores/crm-db/dk.yaml": store_doc("crm-db", "postgres", {"host": "db.internal", "database": "crm",
                                                                         "user": "svc"},
                                                    {"password": "${TEST_CRM_PASSWORD}"}),
        "datasets/customers/dk.yaml": dataset("customers", "crm-db"),
        "datasets/landed/dk.yaml": dataset("landed", "crm-db"),
        "pipelines/job/dk.yaml": transform("job", ["customers"], ["landed"], env=env, **spec),
        "pipelines/job/src/jobmod/__init__.py": "",
        "pipelines/job/src/jobmod/main.py": PY_JOB,
    })


def report(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "report.json").read_text())


def no_secret_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "TEST_CRM_PASSWORD"}


# --- Go's duration syntax (dk's --timeout) ---------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("30m", 1800.0), ("1h30m", 5400.0), ("90s", 90.0), ("500ms", 0.5), ("1.5h", 5400.0), ("2h45m30s", 9930.0),
    ("0", 0.0), ("-1m", -60.0), ("+2s", 2.0), (".5s", 0.5), ("1us", 1e-6), ("3µs", 3e-6), ("10ns", 1e-8),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["30", "1d", "m", "", "1h 30m", "1.h.m", "1hm", "ms1", "--1s", "1H"])
def test_not_go_durations(text: str) -> None:
    assert parse_go_duration(text) is None


def test_timeout_flag_takes_dk_durations_and_rejects_bare_numbers(workspace, dkb, tmp_path) -> None:
    root = py_workspace(workspace, tmp_path, timeout="20m")
    env = {"TEST_CRM_PASSWORD": SECRET}
    for flag, seconds in (("30m", 1800), ("1h30m", 5400), ("90s", 90), ("500ms", 0.5)):
        doc = dkb("run", "//pipelines/job", "--dry-run", "--timeout", flag, "-o", "json", cwd=root, env=env).json()
        assert doc["timeout_seconds"] == seconds
    assert dkb("run", "//pipelines/job", "--dry-run", "-o", "json", cwd=root, env=env).json()["timeout_seconds"] == 1200
    bad = dkb("run", "//pipelines/job", "--dry-run", "--timeout", "30", cwd=root, env=env)
    assert bad.code == 2 and "30m" in bad.err and "Traceback" not in bad.err


def test_timeout_kills_the_whole_process_group(workspace, dkb, tmp_path) -> None:
    marker = tmp_path / "grandchild-survived"
    job = textwrap.dedent(f'''\
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2); open({str(marker)!r}, 'w')"])
        time.sleep(60)
        ''')
    root = workspace({
        "pipelines/sleeper/dk.yaml": transform("sleeper", ["raw"], ["clean"]),
        "pipelines/sleeper/src/sleeper/__init__.py": "",
        "pipelines/sleeper/src/sleeper/main.py": job,
    })
    result = dkb("run", "//pipelines/sleeper", "--timeout", "700ms", "--heartbeat", "0", cwd=root)
    assert result.code == 124, result
    assert_run(events_of(root), ["START", "FAIL"], "sleeper")
    assert "timed out" in events_of(root)[-1]["run"]["facets"]["errorMessage"]["message"]
    time.sleep(2.5)                     # the grandchild would have written by now had it survived
    assert not marker.exists()


# --- -e, --set, -f ---------------------------------------------------------------------------------

def test_env_flag_reaches_the_package_and_wins(workspace, dkb, tmp_path) -> None:
    root = py_workspace(workspace, tmp_path)
    result = dkb("run", "//pipelines/job", "-e", "JOB_MODE=flag", "-e", "TEST_EXTRA=a=b", cwd=root,
                 env={"TEST_CRM_PASSWORD": SECRET})
    assert result.code == 0, result
    assert report(tmp_path)["env"]["JOB_MODE"] == "flag"
    assert report(tmp_path)["env"]["TEST_EXTRA"] == "a=b"          # only the first '=' splits
    bad = dkb("run", "//pipelines/job", "-e", "NOVALUE", cwd=root, env={"TEST_CRM_PASSWORD": SECRET})
    assert bad.code == 2 and "KEY=VALUE" in bad.err


def test_env_flag_can_provide_a_secret_and_is_masked(workspace, dkb, tmp_path) -> None:
    root = py_workspace(workspace, tmp_path)
    result = dkb("run", "//pipelines/job", "-e", f"TEST_CRM_PASSWORD={SECRET}", "--dry-run", cwd=root,
                 env=no_secret_env())
    assert result.code == 0, result
    assert "TEST_CRM_PASSWORD (set)" in result.out and SECRET not in result.out + result.err


def test_set_and_values_files_override_the_manifest_for_this_run_only(workspace, dkb, tmp_path) -> None:
    root = py_workspace(workspace, tmp_path)
    manifest = root / "pipelines" / "job" / "dk.yaml"
    before = manifest.read_bytes()
    values = tmp_path / "override.yaml"
    values.write_text("spec:\n  timeout: 2h\n  env:\n"
                      f"    - {{name: JOB_REPORT, value: {tmp_path / 'report.json'}}}\n"
                      "    - {name: JOB_MODE, value: file}\n    - {name: JOB_EXIT, value: '4'}\n")
    result = dkb("run", "//pipelines/job", "-f", str(values), "--set", "spec.env[2].value=0",
                 "--set", "spec.env[3].name=TEST_ADDED", "--set", "spec.env[3].value=yes",
                 "--set", "metadata.labels.tier=gold", "-o", "json", cwd=root, env={"TEST_CRM_PASSWORD": SECRET})
    assert result.code == 0, result                 # --set (JOB_EXIT=0) applies after the file (4)
    doc = result.json()
    assert doc["timeout_seconds"] == 7200
    assert report(tmp_path)["env"]["JOB_MODE"] == "file"
    assert report(tmp_path)["env"]["TEST_ADDED"] == "yes"
    listed = dkb("run", "//pipelines/job", "--dry-run", "--set", "spec.command=python", cwd=root,
                 env={"TEST_CRM_PASSWORD": SECRET})
    assert listed.code == 2 and "spec.command" in listed.err      # a list in dk.yaml stays a list
    assert manifest.read_bytes() == before          # dk rewrites dk.yaml; dkb never does


def test_bad_overrides_are_clear_errors(workspace, dkb, tmp_path) -> None:
    root = py_workspace(workspace, tmp_path)
    env = {"TEST_CRM_PASSWORD": SECRET}
    typo = dkb("run", "//pipelines/job", "--dry-run", "--set", "timeout=1h", cwd=root, env=env)
    assert typo.code == 2 and "did you mean spec.timeout" in typo.err
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec:\n  timeout: [1h\n")
    result = dkb("run", "//pipelines/job", "--dry-run", "-f", str(broken), cwd=root, env=env)
    assert result.code == 2 and "broken.yaml:" in result.err and "Traceback" not in result.err
    wrong_type = dkb("run", "//pipelines/job", "--dry-run", "--set", "spec.replicas=many", cwd=root, env=env)
    assert wrong_type.code == 2 and "spec.replicas" in wrong_type.err
    assert dkb("run", "//pipelines/job", "--dry-run", "-f", str(tmp_path / "nope.yaml"), cwd=root, env=env).code == 2


# --- secrets: environment, then dev profile, then a clear error -------------------------------------

def test_secret_order_environment_then_dev_profile_then_error(workspace, dkb, tmp_path) -> None:
    root = py_workspace(workspace, tmp_path)
    missing = dkb("run", "//pipelines/job", cwd=root, env=no_secret_env())
    assert missing.code == 2
    assert "TEST_CRM_PASSWORD" in missing.err and "export" in missing.err.lower()
    assert "dkb config set --dev secrets.TEST_CRM_PASSWORD" in missing.err
    assert events_of(root) == []

    assert dkb("config", "set", "--dev", "secrets.TEST_CRM_PASSWORD", SECRET, cwd=root).code == 0
    profile = root / ".dkb" / "dev" / "profile.toml"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert (profile.parent / ".gitignore").read_text().strip().endswith("*")
    from_profile = dkb("run", "//pipelines/job", cwd=root, env=no_secret_env())
    assert from_profile.code == 0, from_profile
    assert "s3cr3t" in report(tmp_path)["env"]["DK_STORE_DSN_CRM_DB"]
    assert report(tmp_path)["env"]["TEST_CRM_PASSWORD"] == SECRET      # exported for tools that read it

    from_env = dkb("run", "//pipelines/job", cwd=root, env={"TEST_CRM_PASSWORD": "from-env"})
    assert from_env.code == 0
    assert "from-env" in report(tmp_path)["env"]["DK_STORE_DSN_CRM_DB"]
    assert_run(events_of(root), ["START", "COMPLETE"] * 2, "job", runs=2)
    no_secret_anywhere(root, missing.err, from_profile.out, from_profile.err, json.dumps(events_of(root)))


def test_dev_profile_command_writes_the_template_or_a_skeleton(workspace, dkb, tmp_path) -> None:
    root = py_workspace(workspace, tmp_path)
    skeleton = dkb("dev", "profile", "-o", "json", cwd=root)
    assert skeleton.code == 0, skeleton
    assert skeleton.json()["written_from"] == "skeleton"
    assert skeleton.json()["secrets_missing"] == ["TEST_CRM_PASSWORD"]
    text = (root / ".dkb" / "dev" / "profile.toml").read_text()
    assert "TEST_CRM_PASSWORD" in text and 'store "crm-db"' in text
    assert dkb("dev", "profile", "-o", "json", cwd=root).json()["written_from"] == "kept"

    (root / "dev-profile.template.toml").write_text(f'[secrets]\nTEST_CRM_PASSWORD = "{SECRET}"\n')
    assert dkb("dev", "profile", "--force", cwd=root).code == 0
    assert dkb("run", "//pipelines/job", cwd=root, env=no_secret_env()).code == 0


def test_template_is_used_until_a_profile_exists(workspace, dkb, tmp_path) -> None:
    root = py_workspace(workspace, tmp_path)
    (root / "dev-profile.template.toml").write_text(f'[secrets]\nTEST_CRM_PASSWORD = "{SECRET}"\n')
    result = dkb("run", "//pipelines/job", cwd=root, env=no_secret_env())
    assert result.code == 0, result
    assert "dev-profile.template.toml" in result.err and not (root / ".dkb" / "dev" / "profile.toml").exists()


@pytest.mark.parametrize("text, line, words", [
    ('[secrets]\nA = "x"\nB = 3\n', 3, "secrets.B"),
    ('[secrets]\nA = "x\n', 2, "not valid TOML"),
    ('[oops]\nA = 1\n', 1, "unknown section [oops]"),
    ('[stores.lake]\nconnection = { path = "x" }\n', 1, "connector"),
])
def test_broken_dev_profile_names_file_line_and_fix(workspace, dkb, tmp_path, text, line, words) -> None:
    root = py_workspace(workspace, tmp_path)
    profile = root / ".dkb" / "dev" / "profile.toml"
    profile.parent.mkdir(parents=True)
    profile.write_text(text)
    result = dkb("run", "//pipelines/job", "--dry-run", cwd=root)
    assert result.code == 2
    assert f"profile.toml:{line}:" in result.err and words in result.err and "hint" in result.err
    assert "Traceback" not in result.err


def test_config_dev_rejects_unknown_keys(workspace, dkb, tmp_path) -> None:
    root = py_workspace(workspace, tmp_path)
    result = dkb("config", "set", "--dev", "registry.url", "x", cwd=root)
    assert result.code == 2 and "secrets.VAR" in result.err
    assert dkb("config", "set", "--dev", "stores.crm-db.connector", "duckdb", cwd=root).code == 0
    assert dkb("config", "set", "--dev", "secrets.TEST_CRM_PASSWORD", SECRET, cwd=root).code == 0
    listed = dkb("config", "list", "--dev", "-o", "json", cwd=root)
    assert listed.code == 0 and SECRET not in listed.out
    assert {e["key"]: e["value"] for e in listed.json()["settings"]} == {
        "secrets.TEST_CRM_PASSWORD": "***", "stores.crm-db.connector": "duckdb"}
    assert dkb("config", "unset", "--dev", "stores.crm-db.connector", cwd=root).code == 0
    assert "stores" not in (root / ".dkb" / "dev" / "profile.toml").read_text()


# --- --cell ----------------------------------------------------------------------------------------

def test_cell_reads_stores_with_kubectl(workspace, dkb, tmp_path) -> None:
    root = py_workspace(workspace, tmp_path)
    calls = tmp_path / "kubectl-calls"
    store = {"metadata": {"name": "crm-db", "namespace": "dk-canary"},
             "spec": {"connector": "postgres", "connection": {"host": "canary-db", "database": "crm", "user": "c"},
                      "secrets": {"password": "${TEST_CRM_PASSWORD}"}}}
    bin_dir = tmp_path / "kubectl-bin"
    executable(bin_dir / "kubectl", textwrap.dedent(f'''\
        #!{sys.executable}
        # fixture_kubectl: answers `get store crm-db -n dk-canary -o json` like a cluster with dk's CRDs
        import json, sys
        open({str(calls)!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
        if sys.argv[-5:] == ["crm-db", "-n", "dk-canary", "-o", "json"]:
            print(json.dumps({store!r}))
        else:
            sys.stderr.write('Error from server (NotFound): stores "crm-db" not found\\n'); sys.exit(1)
        '''))
    env = {"TEST_CRM_PASSWORD": SECRET, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = dkb("run", "//pipelines/job", "--cell", "canary", "--kube-context", "k3d-x", cwd=root, env=env)
    assert result.code == 0, result
    assert report(tmp_path)["env"]["DK_STORE_DSN_CRM_DB"].startswith("postgresql://c:")
    assert "@canary-db:5432/crm" in report(tmp_path)["env"]["DK_STORE_DSN_CRM_DB"]
    assert calls.read_text().split() == ["--context", "k3d-x", "get", "store", "crm-db", "-n", "dk-canary",
                                         "-o", "json"]
    other = dkb("run", "//pipelines/job", "--cell", "stable", cwd=root, env=env)
    assert other.code == 2 and 'not found in cell "stable"' in other.err
    nokubectl = dkb("run", "//pipelines/job", "--cell", "canary", cwd=root,
                    env={"TEST_CRM_PASSWORD": SECRET, "PATH": only_tools(tmp_path)})
    assert nokubectl.code == 2 and "kubectl" in nokubectl.err


# --- generic-go, for real --------------------------------------------------------------------------

GO_MAIN = '''\
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	fmt.Println("go job ran with", os.Getenv("GO_GREETING"), "args", os.Args[1:])
	if os.Getenv("DK_STORE_TYPE_LAKE") != "" {
		fmt.Println("store type", os.Getenv("DK_STORE_TYPE_LAKE"))
	}
	code, _ := strconv.Atoi(os.Getenv("GO_EXIT"))
	os.Exit(code)
}
'''


def go_workspace(workspace, main: str = GO_MAIN) -> Path:
    return workspace({
        "pipelines/gojob/dk.yaml": transform("gojob", ["raw"], ["clean"], runtime="generic-go",
                                             command=["/app/pipeline"],
                                             env=[{"name": "GO_GREETING", "value": "hello"}]),
        "pipelines/gojob/go.mod": "module example.test/gojob\n\ngo 1.19\n",
        "pipelines/gojob/main.go": main,
    })


def test_generic_go_builds_and_runs_with_go(workspace, dkb, tmp_path) -> None:
    root = go_workspace(workspace)
    env = {"PATH": only_tools(tmp_path, "go"), "HOME": os.environ.get("HOME", str(tmp_path))}
    result = dkb("run", "//pipelines/gojob", "--", "--limit", "2", cwd=root, env=env)
    assert result.code == 0, result
    assert "go job ran with hello args [--limit 2]" in result.out
    assert "store type postgres" in result.out
    assert_run(events_of(root), ["START", "COMPLETE"], "gojob")
    failing = dkb("run", "//pipelines/gojob", "-e", "GO_EXIT=3", cwd=root, env=env)
    assert failing.code == 3                           # the program's own code, not `go run`'s 1
    assert events_of(root)[-1]["eventType"] == "FAIL"
    assert "3" in events_of(root)[-1]["run"]["facets"]["errorMessage"]["message"]
    assert sorted(os.listdir(root / "pipelines" / "gojob")) == ["dk.yaml", "go.mod", "main.go"]   # binary under .dkb/


def test_go_build_failure_is_a_fail_event(workspace, dkb, tmp_path) -> None:
    root = go_workspace(workspace, "package main\n\nfunc main() { undefined() }\n")
    result = dkb("run", "//pipelines/gojob", cwd=root, env={"PATH": only_tools(tmp_path, "go")})
    assert result.code != 0
    assert_run(events_of(root), ["START", "FAIL"], "gojob")
    assert "go build failed" in events_of(root)[-1]["run"]["facets"]["errorMessage"]["message"]
    assert "undefined" in result.err                  # the compiler's own message reaches the user


def test_missing_toolchain_and_no_engine_is_one_error_naming_what_to_install(workspace, dkb, tmp_path) -> None:
    root = go_workspace(workspace)
    result = dkb("run", "//pipelines/gojob", cwd=root, env={"PATH": only_tools(tmp_path)})
    assert result.code == 2
    assert "go is not on PATH" in result.err and "golang-go" in result.err and "Podman" in result.err
    assert result.err.count("dkb: error:") == 1 and events_of(root) == []


# --- container engine (fixture) --------------------------------------------------------------------

def fixture_engine(tmp_path: Path) -> tuple[str, Path]:
    """fixture_engine: a `docker` that answers `info` and records `run`'s argv and the values of the
    `-e NAME` variables it was given, then exits with CONTAINER_EXIT."""
    record = tmp_path / "engine-record.json"
    bin_dir = tmp_path / "engine-bin"
    executable(bin_dir / "docker", textwrap.dedent(f'''\
        #!{sys.executable}
        import json, os, sys
        args = sys.argv[1:]
        if args[:1] == ["info"]:
            sys.exit(0)
        if args[:1] == ["run"]:
            names = [args[i + 1] for i, a in enumerate(args) if a == "-e"]
            json.dump({{"argv": args, "env": {{n: os.environ.get(n) for n in names}}}}, open({str(record)!r}, "w"))
            print("container ran")
            sys.exit(int(os.environ.get("CONTAINER_EXIT", "0")))
        sys.exit(0)
        '''))
    return f"{bin_dir}{os.pathsep}{only_tools(tmp_path)}", record


def test_container_mode_passes_env_by_name_only(workspace, dkb, tmp_path) -> None:
    root = py_workspace(workspace, tmp_path, image="registry.test/job:1.0.0")
    path, record = fixture_engine(tmp_path)
    result = dkb("run", "//pipelines/job", "--container", "--", "--x", cwd=root,
                 env={"PATH": path, "TEST_CRM_PASSWORD": SECRET})
    assert result.code == 0, result
    seen = json.loads(record.read_text())
    argv = seen["argv"]
    assert argv[:2] == ["run", "--rm"] and "registry.test/job:1.0.0" in argv and argv[-1] == "--x"
    assert f"{root / 'pipelines' / 'job'}:/app/package:ro" in argv
    assert SECRET not in " ".join(argv) and "s3cr3t" in seen["env"]["DK_STORE_DSN_CRM_DB"]
    assert seen["env"]["JOB_MODE"] == "spec"
    assert_run(events_of(root), ["START", "COMPLETE"], "job")
    failing = dkb("run", "//pipelines/job", "--container", cwd=root,
                  env={"PATH": path, "TEST_CRM_PASSWORD": SECRET, "CONTAINER_EXIT": "5"})
    assert failing.code == 5 and events_of(root)[-1]["eventType"] == "FAIL"


def test_without_toolchain_the_image_runs_in_the_engine(workspace, dkb, tmp_path) -> None:
    root = go_workspace(workspace)
    path, record = fixture_engine(tmp_path)
    result = dkb("run", "//pipelines/gojob", cwd=root, env={"PATH": path})
    assert result.code == 0, result
    assert "go not on PATH" in result.err and "docker" in result.err
    argv = json.loads(record.read_text())["argv"]
    assert argv[-2:] == ["registry.test/gojob:1.0.0", "/app/pipeline"]
    assert_run(events_of(root), ["START", "COMPLETE"], "gojob")


# --- cloudquery (fixture CLI) ----------------------------------------------------------------------

def cq_workspace(workspace) -> Path:
    return workspace({
        "platform/connectors/postgres/dk.yaml": connector_doc(
            "postgres", "postgres", {"source": "ghcr.io/cloudquery/cq-source-postgresql:v8.0.0",
                                     "destination": "ghcr.io/cloudquery/cq-destination-postgresql:v8.0.0"}),
        "platform/connectors/aws-s3/dk.yaml": connector_doc(
            "aws-s3", "s3", {"destination": "ghcr.io/cloudquery/cq-destination-s3:v7.6.1"}),
        "platform/stores/crm-db/dk.yaml": store_doc("crm-db", "postgres", {"host": "db", "database": "crm"},
                                                    {"password": "${TEST_CRM_PASSWORD}"}),
        "platform/stores/lake/dk.yaml": store_doc("lake", "aws-s3", {"bucket": "raw"}),
        "datasets/crm-customers/dk.yaml": dataset("crm-customers", "crm-db", table="public.customers"),
        "datasets/customers/dk.yaml": dataset("customers", "lake", table=None, prefix="crm/customers/",
                                              format="parquet"),
        "pipelines/sync/dk.yaml": transform("sync", ["crm-customers"], ["customers"], runtime="cloudquery"),
    })


def test_cloudquery_sync_spec_and_cli_call(workspace, dkb, tmp_path) -> None:
    root = cq_workspace(workspace)
    record = tmp_path / "cq-record.json"
    bin_dir = tmp_path / "cq-bin"
    executable(bin_dir / "cloudquery", textwrap.dedent(f'''\
        #!{sys.executable}
        # fixture_cloudquery: records its argv, the spec it was given and its environment's secret
        import json, os, sys
        spec = open(sys.argv[2]).read()
        json.dump({{"argv": sys.argv[1:], "spec": spec, "password": os.environ.get("TEST_CRM_PASSWORD")}},
                  open({str(record)!r}, "w"))
        '''))
    (root / "dev-profile.template.toml").write_text(f'[secrets]\nTEST_CRM_PASSWORD = "{SECRET}"\n')
    result = dkb("run", "//pipelines/sync", cwd=root,
                 env={"PATH": f"{bin_dir}{os.pathsep}{only_tools(tmp_path)}"})
    assert result.code == 0, result
    seen = json.loads(record.read_text())
    assert seen["argv"][0] == "sync" and seen["argv"][2] == "--log-console"
    assert seen["password"] == SECRET                  # CloudQuery expands ${VAR} from its environment
    docs = [json.loads(d) for d in seen["spec"].split("---\n")]
    source, destination = docs
    assert source["kind"] == "source" and source["spec"]["path"] == "ghcr.io/cloudquery/cq-source-postgresql:v8.0.0"
    assert source["spec"]["tables"] == ["public.customers"] and source["spec"]["destinations"] == ["aws-s3"]
    assert source["spec"]["spec"]["password"] == "${TEST_CRM_PASSWORD}"
    assert destination["spec"]["spec"]["path"] == "crm/customers/{{TABLE}}/{{UUID}}.{{FORMAT}}"
    assert destination["spec"]["spec"]["format"] == "parquet"
    assert_run(events_of(root), ["START", "COMPLETE"], "sync")
    no_secret_anywhere(root, result.out, result.err)


def test_cloudquery_without_cli_or_engine_names_what_to_install(workspace, dkb, tmp_path) -> None:
    root = cq_workspace(workspace)
    result = dkb("run", "//pipelines/sync", cwd=root,
                 env={"PATH": only_tools(tmp_path), "TEST_CRM_PASSWORD": SECRET})
    assert result.code == 2
    assert "CloudQuery CLI" in result.err and "Docker" in result.err and "Podman" in result.err
    assert events_of(root) == []


# --- dbt on DuckDB, for real -----------------------------------------------------------------------

DBT_PROJECT = {
    "dbt_project.yml": "name: shop\nversion: '1.0.0'\nconfig-version: 2\nprofile: shop_wh\nmodel-paths: [models]\n",
    "models/sources.yml": "version: 2\nsources:\n  - name: staging\n    schema: staging\n    tables:\n"
                          "      - name: orders\n",
    "models/revenue.sql": "select customer_id, sum(amount) as total, count(*) as orders\n"
                          "from {{ source('staging', 'orders') }}\nwhere status = 'paid'\ngroup by customer_id\n",
}


def dbt_workspace(workspace, warehouse: dict[str, Any], sql: str | None = None) -> Path:
    files: dict[str, Any] = {
        "platform/stores/warehouse/dk.yaml": warehouse,
        "datasets/orders/dk.yaml": dataset("orders", "warehouse", [
            {"name": "customer_id", "type": "integer"}, {"name": "amount", "type": "decimal"},
            {"name": "status", "type": "string"}], table="staging.orders"),
        "datasets/revenue/dk.yaml": dataset("revenue", "warehouse", table="main.revenue"),
        "pipelines/shop/dk.yaml": transform("shop", ["orders"], ["revenue"], runtime="dbt",
                                            env=[{"name": "DBT_TARGET", "value": "local"}]),
    }
    files.update({f"pipelines/shop/{k}": v for k, v in DBT_PROJECT.items()})
    if sql is not None:
        files["pipelines/shop/models/revenue.sql"] = sql
    return workspace(files)


def dbt_env(**extra: str) -> dict[str, str]:
    return {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **extra}


def test_dbt_runs_on_duckdb_and_builds_the_model(workspace, dkb, tmp_path) -> None:
    import duckdb

    db = tmp_path / "wh.duckdb"
    root = dbt_workspace(workspace, store_doc("warehouse", "duckdb", {"path": str(db)}))
    result = dkb("run", "//pipelines/shop", cwd=root, env=dbt_env())
    assert result.code == 0, result
    assert "created empty input table(s) staging.orders" in result.err
    with duckdb.connect(str(db)) as con:
        assert con.execute("select count(*) from main.revenue").fetchone() == (0,)
        con.execute("insert into staging.orders values (1, 10.5, 'paid'), (1, 4.5, 'paid'), (2, 7, 'refunded'),"
                    " (3, 1, 'paid')")
    again = dkb("run", "//pipelines/shop", cwd=root, env=dbt_env())
    assert again.code == 0, again
    with duckdb.connect(str(db)) as con:
        rows = con.execute("select customer_id, total, orders from main.revenue order by 1").fetchall()
    assert [(c, float(t), n) for c, t, n in rows] == [(1, 15.0, 2), (3, 1.0, 1)]
    assert_run(events_of(root), ["START", "COMPLETE"] * 2, "shop", runs=2)
    profile = root / ".dkb" / "run" / "pipelines" / "shop" / "profiles.yml"
    assert json.loads(profile.read_text())["shop_wh"]["outputs"]["local"]["type"] == "duckdb"
    package = root / "pipelines" / "shop"
    assert not (package / "target").exists() and not (package / "logs").exists()


def test_dbt_model_error_is_a_fail_event(workspace, dkb, tmp_path) -> None:
    root = dbt_workspace(workspace, store_doc("warehouse", "duckdb", {"path": str(tmp_path / "wh.duckdb")}),
                         sql="select nope from {{ source('staging', 'orders') }}\n")
    result = dkb("run", "//pipelines/shop", cwd=root, env=dbt_env())
    assert result.code == 1, result
    assert_run(events_of(root), ["START", "FAIL"], "shop")


def test_dbt_profile_refers_to_secrets_and_names_the_missing_adapter(workspace, dkb, tmp_path) -> None:
    from dkbuild.lineage.runtimes.dbt import profiles_yml
    from dkbuild.lineage.storeenv import ResolvedStore

    store = ResolvedStore("warehouse", "WAREHOUSE", "postgres", {"host": "wh", "database": "an", "user": "u"},
                          {"password": "${WH_PASSWORD}"})
    out = json.loads(profiles_yml("p", "prod", store))["p"]["outputs"]["prod"]
    assert out["password"] == "{{ env_var('WH_PASSWORD') }}" and out["dbname"] == "an" and out["port"] == 5432

    root = dbt_workspace(workspace, store_doc("warehouse", "postgres", {"host": "wh", "database": "an"},
                                              {"password": "${TEST_CRM_PASSWORD}"}))
    result = dkb("run", "//pipelines/shop", cwd=root, env=dbt_env(TEST_CRM_PASSWORD=SECRET))
    assert result.code == 2
    assert "dbt-postgres" in result.err and "pip install" in result.err and SECRET not in result.err
    assert events_of(root) == []


# --- every example package, on the embedded defaults -------------------------------------------------

CLOUDQUERY_EXAMPLES = ("clickstream-landing", "crm-sync", "orders-replicate")


def test_every_example_package_runs_after_dkb_dev_profile(dkb, tmp_path) -> None:
    root = tmp_path / "monorepo"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".dkb"))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "LAKE_", "WAREHOUSE_", "EVENTS_"))}
    written = dkb("dev", "profile", cwd=root, env=clean)
    assert written.code == 0 and "dev-profile.template.toml" in written.err, written
    template_values = [line.split('"')[1] for line in (root / "dev-profile.template.toml").read_text().splitlines()
                       if line[:1].isupper() and line.count('"') == 2]
    assert template_values
    packages = sorted(p.name for p in (root / "pipelines").iterdir() if (p / "dk.yaml").is_file())
    assert len(packages) == 10
    local_path = f"{VENV_BIN}{os.pathsep}{only_tools(tmp_path, 'go')}"
    seen = 0
    for name in packages:
        env = {**clean, "PATH": local_path, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        result = dkb("run", f"//pipelines/{name}", "--heartbeat", "0", cwd=root, env=env)
        assert not any(value in result.out + result.err for value in template_values), name
        if name in CLOUDQUERY_EXAMPLES:
            # no CloudQuery CLI and no container engine on this PATH: one clear error, nothing sent
            assert result.code == 2, (name, result)
            assert result.err.count("dkb: error:") == 1
            assert "CloudQuery CLI" in result.err or "CloudQuery" in result.err, result.err
            continue
        assert result.code == 0, (name, result)
        events = events_of(root)[seen:]
        assert_run(events, ["START", "COMPLETE"], name)
        seen += len(events)
    assert seen == 2 * (len(packages) - len(CLOUDQUERY_EXAMPLES))
    import duckdb

    with duckdb.connect(str(root / ".dkb" / "dev" / "warehouse.duckdb")) as con:   # what the dbt projects built
        tables = {f"{s}.{t}" for s, t in con.execute("select table_schema, table_name from information_schema.tables")
                  .fetchall()}
    assert {"marts.customer_ltv", "marts.daily_revenue", "staging.orders", "staging.products"} <= tables
    for path in (root / ".dkb").rglob("*"):
        if path.is_file() and path.suffix not in (".duckdb", ".wal") and path.name != "profile.toml":
            text = path.read_bytes()
            assert not any(v.encode() in text for v in template_values), path

"""Shared fixtures: real temp workspaces written from small manifest builders, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "monorepo"
API = "datakit.infoblox.dev/v1alpha1"


def transform(name: str, inputs: list[str], outputs: list[str], **spec: Any) -> dict[str, Any]:
    body = {"runtime": "generic-python", "image": f"registry.test/{name}:1.0.0",
            "inputs": [{"dataset": d} for d in inputs], "outputs": [{"dataset": d} for d in outputs],
            "trigger": {"policy": "manual"}}
    body.update(spec)
    return {"apiVersion": API, "kind": "Transform", "metadata": {"name": name, "version": "1.0.0"}, "spec": body}


def dataset(name: str, store: str = "lake", columns: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    body = {"store": store, "table": name.replace("-", "_"), "classification": "internal",
            "schema": columns if columns is not None else [{"name": "id", "type": "integer"}]}
    body.update(spec)
    return {"apiVersion": API, "kind": "DataSet", "metadata": {"name": name}, "spec": body}


def store(name: str, connector: str = "postgres") -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Store", "metadata": {"name": name},
            "spec": {"connector": connector, "connection": {"host": "db.internal", "port": 5432}}}


def connector(name: str = "postgres") -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Connector", "metadata": {"name": name},
            "spec": {"type": name, "capabilities": ["source", "destination"]}}


def dump(*docs: dict[str, Any]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)


def write_tree(root: Path, files: dict[str, str | dict[str, Any] | list[dict[str, Any]]]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            content = dump(content)
        elif isinstance(content, list):
            content = dump(*content)
        path.write_text(textwrap.dedent(content) if content.startswith("\n") else content)
    return root


def basic_files() -> dict[str, Any]:
    """A small valid workspace: two transforms in a chain over shared datasets."""
    return {
        "workspace.toml": "[workspace]\nname = \"test\"\n",
        "platform/connectors/postgres/dk.yaml": connector(),
        "platform/stores/lake/dk.yaml": store("lake"),
        "datasets/raw/dk.yaml": dataset("raw"),
        "datasets/clean/dk.yaml": dataset("clean"),
        "datasets/report/dk.yaml": dataset("report"),
        "pipelines/ingest/dk.yaml": transform("ingest", ["raw"], ["clean"]),
        "pipelines/ingest/src/main.py": "print('ingest')\n",
        "pipelines/publish/dk.yaml": transform("publish", ["clean"], ["report"]),
        "pipelines/publish/src/main.py": "print('publish')\n",
    }


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[..., Path]:
    """workspace(extra_files, base=True) -> root of a fresh workspace on disk."""
    def make(files: dict[str, Any] | None = None, *, base: bool = True, root: Path | None = None) -> Path:
        target = root or tmp_path / "ws"
        target.mkdir(parents=True, exist_ok=True)
        tree = {**(basic_files() if base else {"workspace.toml": ""}), **(files or {})}
        return write_tree(target, tree)
    return make


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[str]):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"<exit {self.code}>\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@pytest.fixture
def dkb() -> Callable[..., Result]:
    """Run the real `dkb` console entry point in a subprocess, as a user would."""
    def run(*args: str, cwd: Path | str = ".", env: dict[str, str] | None = None) -> Result:
        proc = subprocess.run([sys.executable, "-m", "dkbuild", *args], cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, **(env or {})}, timeout=120)
        return Result(proc)
    return run


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}).stdout


# A real OCI registry (CNCF distribution) on loopback: see tests/registry.py.
from tests.registry import auth_registry, registry, token_registry  # noqa: F401
# A real BuildGrid REAPI server (cache-only) on loopback: see tests/buildgrid.py.
from tests.buildgrid import buildgrid  # noqa: F401,E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test means a real component (registry, skopeo, buildah, the dk corpus, ...) did not
    run: that must not pass quietly. `DKB_ALLOW_SKIPS=1` says, out loud, that it may."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped and exitstatus == 0 and not os.environ.get("DKB_ALLOW_SKIPS"):
        reporter.write_line(f"{skipped} test(s) skipped: a real component did not run (see -rs above); "
                            "install what they need (`make test` does), or set DKB_ALLOW_SKIPS=1", red=True)
        session.exitstatus = 1

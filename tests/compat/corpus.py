"""The dk compatibility corpus: dk's own examples and `dk init` templates, each as a workspace.

The corpus is `../shared/reference/dk-corpus` relative to the repository root (CI clones the
repository with `shared/` beside it). Cases are discovered by listing the folders, never named
here: every directory of `examples/`, and every `<kind>/<runtime>` directory of
`cli/internal/templates/`, rendered the way `dk init <name> --runtime <runtime>` renders it
(cli/cmd/init.go builds the PackageConfig; cli/internal/templates/renderer.go walks the runtime
directory, creates its directories, renders each `*.tmpl` file with text/template to its path
without `.tmpl`, and ignores other files).

A workspace is the case's files, unedited, plus a one-line `workspace.toml`, in a fresh git
repository with one commit.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.compat.gotemplate import render
from tests.conftest import Result, git

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "reference" / "dk-corpus"
EXAMPLES = CORPUS / "examples"
TEMPLATES = CORPUS / "cli" / "internal" / "templates"
WORKSPACE_TOML = "[workspace]\n"
MISSING = (f"the dk corpus is missing: expected {CORPUS} (the repository's ../shared/reference/dk-corpus). "
           "Check out shared/ beside the repository; the compatibility suite cannot run without it.")


@dataclass(frozen=True)
class Case:
    """One corpus case: `kind` is "example" or "init"; `source` the folder it comes from."""
    kind: str
    name: str
    source: Path

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


def _dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []


def discover() -> list[Case]:
    """Every example and every `dk init` template of the corpus (empty when the corpus is missing)."""
    cases = [Case("example", d.name, d) for d in _dirs(EXAMPLES)]
    for kind_dir in _dirs(TEMPLATES):
        cases += [Case("init", f"{kind_dir.name}/{d.name}", d) for d in _dirs(kind_dir)]
    return cases


# --- `dk init` ----------------------------------------------------------------------------------

def init_name(runtime: str) -> str:
    """The package name given to `dk init`: DNS-safe, 3-63 chars, as init.go's isValidPackageName wants."""
    return f"my-{runtime}"[:63].rstrip("-")


def init_config(kind: str, runtime: str, name: str) -> dict[str, Any]:
    """The PackageConfig of `dk init NAME --runtime RUNTIME` with every flag at its default (init.go)."""
    namespace = "default"                      # --namespace default
    return {
        "Name": name,
        "Namespace": namespace,
        "Team": "my-team",                     # --team default
        "Description": f"A {runtime} transform package",
        "Owner": f"{namespace}-team",          # --owner defaults to "<namespace>-team"
        "Kind": kind.lower(),
        "Runtime": runtime,
        "Mode": "batch",                       # --mode batch; Mode.Default() keeps it
        "GRPCPort": 0,
        "Concurrency": 0,
        "Version": "dev",                      # cmd.Version of a build without ldflags
    }


def render_init(template_dir: Path, target: Path, config: dict[str, Any]) -> None:
    """renderer.go RenderKindDirectory: mirror directories, render `*.tmpl` to the name without it."""
    for path in sorted(template_dir.rglob("*")):
        out = target / path.relative_to(template_dir)
        if path.is_dir():
            out.mkdir(parents=True, exist_ok=True)
        elif path.suffix == ".tmpl":
            out = out.with_name(out.name[:-len(".tmpl")])
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(render(path.read_text(), config))


# --- workspaces ---------------------------------------------------------------------------------

def materialize(case: Case, root: Path) -> Path:
    """Write the case's workspace under `root` and commit it; return the workspace root."""
    if case.kind == "example":
        ws = root / case.name
        shutil.copytree(case.source, ws, symlinks=True)
    else:
        kind, runtime = case.name.split("/")
        ws = root / f"init-{runtime}"
        ws.mkdir(parents=True)
        # `dk init NAME` run at the root of a directory without transforms/ scaffolds into NAME/.
        render_init(case.source, ws / init_name(runtime), init_config(kind, runtime, init_name(runtime)))
    (ws / "workspace.toml").write_text(WORKSPACE_TOML)
    git(ws, "init", "--quiet", "-b", "main")
    git(ws, "add", "-A")
    git(ws, "commit", "--quiet", "--no-verify", "-m", "dk corpus case, unedited")
    return ws


@dataclass(frozen=True)
class Transform:
    """A Transform of a case, read from its files with plain YAML (dk's view, not dkb's)."""
    file: str                                  # workspace-relative manifest path
    name: str
    namespace: str
    version: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def directory(self) -> str:
        parent = str(Path(self.file).parent)
        return "" if parent == "." else parent


def manifest_documents(ws: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(relative path, document) for each YAML mapping with a `kind` under ws (git-tracked files)."""
    tracked = git(ws, "ls-files").splitlines()
    for rel in tracked:
        if not rel.endswith((".yaml", ".yml")):
            continue
        try:
            docs = list(yaml.safe_load_all((ws / rel).read_text()))
        except yaml.YAMLError:
            continue
        for doc in docs:
            if isinstance(doc, dict) and "kind" in doc:
                yield rel, doc


def transforms(ws: Path) -> list[Transform]:
    found = []
    for rel, doc in manifest_documents(ws):
        if doc.get("kind") != "Transform":
            continue
        meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
        found.append(Transform(rel, meta.get("name", ""), meta.get("namespace") or "", str(meta.get("version") or ""),
                               tuple(i["dataset"] for i in spec.get("inputs") or [] if i.get("dataset")),
                               tuple(o["dataset"] for o in spec.get("outputs") or [] if o.get("dataset"))))
    return sorted(found, key=lambda t: t.file)


# --- running dkb --------------------------------------------------------------------------------

def run_dkb(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
    """The real `dkb` in a subprocess, as a user runs it."""
    proc = subprocess.run([sys.executable, "-m", "dkbuild", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)
    return Result(proc)


@dataclass
class Workspace:
    """A materialized case with its dk Transforms and memoized dkb runs (shared by the case's tests)."""
    case: Case
    root: Path
    transforms: list[Transform]
    _runs: dict[tuple[str, ...], Result] = field(default_factory=dict)

    def once(self, *args: str, cwd: str = "") -> Result:
        """Run `dkb ARGS` in root/cwd the first time it is asked for; later calls get that result."""
        key = (cwd, *args)
        if key not in self._runs:
            self._runs[key] = run_dkb(*args, cwd=self.root / cwd)
        return self._runs[key]

    @property
    def datasets(self) -> list[str]:
        """Every dataset a Transform reads or writes, in first-seen order."""
        return list(dict.fromkeys(d for t in self.transforms for d in (*t.inputs, *t.outputs)))


# --- the local OCI layout -----------------------------------------------------------------------

def layout_blob(ws: Path, digest: str) -> bytes:
    algorithm, _, hexdigest = digest.partition(":")
    data = (ws / ".dkb" / "oci" / "blobs" / algorithm / hexdigest).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hexdigest, f"blob {digest} does not match its digest"
    return data


def layout_index(ws: Path) -> dict[str, Any]:
    return json.loads((ws / ".dkb" / "oci" / "index.json").read_text())


def artifact_files(ws: Path, digest: str) -> dict[str, bytes]:
    """Every file a locally built artifact carries: its config, and each layer's tar members (or the
    layer itself when it is no tar), keyed "config", "layer<i>:<member>"."""
    manifest = json.loads(layout_blob(ws, digest))
    files = {"config": layout_blob(ws, manifest["config"]["digest"])}
    for index, layer in enumerate(manifest.get("layers") or []):
        data = layout_blob(ws, layer["digest"])
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                for member in tar.getmembers():
                    extracted = tar.extractfile(member) if member.isfile() else None
                    if extracted is not None:
                        files[f"layer{index}:{member.name}"] = extracted.read()
        except tarfile.TarError:
            files[f"layer{index}"] = data
    return files


def built_packages(report: dict[str, Any]) -> list[str]:
    """The package artifact digests of a build report (`dkb build --output json`)."""
    return [t["artifacts"]["package"] for t in report.get("targets") or []
            if (t.get("artifacts") or {}).get("package")]

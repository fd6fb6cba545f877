"""The whole life of a package through the real CLI, in subprocesses, on a copy of examples/monorepo:
build → build again (all cache hits) → publish → promote to dev → status → publish a newer version
→ promote it → rollback → run with lineage events → governance report as HTML.

Once on the embedded defaults (nothing configured, nothing running: .dkb/registry and
.dkb/gitops.git), once against the real loopback registry and a bare git GitOps remote. The two
lives run the same command lines; only workspace.toml differs. Merging a change is done with git,
as a reviewer would on the forge.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE
from tests.openlineage_validation import validate_event
from tests.test_gitops import merge, seed_bare

PACKAGE, NAME, VERSION, NEWER = "//pipelines/enrich", "enrich", "1.2.0", "1.2.1"
# The Store secrets enrich's datasets need come from the example's dev-profile.template.toml.
# Nothing from the machine's environment may configure either life.
CLEAN_ENV = {"DK_REGISTRY": "", "DKB_REGISTRY": "", "GITHUB_OWNER": "", "GITHUB_REPO": "", "GITHUB_BASE_URL": "",
             "OPENLINEAGE_URL": ""}


@dataclass
class Life:
    root: Path
    gitops: Path
    tmp: Path
    commands: list[tuple[str, ...]] = field(default_factory=list)

    def dkb(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.commands.append(args)
        proc = subprocess.run([sys.executable, "-m", "dkbuild", *args], cwd=self.root, capture_output=True,
                              text=True, timeout=300, env={**os.environ, **CLEAN_ENV})
        assert proc.returncode == 0, f"dkb {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.dkb(*args, "--output", "json").stdout)

    def merge(self, change: dict[str, Any]) -> None:
        merge(self.gitops, change["branch"], self.tmp)


def example(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name / "acme-data"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".dkb"))
    return root


def live(life: Life) -> dict[str, Any]:
    """One life; returns what the comparison needs."""
    first = life.json("build", "//...")
    assert first["summary"]["total"] == 10 and "cached" not in first["summary"], first["summary"]
    second = life.json("build", "//...")
    assert second["summary"] == {"total": 10, "cached": 10}                    # every target a cache hit

    published = life.json("publish", "//...")
    assert published["summary"] == {"pushed": 10}
    package = next(p for p in published["published"] if p["label"] == PACKAGE)

    promoted = life.json("promote", PACKAGE, "--to", "dev")
    assert promoted["packages"][0]["digest"] == package["digest"]            # verified in the registry
    assert promoted["warnings"] == []
    life.merge(promoted)
    status = life.json("status", PACKAGE)
    (dev,) = status["packages"][0]["environments"]["dev"]
    assert (dev["version"], dev["digest"], dev["latest"]) == (VERSION, package["digest"], True)

    newer = life.json("publish", PACKAGE, "--tag", NEWER)
    assert newer["published"][0]["status"] == "pushed"
    life.merge(life.json("promote", PACKAGE, "--to", "dev", "--version", NEWER))
    rolled = life.json("rollback", PACKAGE, "--to", "dev")
    assert rolled["packages"][0]["version"] == VERSION and rolled["packages"][0]["digest"] == package["digest"]
    life.merge(rolled)
    after = life.json("status", PACKAGE)
    (dev,) = after["packages"][0]["environments"]["dev"]
    assert (dev["version"], dev["latest"], after["packages"][0]["latest_published"]) == (VERSION, False, NEWER)

    ran = life.dkb("run", PACKAGE)
    assert "lineage event(s) (START, COMPLETE)" in ran.stderr + ran.stdout
    events = [json.loads(line) for line in (life.root / ".dkb/lineage/events.jsonl").read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert len({e["run"]["runId"] for e in events}) == 1
    for event in events:
        validate_event(event)

    life.dkb("governance", "report", "--output", "html", "-o", ".dkb/governance.html")
    html = (life.root / ".dkb/governance.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and NAME in html
    return {"package": package, "published": published, "promoted": promoted}


@pytest.fixture(scope="module")
def on_defaults(tmp_path_factory: pytest.TempPathFactory) -> tuple[Life, dict[str, Any]]:
    """The life on the embedded defaults, lived once for both tests."""
    tmp = tmp_path_factory.mktemp("life")
    root = example(tmp, "embedded")
    life = Life(root, root / ".dkb/gitops.git", tmp)
    return life, live(life)


def test_the_whole_life_on_the_embedded_defaults(on_defaults: tuple[Life, dict[str, Any]]) -> None:
    life, seen = on_defaults
    root = life.root
    package = seen["package"]
    assert package["reference"] == f"oci:.dkb/registry/analytics/{NAME}:{VERSION}"
    assert seen["published"]["registry"]["embedded"] is True
    assert (root / f".dkb/registry/analytics/{NAME}/index.json").is_file()
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{root}/.dkb/registry/analytics/{NAME}:{VERSION}"],
                         check=True, capture_output=True).stdout
    assert raw == (root / ".dkb/oci/blobs/sha256" / package["digest"][7:]).read_bytes()
    assert seen["promoted"]["gitops"]["embedded"] is True


def test_the_same_life_against_a_real_registry_and_a_bare_git_remote(
        on_defaults: tuple[Life, dict[str, Any]], tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    embedded, seen_embedded = on_defaults
    root = example(tmp_path, "real")
    bare = seed_bare(tmp_path)
    configuration = (f'\n[registry]\nurl = "oci://{registry.host}/acme"\nplain_http = true\n'
                     f'\n[gitops]\nrepo = "{bare}"\n')
    (root / "workspace.toml").write_text((root / "workspace.toml").read_text() + configuration)
    real = Life(root, bare, tmp_path)
    on_real = live(real)

    assert real.commands == embedded.commands                     # the same command lines...
    assert changed_files(embedded.root, root) == ["workspace.toml"]   # ...and only the configuration differs
    package = on_real["package"]
    assert package["reference"] == f"{registry.host}/acme/analytics/{NAME}:{VERSION}"
    assert package["digest"] == seen_embedded["package"]["digest"]     # the same artifact, somewhere else
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{package['reference']}"],
                         check=True, capture_output=True).stdout
    assert raw == (root / ".dkb/oci/blobs/sha256" / package["digest"][7:]).read_bytes()
    assert not (root / ".dkb/registry").exists() and not (root / ".dkb/gitops.git").exists()
    assert on_real["promoted"]["gitops"]["embedded"] is False
    deployed = subprocess.run(["git", "-C", str(bare), "show", f"main:gitops/envs/dev/cells/c0/apps/{NAME}/values.yaml"],
                              check=True, capture_output=True, text=True).stdout
    assert f"appVersion: {VERSION}" in deployed and f"registry: {registry.host}/acme/analytics" in deployed


def changed_files(a: Path, b: Path) -> list[str]:
    """Files (outside .dkb) whose bytes differ between two workspaces."""
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and ".dkb" not in p.relative_to(root).parts}
    left, right = files(a), files(b)
    return sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))

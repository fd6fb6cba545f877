"""Property: after random edits, `dkb affected` names exactly the Transforms whose artifacts change
when both revisions are rebuilt from clean checkouts. Fewer would be a stale cache hit; more, a
wasted rebuild."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import dataset, git, store, connector, transform, write_tree

EDITS = ["source", "new-file", "column-type", "reformat", "store", "chmod", "ignored-file", "env"]


def base_files() -> dict:  # type: ignore[type-arg]
    files = {"workspace.toml": "", ".dkbignore": "*.tmp\n", "platform/c/dk.yaml": connector(),
             "platform/s1/dk.yaml": store("s1"), "platform/s2/dk.yaml": store("s2")}
    for i in range(3):
        files[f"datasets/in{i}/dk.yaml"] = dataset(f"in{i}", store=f"s{1 + i % 2}")
        files[f"datasets/out{i}/dk.yaml"] = dataset(f"out{i}", store="s1")
        files[f"pipelines/p{i}/dk.yaml"] = transform(f"p{i}", [f"in{i}"], [f"out{i}"])
        files[f"pipelines/p{i}/src/main.py"] = f"print({i})\n"
    return files


def apply(root: Path, edit: str, i: int) -> None:
    pkg = root / f"pipelines/p{i}"
    if edit == "source":
        (pkg / "src/main.py").write_text(f"print({i} + 1)\n")
    elif edit == "new-file":
        (pkg / "src/extra.py").write_text("X = 1\n")
    elif edit == "column-type":
        path = root / f"datasets/in{i}/dk.yaml"
        data = yaml.safe_load(path.read_text())
        data["spec"]["schema"][0]["type"] = "bigint"
        path.write_text(yaml.safe_dump(data))
    elif edit == "reformat":
        path = pkg / "dk.yaml"
        path.write_text("# reformatted\n" + yaml.safe_dump(yaml.safe_load(path.read_text()), sort_keys=True, indent=4))
    elif edit == "store":
        path = root / f"platform/s{1 + i % 2}/dk.yaml"
        path.write_text(path.read_text().replace("db.internal", f"db{i}.internal"))
    elif edit == "chmod":
        (pkg / "src/main.py").chmod(0o755)
    elif edit == "ignored-file":
        (pkg / "notes.tmp").write_text("scratch")
    elif edit == "env":
        path = pkg / "dk.yaml"
        data = yaml.safe_load(path.read_text())
        data["spec"]["env"] = [{"name": "MODE", "value": str(i)}]
        path.write_text(yaml.safe_dump(data))


def artifacts(checkout: Path) -> dict[str, str]:
    res = subprocess.run([sys.executable, "-m", "dkbuild", "build", "--output", "json"], cwd=checkout,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return {t["label"]: t["artifacts"]["package"] for t in json.loads(res.stdout)["targets"]}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(EDITS), st.integers(0, 2)), min_size=1, max_size=3))
def test_affected_equals_changed_artifacts(tmp_path_factory, edits) -> None:  # type: ignore[no-untyped-def]
    top = tmp_path_factory.mktemp("prop")
    root = write_tree(top / "repo", base_files())
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    for edit, i in edits:
        apply(root, edit, i)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "edits", "--allow-empty")
    git(root, "worktree", "add", "-q", "--detach", str(top / "base"), "main~1")
    git(root, "worktree", "add", "-q", "--detach", str(top / "head"), "main")
    before, after = artifacts(top / "base"), artifacts(top / "head")
    changed = {label for label in after if before.get(label) != after[label]}
    res = subprocess.run([sys.executable, "-m", "dkbuild", "affected", "--since", "main~1", "--output", "json"],
                         cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    affected = {t["label"] for t in json.loads(res.stdout)["targets"] if t["kind"] == "Transform"}
    assert affected == changed, edits

"""The warm path: graph snapshots keyed by content ids, lean manifests, batched cache answers."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from dkbuild import api
from dkbuild.affected_api import affected_targets
from dkbuild.engine import snapshot as snap
from dkbuild.manifests import loader
from tests.conftest import dump, git, transform

SNAPSHOTS = Path(".dkb") / "cache" / "graph"


def _graphs(root: Path) -> list[Path]:
    return sorted((root / SNAPSHOTS).glob("*.graph"))


def _forbid_parsing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every manifest parse fail loudly; returns the list of files that were parsed."""
    parsed: list[str] = []
    real = loader.load_file

    def counting(workspace, mf, source=None):  # type: ignore[no-untyped-def]
        parsed.append(mf.path)
        return real(workspace, mf, source)
    monkeypatch.setattr(loader, "load_file", counting)
    return parsed


def _answers(loaded: api.Loaded) -> dict[str, object]:
    keys = api.compute_keys(loaded)
    return {"nodes": sorted(loaded.graph.nodes), "edges": [(e.src, e.dst, e.kind.value, e.field) for e in loaded.graph.edges],
            "keys": keys.keys, "components": {k: c.to_json() for k, c in keys.components.items()},
            "diagnostics": [d.to_json() for d in loaded.diagnostics]}


def test_second_load_parses_nothing_and_answers_the_same(workspace, monkeypatch) -> None:
    root = workspace()
    cold = _answers(api.load(root))
    assert len(_graphs(root)) == 1
    parsed = _forbid_parsing(monkeypatch)
    warm = api.load(root)
    assert parsed == []
    assert _answers(warm) == cold
    # The lean manifests still give their model and positions on demand.
    node = warm.graph.nodes["//pipelines/ingest"]
    assert node.manifest.model.spec.runtime == "generic-python"
    assert node.manifest.runtime == "generic-python"
    assert node.manifest.position(("spec", "inputs")) != (node.manifest.line, 1)


def test_a_changed_manifest_is_the_only_one_parsed_again(workspace, monkeypatch) -> None:
    root = workspace()
    api.load(root)
    (root / "pipelines/publish/dk.yaml").write_text(dump(transform("publish", ["clean", "raw"], ["report"])))
    parsed = _forbid_parsing(monkeypatch)
    warm = api.load(root)
    assert parsed == ["pipelines/publish/dk.yaml"]
    monkeypatch.setenv(snap.ENV_SWITCH, "0")
    assert _answers(warm) == _answers(api.load(root))


def test_switched_off_writes_nothing(workspace, monkeypatch) -> None:
    root = workspace()
    monkeypatch.setenv(snap.ENV_SWITCH, "0")
    api.compute_keys(api.load(root))
    assert not (root / SNAPSHOTS).exists()


@pytest.mark.parametrize("damage", [b"", b"not a pickle", pickle.dumps({"schema": "other"}), pickle.dumps([1, 2])])
def test_a_damaged_snapshot_is_a_miss(workspace, damage: bytes) -> None:
    root = workspace()
    cold = _answers(api.load(root))
    for path in (root / SNAPSHOTS).iterdir():
        path.write_bytes(damage)
    assert _answers(api.load(root)) == cold
    assert all(path.read_bytes() != damage for path in (root / SNAPSHOTS).iterdir())


def test_an_unwritable_cache_only_costs_time(workspace) -> None:
    root = workspace()
    (root / ".dkb").write_text("a file where the store would be")
    assert api.load(root).graph.nodes
    assert (root / ".dkb").read_text() == "a file where the store would be"


def test_old_snapshots_are_pruned(workspace) -> None:
    root = workspace()
    for i in range(snap.KEEP + 3):
        (root / "pipelines/ingest/src/main.py").write_text(f"print({i})\n")
        api.compute_keys(api.load(root))
    assert len(_graphs(root)) == snap.KEEP
    fingerprints = {p.name.split(".")[0] for p in (root / SNAPSHOTS).iterdir() if p.suffix != ".body"}
    assert fingerprints == {p.name.split(".")[0] for p in _graphs(root)}
    # Only a source file changed from state to state: they all share one stored manifests-and-graph.
    assert len(list((root / SNAPSHOTS).glob("*.body"))) == 1


def test_fingerprint_ignores_place_and_mtime_but_not_content(workspace, tmp_path) -> None:
    root = workspace()
    first = api.load(root)
    fp = snap.fingerprint(first.files, first.workspace)
    os.utime(root / "datasets/raw/dk.yaml", (1, 1))
    again = api.load(root)
    assert snap.fingerprint(again.files, again.workspace) == fp
    copy = workspace(root=tmp_path / "elsewhere")
    moved = api.load(copy)
    assert snap.fingerprint(moved.files, moved.workspace) == fp
    (copy / "workspace.toml").write_text('[workspace]\nname = "renamed"\n')
    changed = api.load(copy)
    assert snap.fingerprint(changed.files, changed.workspace) != fp


def test_affected_reuses_the_snapshot_of_the_merge_base(workspace, monkeypatch) -> None:
    root = workspace()
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    (root / "pipelines/ingest/src/main.py").write_text("print('changed')\n")
    git(root, "commit", "-qam", "change")
    loaded = api.load(root)
    first = affected_targets(loaded, "HEAD~1")
    assert first.labels == ["//pipelines/ingest"]
    parsed = _forbid_parsing(monkeypatch)
    second = affected_targets(api.load(root), "HEAD~1")
    assert parsed == []
    assert second.labels == first.labels


def _tmp_workspace_git(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")


def test_no_op_build_rewrites_no_history_and_imports_nothing_heavy(workspace, dkb) -> None:
    root = workspace()
    _tmp_workspace_git(root)
    assert dkb("build", "//...", cwd=root).code == 0
    records = {p: p.stat().st_mtime_ns for p in (root / ".dkb/cache/targets").glob("*.json")}
    probe = ("import json, sys\nfrom dkbuild.cli.main import main\n"
             "try:\n    main(['build', '//...'])\nexcept SystemExit as exc:\n    code = exc.code\n"
             "sys.stderr.write(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n")
    heavy = ("github", "oras", "openlineage", "python_on_whales", "rich", "yaml", "dkbuild.manifests.models",
             "dkbuild.manifests.yamlsource", "dkbuild.governance.manifest_rules")

    def modules_of_a_no_op() -> list[str]:
        proc = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=120)
        report = json.loads(proc.stderr.strip().splitlines()[-1])
        assert report["code"] == 0, proc.stdout
        assert {p: p.stat().st_mtime_ns for p in (root / ".dkb/cache/targets").glob("*.json")} == records
        return [m for m in report["modules"] if m.split(".")[0] in heavy or m in heavy]

    assert modules_of_a_no_op() == []       # answered target by target from the cache
    heavy += ("pydantic", "dkbuild.config_model")
    assert modules_of_a_no_op() == []       # remembered whole: not even the typed configuration


def test_history_follows_a_changed_key(workspace, dkb) -> None:
    root = workspace()
    assert dkb("build", "//pipelines/ingest", cwd=root).code == 0
    (root / "pipelines/ingest/src/main.py").write_text("print('v2')\n")
    assert dkb("build", "//pipelines/ingest", cwd=root).code == 0
    (root / "pipelines/ingest/src/main.py").write_text("print('v3')\n")
    why = dkb("why", "//pipelines/ingest", "--output", "json", cwd=root)
    assert "src/main.py" in why.out, why

"""dk's --strict passes its own examples and every `dk init` template (each runtime, batch and
streaming), so dkb's must: no finding blocks them, and each finding dkb adds is still reported."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dkbuild.api import lint_workspace, load
from dkbuild.governance.options import LintOptions

from tests.compat.corpus import CORPUS, MISSING

assert CORPUS.is_dir(), MISSING        # a missing corpus fails loudly, never skips
EXAMPLES = sorted(p.name for p in (CORPUS / "examples").iterdir())
TEMPLATES = CORPUS / "cli" / "internal" / "templates" / "transform"
RUNTIMES = sorted(p.name for p in TEMPLATES.iterdir())
# `dk init` defaults (cli/cmd/init.go): namespace default, team my-team, owner <namespace>-team.
VALUES = {"Name": "my-pipeline", "Namespace": "default", "Team": "my-team", "Description": "",
          "Owner": "default-team", "GRPCPort": "7777", "Concurrency": "10000", "Version": "0.0.0"}


def _workspace(root: Path) -> Path:
    (root / "workspace.toml").write_text("[workspace]\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _render(runtime: str, mode: str, root: Path) -> Path:
    source = TEMPLATES / runtime
    for template in source.rglob("*.tmpl"):
        text = template.read_text()
        text = re.sub(r'\{\{ "(.*?)" \}\}', r"\1", text)            # dbt's escaped {{ env_var(...) }}
        text = re.sub(r"\{\{\s*\.Name\s*\|\s*snakeCase\s*\}\}", "my_pipeline", text)
        text = re.sub(r"\{\{\s*\.Mode\s*\}\}", mode, text)
        for key, value in VALUES.items():
            text = re.sub(r"\{\{\s*\." + key + r"\s*\}\}", value, text)
        assert "{{ ." not in text, template
        target = root / template.relative_to(source).with_suffix("")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return _workspace(root)


def _blocking(root: Path) -> list[str]:
    report = lint_workspace(load(root), ["//..."], options=LintOptions(strict=True))
    return sorted(f"{d.location()} {d.code}" for d in report.diagnostics if d.is_error)


@pytest.mark.parametrize("example", EXAMPLES)
def test_dk_example_passes_strict(example: str, tmp_path: Path) -> None:
    root = _workspace(Path(shutil.copytree(CORPUS / "examples" / example, tmp_path / example)))
    assert _blocking(root) == []


@pytest.mark.parametrize("runtime, mode", [(r, m) for r in RUNTIMES for m in ("batch", "streaming")
                                           if not (r == "dbt" and m == "streaming")])
def test_dk_init_template_passes_strict(runtime: str, mode: str, tmp_path: Path) -> None:
    assert _blocking(_render(runtime, mode, tmp_path / f"{runtime}-{mode}")) == []


def test_findings_dk_never_had_are_still_reported(tmp_path: Path) -> None:
    root = _workspace(Path(shutil.copytree(CORPUS / "examples" / "dbt-reporting", tmp_path / "dbt")))
    report = lint_workspace(load(root), ["//..."], options=LintOptions(strict=True))
    flat = {d.code for d in report.diagnostics if d.file == "connector/postgres.yaml"}
    assert {"E200", "E201", "W100"} <= flat
    assert all(d.is_advisory for d in report.diagnostics if d.file == "connector/postgres.yaml")
    reactive = _workspace(Path(shutil.copytree(CORPUS / "examples" / "reactive-pipeline", tmp_path / "r")))
    found = lint_workspace(load(reactive), ["//..."]).diagnostics
    (pii,) = [d for d in found if d.code == "E600"]
    assert pii.is_advisory and pii.file == "datasets/enriched-events/dk.yaml"
    externals = {d.message.split("'")[1] for d in found if d.code == "W501"}     # stores no manifest defines
    assert {"data-lake", "events-kafka", "warehouse"} <= externals
    assert all(d.is_advisory for d in found if d.code in ("W501", "W507"))

"""bench.turbo's npm twin mirrors the dkb graph exactly; bench.run's README updater touches only its block.

None of this needs npm or turbo: the twin is written without a lockfile and with a given npm version.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import generate as gen
from bench import goals, run, turbo

N = 30
SEED = 5


@pytest.fixture(scope="module")
def dkb_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dkb") / "ws"
    gen.generate(root, N, seed=SEED)
    return root


def _twin(dkb_root: Path, dest: Path) -> dict[str, list[str]]:
    return turbo.npm_workspace(dkb_root, dest, npm="10.0.0", lockfile=False)


def _manifest(root: Path, rel: str) -> dict:
    return json.loads((root / rel / "package.json").read_text())


def test_twin_mirrors_the_dkb_dependency_edges(dkb_ws: Path, tmp_path: Path) -> None:
    dest = tmp_path / "npm"
    _twin(dkb_ws, dest)
    # Expected edges come from the generator's own plan, not from the YAML the twin was read from.
    plan = gen.plan(N, SEED)
    producer = {d.name: t.name for t in plan.transforms for d in t.outputs}
    expected = {t.package: sorted({producer[d.name] for d in t.inputs if d.name in producer})
                for t in plan.transforms}
    assert sum(map(len, expected.values())) > N // 2, "the plan should have a real DAG to compare"

    root = json.loads((dest / "package.json").read_text())
    assert root["private"] is True and root["packageManager"] == "npm@10.0.0"
    assert root["workspaces"] == [turbo.WORKSPACE_GLOB]
    found = {p.parent.relative_to(dest).as_posix(): json.loads(p.read_text())
             for p in dest.glob(turbo.WORKSPACE_GLOB + "/package.json")}
    assert set(found) == set(expected)                 # one package per transform, at the same path
    for path, body in found.items():
        assert body["name"] == path.rsplit("/", 1)[1]
        assert sorted(body.get("dependencies", {})) == expected[path], path
        assert set(body.get("dependencies", {}).values()) <= {"*"}
        assert "build" in body["scripts"]

    task = json.loads((dest / "turbo.json").read_text())["tasks"]["build"]
    assert task["dependsOn"] == ["^build"] and task["outputs"] == [turbo.BUILD_OUTPUT]


def test_twin_copies_package_sources_and_is_one_clean_commit(dkb_ws: Path, tmp_path: Path) -> None:
    dest = tmp_path / "npm"
    _twin(dkb_ws, dest)
    assert gen.git(dest, "rev-list", "--count", "HEAD").strip() == "1"
    assert gen.git(dest, "status", "--porcelain").strip() == ""
    tracked = set(gen.git(dest, "ls-files").split())
    for rel in gen.git(dkb_ws, "ls-files").split():
        if rel == ".gitignore":
            continue
        assert rel in tracked, rel
        assert (dest / rel).read_bytes() == (dkb_ws / rel).read_bytes(), rel
    assert {"package.json", "turbo.json"} <= tracked
    assert ".turbo/" in (dest / ".gitignore").read_text().split()


def test_twin_is_deterministic(dkb_ws: Path, tmp_path: Path) -> None:
    _twin(dkb_ws, tmp_path / "a")
    _twin(dkb_ws, tmp_path / "b")
    head = [gen.git(tmp_path / d, "rev-parse", "HEAD").strip() for d in ("a", "b")]
    assert head[0] == head[1]  # same tree, same fixed author dates: same commit id


def test_twin_refuses_a_non_empty_destination(dkb_ws: Path, tmp_path: Path) -> None:
    (tmp_path / "npm").mkdir()
    (tmp_path / "npm" / "x").write_text("x")
    with pytest.raises(turbo.TurboError):
        _twin(dkb_ws, tmp_path / "npm")


def test_mirror_commit_changes_one_file_in_the_twin(tmp_path: Path) -> None:
    ws, dest = tmp_path / "ws", tmp_path / "npm"  # its own workspace: this test commits to it
    gen.generate(ws, 10, seed=1)
    _twin(ws, dest)
    rel = run.one_file_commit(ws)
    turbo.mirror_commit(ws, dest, rel)
    assert gen.git(dest, "diff", "--name-only", "HEAD~1", "HEAD").split() == [rel]
    assert (dest / rel).read_bytes() == (ws / rel).read_bytes()


TURBO_RUN = """\
 Tasks:    7 successful, 7 total
Cached:    7 cached, 7 total
  Time:    40ms >>> FULL TURBO
"""


def test_output_parsers_insist_on_cache_hits() -> None:
    assert turbo.full_cache_hit(TURBO_RUN) == (7, 7)
    with pytest.raises(turbo.TurboError):
        turbo.full_cache_hit(TURBO_RUN.replace("7 cached", "6 cached").replace(" >>> FULL TURBO", ""))
    with pytest.raises(turbo.TurboError):
        turbo.full_cache_hit("no summary at all")
    with pytest.raises(turbo.TurboError, match="no tasks"):
        turbo.full_cache_hit(" Tasks:    0 successful, 0 total\nCached:    0 cached, 0 total\n  Time: 21ms\n")
    ls = "• turbo 2.11.11\n2 packages (npm)\n\n  a pipelines/x/y/a\n  b pipelines/x/y/b\n"
    assert turbo.listed_packages(ls) == ["pipelines/x/y/a", "pipelines/x/y/b"]
    with pytest.raises(turbo.TurboError):
        turbo.listed_packages(ls.replace("2 packages", "3 packages"))
    assert turbo.listed_packages("• turbo 2.11.11\n0 no packages (npm)\n") == []
    assert turbo.dkb_all_cached("✓ 30 target(s): 30 cached in 0.01s") == 30
    with pytest.raises(turbo.TurboError):
        turbo.dkb_all_cached("✓ 30 target(s): 1 built, 29 cached in 0.2s")


README = """\
# Project

## Performance

Intro stays.

<!-- bench-table:begin (generated by `python -m bench.run --update-readme README.md`; do not edit) -->
old table
old line
<!-- bench-table:end -->

Text after stays.
"""


def test_replace_marked_block_replaces_only_the_block() -> None:
    out = run.replace_marked_block(README, "| new | table |\n")
    before, after = README.split("old table\nold line\n")
    assert out == before + "| new | table |\n" + after
    assert run.replace_marked_block(out, "old table\nold line") == README  # missing newline added


@pytest.mark.parametrize("text", [
    "no markers here\n",
    README.replace("<!-- bench-table:end -->\n", ""),
    README.replace("<!-- bench-table:begin", "<!-- bench-tables:begin"),
    README + "<!-- bench-table:end -->\n",
    "<!-- bench-table:end -->\n" + "<!-- bench-table:begin x -->\n",
])
def test_replace_marked_block_needs_one_pair_of_markers(text: str) -> None:
    with pytest.raises(ValueError):
        run.replace_marked_block(text, "x\n")


def _report(turbo_rows: bool) -> dict:
    m = {"seconds": 0.4, "min_seconds": 0.39, "peak_mb": 60.0, "ok": True, "runs": 3}
    results = {name: {**m, "budget": run.BUDGETS.get(name, {}).get(1000), "over_budget": name == "cold"}
               for name in run.MEASUREMENTS}
    report = {"command": "python -m bench.run --turbo", "runs": 3, "build_runs": 1, "seed": 0,
              "machine": {"cpu": "Test CPU", "cpus": 2, "memory_gib": 4.0, "os": "TestOS", "python": "3.11",
                          "git": "2.39", "node": "v20", "npm": "10", "dkb": "abc1234", "date": "2024-01-01"},
              "workspaces": {"1000": gen.stats(gen.plan(40, 0))}, "results": {"1000": results}, "turbo": {}}
    if turbo_rows:
        t = {**m, "seconds": 0.5}
        report["turbo"]["1000"] = {
            "turbo_version": "9.9.9",
            "affected_counts": {"dkb": 1, "dkb_transitive": 12, "turbo_ls": 12, "turbo_run_tasks": 40},
            **{k: {"dkb": m, "turbo": t, "ratio": 0.8, "goal": 1.0 if k == "noop" else None, "over_goal": False}
               for k in run.COMPARISONS}}
    return report


def test_update_readme_writes_the_rendered_report(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text(README)
    run.update_readme(path, run.render_markdown(_report(turbo_rows=True)))
    text = path.read_text()
    assert text.startswith(README.split("old table")[0]) and text.endswith(README.split("old line\n")[1])
    assert "old table" not in text
    block = text.split("-->\n", 1)[1].split("<!-- bench-table:end")[0]
    prose = " ".join(block.split())  # prose is wrapped at 100 columns
    assert "| warm no-op `dkb build //...` |" in block and "**OVER**" in block     # cold is over budget
    assert "0.40 s vs 0.50 s: **0.80** (goal ≤ 1, met)" in block
    assert "turbo 9.9.9" in prose and "Test CPU × 2 CPUs" in prose and "2024-01-01" in prose
    assert all(len(line) <= 100 for line in block.splitlines() if not line.startswith("|"))


def test_render_without_turbo_has_no_comparison_rows() -> None:
    block = run.render_markdown(_report(turbo_rows=False))
    assert "Turborepo" not in block and "turbo" not in block.split("Machine:")[1]
    # the measurements table and the issue-17 goals table (header and one line per goal row)
    assert sum(line.startswith("| ") for line in block.splitlines()) == 2 + len(run.MEASUREMENTS) + len(goals.ROWS)


def test_main_refuses_a_readme_without_markers_before_measuring(tmp_path: Path, capsys) -> None:
    path = tmp_path / "README.md"
    path.write_text("# no markers\n")
    code = run.main(["--packages", "1", "--update-readme", str(path), "--work", str(tmp_path / "work")])
    assert code == 2
    assert "bench-table" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()  # nothing was generated or measured
    assert path.read_text() == "# no markers\n"
